import { request } from 'node:http';
import type { Logger } from '@tessera/kit';
import { AgentEventStream, type AgentEvent } from '../relay/agent-events';
import { SERVER_USER } from './server-pool';

/** Where one agent server listens and the password it was started with. */
export interface OpencodeTarget {
  host: string;
  port: number;
  password: string;
}

/** The calls the bridge makes to one OpenCode server (`opencode serve`), with its basic auth. */
export class OpencodeClient {
  private readonly auth: string;

  constructor(private readonly target: OpencodeTarget) {
    this.auth = `${SERVER_USER}:${target.password}`;
  }

  /** `POST /session`: a session for the host to prompt (null when the server has no such route: a stand-in). */
  createSession(): Promise<string | null> {
    const body = Buffer.from('{}');
    const { host, port } = this.target;
    return new Promise((resolve) => {
      const req = request(
        { host, port, path: '/session', method: 'POST', agent: false, auth: this.auth, timeout: 5_000, headers: { 'content-type': 'application/json', 'content-length': String(body.length) } },
        (res) => {
          let text = '';
          res.on('data', (d) => (text += d));
          res.on('end', () => {
            try {
              const id = (JSON.parse(text) as { id?: unknown }).id;
              resolve(res.statusCode === 200 && typeof id === 'string' ? id : null);
            } catch {
              resolve(null);
            }
          });
        },
      );
      req.on('timeout', () => req.destroy());
      req.on('error', () => resolve(null));
      req.end(body);
    });
  }

  /** `GET /event`: the server's own events, followed (and reopened when dropped) until the stream is closed. */
  events(onEvent: (e: AgentEvent) => void, logger: Logger): AgentEventStream {
    return new AgentEventStream({ host: this.target.host, port: this.target.port, auth: this.auth }, onEvent, logger).open();
  }
}

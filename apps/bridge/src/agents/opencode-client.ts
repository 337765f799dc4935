import { z } from 'zod';
import { ServiceClient, type Logger } from '@tessera/kit';
import { AgentEventStream, type AgentEvent } from '../relay/agent-events';
import { SERVER_USER } from './server-pool';

/** Where one agent server listens and the password it was started with. */
export interface OpencodeTarget {
  host: string;
  port: number;
  password: string;
}

/** What OpenCode answers to `POST /session` (of its reply, the bridge reads only the id). */
const OpencodeSession = z.object({ id: z.string() });

/** The calls the bridge makes to one OpenCode server (`opencode serve`), with its basic auth. */
export class OpencodeClient {
  private readonly auth: string;

  constructor(private readonly target: OpencodeTarget) {
    this.auth = `${SERVER_USER}:${target.password}`;
  }

  /** `POST /session`: a session for the host to prompt (null when the server has no such route: a stand-in). */
  async createSession(): Promise<string | null> {
    const { host, port } = this.target;
    const http = new ServiceClient(`http://${host}:${port}`, 'agent server', { timeoutMs: 5_000 });
    try {
      const session = await http.json('POST', '/session', OpencodeSession, { body: {}, headers: { authorization: `Basic ${Buffer.from(this.auth).toString('base64')}` } });
      return session.id;
    } catch {
      return null;
    } finally {
      await http.close();
    }
  }

  /** `GET /event`: the server's own events, followed (and reopened when dropped) until the stream is closed. */
  events(onEvent: (e: AgentEvent) => void, logger: Logger): AgentEventStream {
    return new AgentEventStream({ host: this.target.host, port: this.target.port, auth: this.auth }, onEvent, logger).open();
  }
}

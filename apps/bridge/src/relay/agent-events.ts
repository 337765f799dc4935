import { request, type ClientRequest } from 'node:http';
import type { Logger } from '@tessera/kit';

/** One event of the agent server's own stream (`GET /event`), as OpenCode sends it. */
export interface AgentEvent {
  id?: string;
  type: string;
  properties?: unknown;
}

/**
 * Reads an agent server's SSE stream and hands each event on. A dropped stream is reopened
 * (with a short backoff) while the server runs; `close()` ends it for good.
 */
export class AgentEventStream {
  private req: ClientRequest | null = null;
  private closed = false;
  private retries = 0;

  constructor(
    private readonly target: { host: string; port: number; auth: string },
    private readonly onEvent: (e: AgentEvent) => void,
    private readonly logger: Logger,
  ) {}

  open(): this {
    if (this.closed) return this;
    const req = request({ host: this.target.host, port: this.target.port, path: '/event', auth: this.target.auth, agent: false, headers: { accept: 'text/event-stream' } }, (res) => {
      if (res.statusCode !== 200) {
        res.resume();
        return this.again();
      }
      this.retries = 0;
      res.setEncoding('utf8');
      let buf = '';
      res.on('data', (chunk: string) => {
        buf += chunk;
        let end: number;
        while ((end = buf.indexOf('\n\n')) >= 0) {
          const block = buf.slice(0, end);
          buf = buf.slice(end + 2);
          const data = block
            .split('\n')
            .filter((l) => l.startsWith('data:'))
            .map((l) => l.slice(5).trimStart())
            .join('\n');
          if (!data) continue;
          try {
            const e = JSON.parse(data) as AgentEvent;
            if (e && typeof e.type === 'string') this.onEvent(e);
          } catch {
            this.logger.debug('agent event not JSON', { port: this.target.port });
          }
        }
        if (buf.length > 4 * 1024 * 1024) buf = '';
      });
      res.on('end', () => this.again());
      res.on('error', () => this.again());
    });
    req.on('error', () => this.again());
    req.end();
    this.req = req;
    return this;
  }

  private again(): void {
    if (this.closed) return;
    const delay = Math.min(100 * 2 ** this.retries++, 2_000);
    setTimeout(() => this.open(), delay).unref();
  }

  close(): void {
    this.closed = true;
    this.req?.destroy();
  }
}

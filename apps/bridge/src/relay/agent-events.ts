import { request, type ClientRequest } from 'node:http';
import { createParser } from 'eventsource-parser';
import { backoff, type Logger } from '@tessera/kit';

/** A dropped stream is reopened after 100 ms, doubling to 2 s. */
const reopenDelay = backoff({ baseMs: 100, maxMs: 2_000 });
/** An agent event is at most this long (a message part with a large file, say); past it, the stream is reopened. */
const MAX_EVENT_CHARS = 4 * 1024 * 1024;

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
      const parser = createParser({
        maxBufferSize: MAX_EVENT_CHARS,
        // An event past the bound is dropped with the connection: the stream is reopened.
        onError: (err) => {
          if (err.type !== 'max-buffer-size-exceeded') return;
          this.logger.warn('agent event too large; stream reopened', { port: this.target.port, max_chars: MAX_EVENT_CHARS });
          res.destroy(err);
        },
        onEvent: ({ data }) => {
          try {
            const e = JSON.parse(data) as AgentEvent;
            if (e && typeof e.type === 'string') this.onEvent(e);
          } catch {
            this.logger.debug('agent event not JSON', { port: this.target.port });
          }
        },
      });
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        if (!res.destroyed) parser.feed(chunk);
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
    setTimeout(() => this.open(), reopenDelay(this.retries++)).unref();
  }

  close(): void {
    this.closed = true;
    this.req?.destroy();
  }
}

import type { Server } from 'node:http';
import type { Socket } from 'node:net';
import { errorSummary, type Logger } from './logger';

type Closer = { name: string; close: () => Promise<unknown> | unknown };

/**
 * Graceful shutdown on SIGTERM/SIGINT: stop accepting, drain in-flight requests and sockets,
 * then close workers and connections in the order they were registered, within a bounded time.
 */
export class GracefulShutdown {
  private readonly closers: Closer[] = [];
  private stopping: Promise<void> | null = null;

  constructor(
    private readonly logger: Logger,
    private readonly timeoutMs = 10_000,
  ) {}

  get shuttingDown(): boolean {
    return this.stopping !== null;
  }

  /** Register a resource; resources close in registration order. */
  add(name: string, close: () => Promise<unknown> | unknown): this {
    this.closers.push({ name, close });
    return this;
  }

  /**
   * Track an HTTP server: on shutdown it stops accepting, idle keep-alive sockets close, busy ones
   * finish their response. Upgraded sockets (WebSockets) are left to their hub, which closes them
   * with 1001; ending them here would reach clients as an abnormal 1006, and waiting for them
   * would stall the closers registered after the server.
   */
  addServer(name: string, server: Server): this {
    const sockets = new Map<Socket, { busy: number }>();
    let drained: (() => void) | undefined;
    const settle = () => {
      if (drained && ![...sockets.values()].some((st) => st.busy > 0)) drained();
    };
    server.on('connection', (s: Socket) => {
      sockets.set(s, { busy: 0 });
      s.once('close', () => {
        sockets.delete(s);
        settle();
      });
    });
    server.on('request', (req, res) => {
      const st = sockets.get(req.socket);
      if (st) st.busy++;
      res.once('finish', () => {
        if (st) st.busy--;
        if (this.shuttingDown && st && st.busy === 0 && !req.socket.destroyed) req.socket.end();
        settle();
      });
      if (this.shuttingDown) res.setHeader('Connection', 'close');
    });
    return this.add(
      name,
      () =>
        new Promise<void>((resolve) => {
          drained = resolve;
          server.close();
          // Only sockets idle between HTTP requests; upgraded ones are not touched.
          server.closeIdleConnections();
          settle();
        }),
    );
  }

  /**
   * Shut down on the signals, and as the last resort on an error nothing caught: every handler of
   * a request, socket or message catches its own, so one that escapes is a defect. It is logged
   * (bounded) and the process drains and exits 1, instead of dying mid-write or running on in
   * an unknown state.
   */
  listen(signals: NodeJS.Signals[] = ['SIGTERM', 'SIGINT']): this {
    for (const sig of signals) {
      process.once(sig, () => {
        this.logger.info('shutdown requested', { signal: sig });
        void this.run().then(() => process.exit(0));
      });
    }
    process.on('unhandledRejection', (reason) => this.fatal('unhandled promise rejection', reason));
    process.on('uncaughtException', (err) => this.fatal('uncaught exception', err));
    return this;
  }

  private fatal(what: string, err: unknown): void {
    this.logger.error(`${what}: shutting down`, { error: errorSummary(err) });
    if (this.stopping) return;
    void this.run().finally(() => process.exit(1));
  }

  run(): Promise<void> {
    this.stopping ??= (async () => {
      const deadline = new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), this.timeoutMs).unref());
      const work = (async () => {
        for (const c of this.closers) {
          try {
            await c.close();
          } catch (e) {
            this.logger.warn('error while closing', { resource: c.name, error: (e as Error).message });
          }
        }
      })();
      const r = await Promise.race([work.then(() => 'done' as const), deadline]);
      if (r === 'timeout') this.logger.warn('shutdown timed out; exiting anyway', { timeout_ms: this.timeoutMs });
      else this.logger.info('shutdown complete');
    })();
    return this.stopping;
  }
}

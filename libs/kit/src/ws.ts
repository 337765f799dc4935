import { WebSocketServer, WebSocket, type ServerOptions } from 'ws';
import { CloseCode } from '@tessera/contracts';
import type { Logger } from './logger';

export interface SocketHubOptions extends Pick<ServerOptions, 'maxPayload'> {
  logger: Logger;
  /** Ping interval; a socket that has not answered the previous ping is terminated. */
  heartbeatMs?: number;
  /** Above this many buffered bytes a socket is a slow consumer and is closed with 1013. */
  maxBufferedBytes?: number;
  onCountChange?: (open: number) => void;
}

type Tracked = WebSocket & { isAlive?: boolean };

/**
 * A `noServer` WebSocket server with heartbeat ping/pong, stale-socket cleanup, max payload and
 * backpressure. Upgrades are routed by the service (`hub.wss.handleUpgrade`).
 */
export class SocketHub {
  readonly wss: WebSocketServer;
  private readonly timer: NodeJS.Timeout;
  private readonly maxBuffered: number;

  constructor(private readonly opts: SocketHubOptions) {
    this.maxBuffered = opts.maxBufferedBytes ?? 4 * 1024 * 1024;
    this.wss = new WebSocketServer({ noServer: true, maxPayload: opts.maxPayload ?? 1024 * 1024, perMessageDeflate: false, clientTracking: true });
    this.wss.on('connection', (ws: Tracked) => {
      ws.isAlive = true;
      ws.on('pong', () => (ws.isAlive = true));
      ws.on('error', (err) => opts.logger.debug('socket error', { error: err.message }));
      ws.on('close', () => opts.onCountChange?.(this.wss.clients.size));
      opts.onCountChange?.(this.wss.clients.size);
    });
    this.timer = setInterval(() => this.sweep(), opts.heartbeatMs ?? 30_000);
    this.timer.unref();
  }

  get size(): number {
    return this.wss.clients.size;
  }

  private sweep(): void {
    for (const ws of this.wss.clients as Set<Tracked>) {
      if (ws.isAlive === false) {
        ws.terminate();
        continue;
      }
      ws.isAlive = false;
      try {
        ws.ping();
      } catch {
        ws.terminate();
      }
    }
  }

  /**
   * Send JSON unless the socket is backed up past the limit; a slow consumer is closed with 1013
   * so that it reconnects and resumes instead of the server buffering without bound.
   */
  send(ws: WebSocket, message: unknown): boolean {
    return sendJson(ws, message, this.maxBuffered);
  }

  /** Close every socket with a code (1001 on shutdown) and stop the heartbeat. */
  async close(code: number = CloseCode.GoingAway, reason = 'server shutting down', graceMs = 2_000): Promise<void> {
    clearInterval(this.timer);
    const sockets = [...this.wss.clients];
    await Promise.all(
      sockets.map(
        (ws) =>
          new Promise<void>((resolve) => {
            if (ws.readyState === WebSocket.CLOSED) return resolve();
            const t = setTimeout(() => {
              ws.terminate();
              resolve();
            }, graceMs);
            ws.once('close', () => {
              clearTimeout(t);
              resolve();
            });
            ws.close(code, reason);
          }),
      ),
    );
    await new Promise<void>((resolve) => this.wss.close(() => resolve()));
  }
}

export function sendJson(ws: WebSocket, message: unknown, maxBuffered = 4 * 1024 * 1024): boolean {
  if (ws.readyState !== WebSocket.OPEN) return false;
  if (ws.bufferedAmount > maxBuffered) {
    ws.close(CloseCode.TryAgainLater, 'slow consumer: reconnect and resume');
    return false;
  }
  ws.send(typeof message === 'string' ? message : JSON.stringify(message));
  return true;
}

import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, WebSocket, type RawData } from 'ws';
import { CloseCode } from '@tessera/contracts';
import { BadRequest, Forbidden, HttpError, NotFound, Unavailable } from './errors';
import { isStorageUnreachable, toErrorResponse } from './http';
import { errorSummary, type Logger } from './logger';
import type { Metrics } from './metrics';

/**
 * What an app gives the hub for one kind of socket: which paths it serves and what to do once a
 * client is connected. The app never sees raw `ws` events: the hub owns the socket's life
 * (upgrade, Origin, error, ping/pong, message rate, order of messages, close, shutdown).
 */
export interface SocketEndpoint {
  /** Matched against the request's path (without the query); its groups are percent-decoded by the hub. */
  path: RegExp;
  /**
   * Runs after the handshake, with the decoded path groups. Resolves to the socket's handler;
   * throwing SocketRefusal closes with its code (1008 by default) and reason (auth, ownership), anything else
   * with 1011. Messages that arrive meanwhile wait (bounded) and are then handled in order.
   */
  open(ctx: SocketContext): Promise<SocketHandler>;
}

export interface SocketContext {
  readonly req: IncomingMessage;
  /** The path's groups, decoded. */
  readonly params: string[];
  /** The hub's socket, for sending (`hub.send`); do not attach listeners to it. */
  readonly ws: WebSocket;
  /** Aborted when the socket closes, also while `open` is still running. */
  readonly closed: AbortSignal;
}

export interface SocketHandler {
  /** One message at a time, in the order received; the next waits until this one settles. */
  onMessage(data: RawData, isBinary: boolean): Promise<void> | void;
  /** A message was dropped because the client sends too fast; tell it (a protocol error frame). */
  onRateLimited?(): void;
  /** `onMessage` threw: tell the client (the hub has logged it); without this the socket closes with 1011. */
  onError?(err: unknown): void;
  /** Called once when the socket is gone, also when it closed while `open` ran. */
  onClose?(): Promise<void> | void;
}

/**
 * A refusal of an authenticated session: closes with the reason (a client can show it) and 1008,
 * or a code of the application's own (4000–4999: the bridge's 4401 unauthorized, 4404 unknown).
 */
export class SocketRefusal extends Error {
  constructor(
    message?: string,
    readonly code: number = CloseCode.PolicyViolation,
  ) {
    super(message);
  }
}

export interface SocketHubOptions {
  logger: Logger;
  /** Largest message accepted; a larger one closes the socket with 1009. */
  maxPayload?: number;
  /** Ping interval; a socket that has not answered the previous ping is terminated. */
  heartbeatMs?: number;
  /** Above this many buffered bytes a socket is a slow consumer and is closed with 1013. */
  maxBufferedBytes?: number;
  /** Browser origins allowed to open sockets (`*`: any). A request without Origin is not a browser's. */
  origins?: string[];
  /** Messages per second a socket may send, with bursts up to `messageBurst`. */
  messagesPerSecond?: number;
  messageBurst?: number;
  /** Messages (and their bytes) waiting to be handled, also while `open` runs; past either they count as too fast. */
  maxQueued?: number;
  maxQueuedBytes?: number;
  /** True while the process shuts down: new upgrades get 503. */
  isShuttingDown?: () => boolean;
  onCountChange?: (open: number) => void;
}

type Tracked = WebSocket & { isAlive?: boolean };

/** A client that keeps sending after this many dropped messages in a row is disconnected. */
const DROPS_BEFORE_CLOSE = 50;

/**
 * The one way a Tessera service holds WebSockets. `attach(server, endpoints)` takes the server's
 * upgrades: a path that matches no endpoint is a 404, a bad percent-encoding a 400, a refused
 * Origin a 403, all in the shared error shape before any handshake. Every accepted socket gets
 * error, pong and close handling, a heartbeat, a message-rate budget and in-order handling, and
 * nothing a client sends (a frame, a path, a header) can throw out of the hub.
 */
export class SocketHub {
  private readonly wss: WebSocketServer;
  private readonly timer: NodeJS.Timeout;
  private readonly maxBuffered: number;

  constructor(private readonly opts: SocketHubOptions) {
    this.maxBuffered = opts.maxBufferedBytes ?? 4 * 1024 * 1024;
    this.wss = new WebSocketServer({ noServer: true, maxPayload: opts.maxPayload ?? 1024 * 1024, perMessageDeflate: false, clientTracking: true });
    this.wss.on('connection', (ws: Tracked) => {
      ws.isAlive = true;
      ws.on('pong', () => (ws.isAlive = true));
      // Oversized or malformed frames (bad UTF-8, bad opcodes) end here; ws then closes with 1009/1007/1002.
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

  /** Route the server's upgrade requests to `endpoints`. */
  attach(server: Server, endpoints: SocketEndpoint[]): void {
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      try {
        this.upgrade(req, socket, head, endpoints);
      } catch (err) {
        const status = refuseUpgrade(socket, err);
        if (status >= 500) this.opts.logger.error('upgrade failed', { error: errorSummary(err) });
        else this.opts.logger.debug('upgrade refused', { status, error: errorSummary(err) });
      }
    });
  }

  private upgrade(req: IncomingMessage, socket: Duplex, head: Buffer, endpoints: SocketEndpoint[]): void {
    socket.on('error', (err) => this.opts.logger.debug('upgrade socket error', { error: err.message }));
    if (this.opts.isShuttingDown?.()) throw new Unavailable('shutting down; reconnect');
    if (!originAllowed(req.headers.origin, this.opts.origins ?? [])) throw new Forbidden(`origin ${req.headers.origin} is not allowed`);
    const path = pathOf(req.url);
    for (const endpoint of endpoints) {
      const m = endpoint.path.exec(path);
      if (!m) continue;
      const params = m.slice(1).map((segment, i) => {
        const decoded = safeDecode(segment ?? '');
        if (decoded === null) throw new BadRequest(`path segment ${i + 1} is not valid percent-encoding`);
        return decoded;
      });
      this.wss.handleUpgrade(req, socket, head, (ws) => {
        this.wss.emit('connection', ws, req);
        this.run(ws, req, params, endpoint);
      });
      return;
    }
    throw new NotFound('no WebSocket endpoint here');
  }

  /** One socket's life: buffer and rate-limit messages, open the session, then handle them in order. */
  private run(ws: WebSocket, req: IncomingMessage, params: string[], endpoint: SocketEndpoint): void {
    const log = this.opts.logger;
    const closed = new AbortController();
    const queue: [RawData, boolean][] = [];
    const rate = new TokenBucket(this.opts.messagesPerSecond ?? 20, this.opts.messageBurst ?? 40);
    const maxQueued = this.opts.maxQueued ?? 32;
    const maxQueuedBytes = this.opts.maxQueuedBytes ?? 1024 * 1024;
    let queuedBytes = 0;
    let handler: SocketHandler | null = null;
    let draining = false;
    let drops = 0;

    const drain = async () => {
      if (draining || !handler) return;
      draining = true;
      try {
        while (queue.length && !closed.signal.aborted) {
          const [data, isBinary] = queue.shift()!;
          queuedBytes -= byteLength(data);
          try {
            await handler.onMessage(data, isBinary);
          } catch (err) {
            // A refusal of the client's message (a 4xx) is the client's mistake, not the service's.
            if (err instanceof HttpError && err.status < 500) log.info('socket message refused', { code: err.code, error: errorSummary(err) });
            else if (isStorageUnreachable(err)) log.warn('socket message failed: storage unreachable', { error: errorSummary(err) });
            else log.error('socket message failed', { error: errorSummary(err) });
            if (handler.onError) safely(() => handler!.onError!(err), log);
            else ws.close(CloseCode.InternalError, 'the message could not be processed');
          }
        }
      } finally {
        draining = false;
      }
    };

    ws.on('message', (data, isBinary) => {
      const size = byteLength(data);
      if (!rate.take() || queue.length >= maxQueued || queuedBytes + size > maxQueuedBytes) {
        if (++drops >= DROPS_BEFORE_CLOSE) return ws.close(CloseCode.PolicyViolation, 'too many messages; slow down');
        if (handler?.onRateLimited) safely(() => handler!.onRateLimited!(), log);
        return;
      }
      drops = 0;
      queuedBytes += size;
      queue.push([data, isBinary]);
      void drain();
    });
    ws.on('close', () => {
      closed.abort();
      queue.length = 0;
      if (handler?.onClose) void Promise.resolve(safely(() => handler!.onClose!(), log)).catch((err) => log.warn('socket close failed', { error: errorSummary(err) }));
    });

    endpoint.open({ req, params, ws, closed: closed.signal }).then(
      (h) => {
        handler = h;
        // Closed while it opened: the session's own cleanup runs now (subscriptions, listeners).
        if (closed.signal.aborted) return void Promise.resolve(safely(() => h.onClose?.(), log)).catch(() => undefined);
        void drain();
      },
      (err) => {
        if (err instanceof SocketRefusal) return ws.close(err.code, truncateReason(err.message));
        // PostgreSQL or Redis out of reach: 1013, as for any server that cannot take a session now; the client comes back.
        if (isStorageUnreachable(err)) {
          log.warn('socket open failed: storage unreachable', { error: errorSummary(err) });
          return ws.close(CloseCode.TryAgainLater, 'storage unavailable; try again');
        }
        log.error('socket open failed', { error: errorSummary(err) });
        ws.close(CloseCode.InternalError, 'could not open the session; try again');
      },
    );
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

/**
 * Browsers send Origin on upgrades and CORS does not cover WebSockets: without this check any site
 * could open a socket with the user's cookie. A request without Origin is not a browser's.
 */
export function originAllowed(origin: string | undefined, allowed: string[]): boolean {
  if (!origin) return true;
  return allowed.includes('*') || allowed.includes(origin);
}

/** Answer an upgrade request with an HTTP error in the shared error shape, then close. */
export function refuseUpgrade(socket: Duplex, err: unknown): number {
  const { status, body, headers } = toErrorResponse(err);
  if (socket.destroyed || !socket.writable) return status;
  const payload = Buffer.from(JSON.stringify(body));
  let head = `HTTP/1.1 ${status} ${STATUS_TEXT[status] ?? 'Error'}\r\n`;
  for (const [k, v] of Object.entries({ 'content-type': 'application/json; charset=utf-8', ...headers, 'content-length': String(payload.length), connection: 'close' }))
    head += `${k}: ${v}\r\n`;
  socket.end(Buffer.concat([Buffer.from(head + '\r\n', 'latin1'), payload]));
  return status;
}

const STATUS_TEXT: Record<number, string> = { 400: 'Bad Request', 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found', 429: 'Too Many Requests', 500: 'Internal Server Error', 503: 'Service Unavailable' };

/** The path of a request target, whatever it holds (an absolute URL, garbage): never throws. */
function pathOf(url: string | undefined): string {
  const target = url ?? '/';
  const q = target.indexOf('?');
  const path = q < 0 ? target : target.slice(0, q);
  if (path.startsWith('/')) return path;
  try {
    return new URL(path).pathname;
  } catch {
    return '/';
  }
}

function safeDecode(segment: string): string | null {
  try {
    return decodeURIComponent(segment);
  } catch {
    return null;
  }
}

/** Close reasons are limited to 123 bytes by the protocol; ws throws past that. */
function truncateReason(reason: string): string {
  let r = reason;
  while (Buffer.byteLength(r) > 123) r = r.slice(0, -1);
  return r;
}

function safely<T>(fn: () => T, log: Logger): T | undefined {
  try {
    return fn();
  } catch (err) {
    log.error('socket callback failed', { error: errorSummary(err) });
    return undefined;
  }
}

function byteLength(data: RawData): number {
  if (Array.isArray(data)) return data.reduce((n, b) => n + b.length, 0);
  return (data as Buffer | ArrayBuffer).byteLength;
}

/** A budget of `rate` messages per second with bursts up to `burst`. */
class TokenBucket {
  private tokens: number;
  private last = performance.now();

  constructor(
    private readonly rate: number,
    private readonly burst: number,
  ) {
    this.tokens = burst;
  }

  take(): boolean {
    const now = performance.now();
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) / 1000) * this.rate);
    this.last = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}


/** The socket settings every service's config carries (WS_MESSAGES_PER_SECOND / _BURST where it limits rates). */
export interface SocketSettings {
  WS_MAX_PAYLOAD: number;
  WS_HEARTBEAT_MS: number;
  WS_MESSAGES_PER_SECOND?: number;
  WS_MESSAGE_BURST?: number;
  CORS_ORIGINS: string[];
}

/** A service's SocketHub from its config, counting its open sockets in the service's metrics under `kind`. */
export function serviceSocketHub(o: {
  config: SocketSettings;
  logger: Logger;
  metrics: Pick<Metrics, 'openSockets'>;
  kind: string;
  isShuttingDown?: () => boolean;
}): SocketHub {
  return new SocketHub({
    logger: o.logger,
    maxPayload: o.config.WS_MAX_PAYLOAD,
    heartbeatMs: o.config.WS_HEARTBEAT_MS,
    messagesPerSecond: o.config.WS_MESSAGES_PER_SECOND,
    messageBurst: o.config.WS_MESSAGE_BURST,
    origins: o.config.CORS_ORIGINS,
    isShuttingDown: o.isShuttingDown,
    onCountChange: (n) => o.metrics.openSockets.set({ kind: o.kind }, n),
  });
}

import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import corsMiddleware from 'cors';
import express, { type ErrorRequestHandler, type Express, type NextFunction, type Request, type RequestHandler, type Response } from 'express';
import helmet from 'helmet';
import { ErrorCode, JSON_LIMITS, jsonProblems, type ErrorBody } from '@tessera/contracts';
import { z } from 'zod';
import { BadRequest, HttpError, NotFound, zodIssues } from './errors';
import { errorSummary, type Logger } from './logger';
import type { Metrics } from './metrics';
import { assertRoutesDeclared } from './routes';

declare module 'express-serve-static-core' {
  interface Request {
    id: string;
  }
}

export const REQUEST_ID_HEADER = 'x-request-id';

export interface HttpAppOptions {
  logger: Logger;
  metrics?: Metrics;
  /** Allowed browser origins; `*` allows any. */
  corsOrigins?: string[];
  /** JSON body limit, e.g. `1mb`. */
  bodyLimit?: string;
}

/** Express app with request ids, security headers, CORS allow-list, JSON body limit and access logs. */
export function createHttpApp(opts: HttpAppOptions): Express {
  const app = express();
  app.disable('x-powered-by');
  // A SHA-1 of every JSON reply, for a conditional GET no client of these APIs makes (about 8 µs
  // of a request's ~100 in tools/bench/http-stack.ts's profile).
  app.disable('etag');
  app.set('trust proxy', true);
  app.set('query parser', 'simple');

  app.use(requestId());
  app.use(securityHeaders());
  app.use(cors(opts.corsOrigins ?? []));
  if (opts.metrics) app.use(opts.metrics.httpMiddleware());
  app.use(accessLog(opts.logger));
  app.use(express.json({ limit: opts.bodyLimit ?? '1mb' }));
  app.use(jsonDepthLimit());
  return app;
}

/**
 * Nesting a JSON body may have: twice the contracts' bound for one field, so a field at that bound
 * always fits and its schema names what is wrong; anything deeper is refused before a route (or
 * recursive code such as JSON.stringify) sees it.
 */
export const BODY_DEPTH = JSON_LIMITS.depth * 2;

export function jsonDepthLimit(depth = BODY_DEPTH): RequestHandler {
  return (req, _res, next) => next(jsonBodyProblem(req.body, depth) ?? undefined);
}

/** A parsed JSON body nested deeper than `depth`: the 400 naming where, or null. */
export function jsonBodyProblem(body: unknown, depth = BODY_DEPTH): BadRequest | null {
  if (body === null || typeof body !== 'object') return null;
  const [p] = jsonProblems(body, { depth, values: Number.POSITIVE_INFINITY, text: false }, 1);
  if (!p) return null;
  // The first segments name the field; the whole path would be `depth` segments long.
  const path = ['body', ...p.path.slice(0, 2).map(String)].join('.');
  return new BadRequest(`invalid body: ${path}: ${p.message}`, { issues: [{ path, message: p.message }] }, ErrorCode.ValidationFailed);
}

/**
 * Unknown routes → 404, then errors → the one error shape. Call after all routes are mounted. With
 * the app's API document, a route the document does not declare with an access rule stops the app
 * from starting (assertRoutesDeclared).
 */
export function finalizeHttpApp(app: Express, logger: Logger, openapi?: Record<string, unknown>): Express {
  if (openapi) assertRoutesDeclared(app as unknown as Parameters<typeof assertRoutesDeclared>[0], openapi);
  app.use((req, _res, next) => next(new NotFound(`no route for ${req.method} ${req.path}`)));
  app.use(errorHandler(logger));
  return app;
}

/** The request's id: the client's X-Request-Id when it is a sane token, else a new one. */
export function requestIdOf(req: IncomingMessage): string {
  const incoming = req.headers[REQUEST_ID_HEADER];
  return typeof incoming === 'string' && /^[A-Za-z0-9._:-]{1,128}$/.test(incoming) ? incoming : randomUUID();
}

export function requestId(): RequestHandler {
  return (req, res, next) => {
    req.id = requestIdOf(req);
    res.setHeader(REQUEST_ID_HEADER, req.id);
    next();
  };
}

/**
 * Headers for a JSON API: no framing, no sniffing, no referrer, HTTPS only, nothing to execute.
 * They are helmet's, taken once: they do not depend on the request, and helmet's chain of a dozen
 * middlewares cost a request more than setting them. Works on node's own objects too (the gateway's
 * proxy path, the direct lane).
 */
export function securityHeaders(): RequestHandler {
  const set: [string, string][] = [];
  const removed: string[] = [];
  const probe = { setHeader: (name: string, value: unknown) => set.push([name, String(value)]), removeHeader: (name: string) => removed.push(name) };
  const helmetOnce = helmet({
    contentSecurityPolicy: { useDefaults: false, directives: { defaultSrc: ["'none'"], frameAncestors: ["'none'"] } },
    frameguard: { action: 'deny' },
    referrerPolicy: { policy: 'no-referrer' },
    crossOriginResourcePolicy: { policy: 'same-site' },
    strictTransportSecurity: { maxAge: 15_552_000, includeSubDomains: true },
  }) as unknown as (req: unknown, res: unknown, next: () => void) => void;
  helmetOnce({ headers: {} }, probe, () => undefined);
  return (_req, res, next) => {
    for (const [name, value] of set) res.setHeader(name, value);
    for (const name of removed) res.removeHeader(name);
    next();
  };
}

export const CORS_EXPOSED_HEADERS = ['X-Request-Id', 'Retry-After', 'X-RateLimit-Limit', 'X-RateLimit-Remaining'];

/**
 * CORS for an allow-list of origins (`*`: any), with credentials. A preflight from an origin not
 * on the list is refused with 403 in the error shape (the `cors` package would answer 204 without
 * CORS headers, which browsers report as an opaque network error).
 */
export function cors(allowed: string[]): RequestHandler {
  const any = allowed.includes('*');
  const isAllowed = (origin: string | undefined) => !!origin && (any || allowed.includes(origin));
  const allow = corsMiddleware({
    origin: (origin, cb) => cb(null, isAllowed(origin)),
    credentials: true,
    exposedHeaders: CORS_EXPOSED_HEADERS,
    methods: ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'],
    maxAge: 600,
    optionsSuccessStatus: 204,
  });
  return (req, res, next) => {
    const origin = req.header('origin');
    if (origin && !isAllowed(origin) && req.method === 'OPTIONS') {
      res.status(403).json(errorBody(ErrorCode.Forbidden, `origin ${origin} is not allowed`));
      return;
    }
    // Without an allowed origin, a preflight is a plain OPTIONS request for the routes to answer.
    if (!isAllowed(origin)) return next();
    allow(req, res, next);
  };
}

export function accessLog(logger: Logger): RequestHandler {
  return (req, res, next) => {
    // winston formats before it filters by level: skip the work when access logs are off.
    if (!logger.isLevelEnabled('http')) return next();
    const start = process.hrtime.bigint();
    res.on('finish', () => {
      const ms = Number(process.hrtime.bigint() - start) / 1e6;
      if (req.path === '/health' || req.path === '/metrics') return;
      logger.http('request', { request_id: req.id, method: req.method, url: req.originalUrl, status: res.statusCode, ms: Math.round(ms * 10) / 10 });
    });
    next();
  };
}

export function errorBody(code: string, message: string, details?: unknown): ErrorBody {
  return { error: { code, message, ...(details !== undefined && { details }) } };
}

/** Maps any thrown value to the error shape; a client's mistake is a 4xx, never a 500. */
export function errorHandler(logger: Logger): ErrorRequestHandler {
  return (err: unknown, req: Request, res: Response, _next: NextFunction) => {
    const reply = errorReply(logger, err, res, { request_id: req.id, method: req.method, url: req.originalUrl });
    if (!reply) return;
    for (const [k, v] of Object.entries(reply.headers ?? {})) res.setHeader(k, v);
    res.status(reply.status).json(reply.body);
  };
}

/**
 * What an error answers (toErrorResponse), with a 5xx logged in one bounded line (a database
 * error's message can carry kilobytes of query and source). Null when a reply was already under
 * way: it is cut off rather than continued with another. errorHandler sends it through express;
 * a request express never saw (the gateway's proxy path) sends it on node's own response.
 */
export function errorReply(logger: Logger, err: unknown, res: ServerResponse, request: { request_id: string; method?: string; url?: string }): ReturnType<typeof toErrorResponse> | null {
  const reply = toErrorResponse(err);
  if (reply.status >= 500) logger.error('request failed', { ...request, status: reply.status, err: errorSummary(err) });
  if (res.headersSent) {
    res.destroy();
    return null;
  }
  return reply;
}

export function toErrorResponse(err: unknown): { status: number; body: ErrorBody; headers?: Record<string, string> } {
  if (err instanceof HttpError) return { status: err.status, body: errorBody(err.code, err.message, err.details), headers: err.headers };
  if (err instanceof z.ZodError) {
    const issues = zodIssues(err);
    return { status: 400, body: errorBody(ErrorCode.ValidationFailed, `invalid request: ${issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`, { issues }) };
  }
  // body-parser / http-errors style errors carry a client status (malformed JSON, too large, ...).
  const e = err as { status?: number; statusCode?: number; type?: string; expose?: boolean; message?: string };
  const status = e?.status ?? e?.statusCode;
  if (typeof status === 'number' && status >= 400 && status < 500) {
    if (e.type === 'entity.too.large') return { status: 413, body: errorBody(ErrorCode.TooLarge, 'request body is too large') };
    if (e.type === 'entity.parse.failed') return { status: 400, body: errorBody(ErrorCode.BadRequest, 'request body is not valid JSON') };
    return { status, body: errorBody(ErrorCode.BadRequest, e.expose && e.message ? e.message : 'bad request') };
  }
  if (isStorageUnreachable(err)) return { status: 503, body: errorBody(ErrorCode.Unavailable, 'storage unavailable; try again') };
  return { status: 500, body: errorBody(ErrorCode.Internal, 'internal error') };
}

// Prisma's "cannot reach the database" codes; PostgreSQL's connection class 08, shutdown 57P0x,
// too many connections 53300; socket and name errors of pg and ioredis.
const UNREACHABLE = /^(P1001|P1002|P1008|P1017|08[0-9A-Z]{3}|57P0[1-3]|53300|ECONNREFUSED|ECONNRESET|ETIMEDOUT|EPIPE|ENOTFOUND|EAI_AGAIN)$/;
// pg's own words for a connection that went away, which carry no code.
const UNREACHABLE_MESSAGE = /Connection terminated|timeout exceeded when trying to connect/;

/**
 * PostgreSQL or Redis out of reach: a 503 the client may retry, a job a worker puts back rather
 * than fails. Any other storage error is ours (500).
 */
export function isStorageUnreachable(err: unknown): boolean {
  if (!err || typeof err !== 'object') return false;
  const e = err as { name?: string; message?: unknown; code?: unknown; errorCode?: unknown; cause?: { code?: unknown }; storageUnreachable?: unknown };
  // A service's own error for storage that is behind or away (the runtime's timeline tail when full).
  if (e.storageUnreachable === true || e.name === 'PrismaClientInitializationError') return true;
  if (typeof e.message === 'string' && UNREACHABLE_MESSAGE.test(e.message)) return true;
  return [e.code, e.errorCode, e.cause?.code].some((c) => typeof c === 'string' && UNREACHABLE.test(c));
}

/** The reason of every closeSignal's abort (one object: an abort without a reason builds a DOMException, stack and all). */
export const RESPONSE_CLOSED = new Error('the response closed');

/**
 * Aborts when the response closes, at its end or when the client goes: what a streaming route
 * stops its work by. The abort's reason is RESPONSE_CLOSED, made once (a reasonless abort built a
 * DOMException per response: about a twentieth of what an AG-UI run cost its instance beyond a
 * socket turn, tools/bench/runtime.ts agui --cpu-prof).
 */
export function closeSignal(res: ServerResponse): AbortSignal {
  const closed = new AbortController();
  res.once('close', () => closed.abort(RESPONSE_CLOSED));
  return closed.signal;
}

/** Wrap an async handler so its rejection reaches the error middleware (express 5 does this too). */
export const handle =
  (fn: (req: Request, res: Response, next: NextFunction) => Promise<unknown> | unknown): RequestHandler =>
  (req, res, next) => {
    Promise.resolve(fn(req, res, next)).catch(next);
  };

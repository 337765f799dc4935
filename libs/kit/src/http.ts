import { randomUUID } from 'node:crypto';
import express, { type ErrorRequestHandler, type Express, type NextFunction, type Request, type RequestHandler, type Response } from 'express';
import { ErrorCode, type ErrorBody } from '@tessera/contracts';
import { z } from 'zod';
import { HttpError, NotFound, zodIssues } from './errors';
import type { Logger } from './logger';
import type { Metrics } from './metrics';

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
  app.set('trust proxy', true);
  app.set('query parser', 'simple');

  app.use(requestId());
  app.use(securityHeaders());
  app.use(cors(opts.corsOrigins ?? []));
  if (opts.metrics) app.use(opts.metrics.httpMiddleware());
  app.use(accessLog(opts.logger));
  app.use(express.json({ limit: opts.bodyLimit ?? '1mb' }));
  return app;
}

/** Unknown routes → 404, then errors → the one error shape. Call after all routes are mounted. */
export function finalizeHttpApp(app: Express, logger: Logger): Express {
  app.use((req, _res, next) => next(new NotFound(`no route for ${req.method} ${req.path}`)));
  app.use(errorHandler(logger));
  return app;
}

export function requestId(): RequestHandler {
  return (req, res, next) => {
    const incoming = req.header(REQUEST_ID_HEADER);
    req.id = incoming && /^[A-Za-z0-9._:-]{1,128}$/.test(incoming) ? incoming : randomUUID();
    res.setHeader(REQUEST_ID_HEADER, req.id);
    next();
  };
}

export function securityHeaders(): RequestHandler {
  return (_req, res, next) => {
    res.setHeader('X-Content-Type-Options', 'nosniff');
    res.setHeader('X-Frame-Options', 'DENY');
    res.setHeader('Referrer-Policy', 'no-referrer');
    res.setHeader('Cross-Origin-Resource-Policy', 'same-site');
    res.setHeader('Strict-Transport-Security', 'max-age=15552000; includeSubDomains');
    next();
  };
}

export function cors(allowed: string[]): RequestHandler {
  const any = allowed.includes('*');
  return (req, res, next) => {
    const origin = req.header('origin');
    if (origin && (any || allowed.includes(origin))) {
      res.setHeader('Access-Control-Allow-Origin', origin);
      res.setHeader('Vary', 'Origin');
      res.setHeader('Access-Control-Allow-Credentials', 'true');
      res.setHeader('Access-Control-Expose-Headers', 'X-Request-Id, Retry-After, X-RateLimit-Limit, X-RateLimit-Remaining');
      if (req.method === 'OPTIONS') {
        res.setHeader('Access-Control-Allow-Methods', 'GET,POST,PUT,PATCH,DELETE,OPTIONS');
        res.setHeader('Access-Control-Allow-Headers', req.header('access-control-request-headers') ?? 'Authorization, Content-Type');
        res.setHeader('Access-Control-Max-Age', '600');
        res.status(204).end();
        return;
      }
    } else if (origin && req.method === 'OPTIONS') {
      res.status(403).json(errorBody(ErrorCode.Forbidden, `origin ${origin} is not allowed`));
      return;
    }
    next();
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
    const { status, body, headers } = toErrorResponse(err);
    if (status >= 500) logger.error('request failed', { request_id: req.id, method: req.method, url: req.originalUrl, err });
    if (res.headersSent) {
      res.destroy();
      return;
    }
    for (const [k, v] of Object.entries(headers ?? {})) res.setHeader(k, v);
    res.status(status).json(body);
  };
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
  return { status: 500, body: errorBody(ErrorCode.Internal, 'internal error') };
}

/** Wrap an async handler so its rejection reaches the error middleware (express 5 does this too). */
export const handle =
  (fn: (req: Request, res: Response, next: NextFunction) => Promise<unknown> | unknown): RequestHandler =>
  (req, res, next) => {
    Promise.resolve(fn(req, res, next)).catch(next);
  };

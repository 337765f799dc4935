import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Request, RequestHandler, Response } from 'express';
import { match, type MatchFunction } from 'path-to-regexp';
import getRawBody from 'raw-body';
import { accessLog, errorReply, jsonBodyProblem, requestId, securityHeaders } from './http';
import type { Logger } from './logger';
import type { Metrics } from './metrics';
import type { DeclaredDirect } from './routes';

/**
 * A route served "direct": on node's request and response, before express, by the same steps
 * express's middleware and router take for it (request id, security headers, metrics, access log,
 * JSON body, depth check, the route's guard, its input parsed, the one error shape). Only the
 * plain case takes this lane: a request with an Origin (CORS), a body that is not plain UTF-8
 * JSON, or one compressed goes through express and is answered as always. What it saves is
 * express's work per request (its router's walk, its middleware chain, the body parser's checks):
 * a protocol that makes an HTTP request per run (AG-UI) pays it on every turn.
 */
interface DirectRoute extends DeclaredDirect {
  matches: MatchFunction<Record<string, string>>;
}

function directRoute(r: DeclaredDirect): DirectRoute {
  // As express's router matches: case-insensitive, a trailing slash allowed, segments decoded.
  return { ...r, method: r.method.toUpperCase(), matches: match<Record<string, string>>(r.path, { decode: decodeURIComponent, sensitive: false, trailing: true }) };
}

export interface DirectLaneOptions {
  routes: DeclaredDirect[];
  logger: Logger;
  metrics: Metrics;
  /** The JSON body limit (the express app's). */
  bodyLimit: string;
}

const PLAIN_JSON = /^application\/json\s*(;\s*charset\s*=\s*"?utf-8"?\s*)?$/i;

/**
 * The request listener that serves the direct routes and hands every other request to `app`. The
 * request and response carry the app's prototypes from the start (the kit's
 * `expressServerOptions`), so a guard or handler written for express works on them unchanged.
 */
export function directLane(app: (req: IncomingMessage, res: ServerResponse) => void, o: DirectLaneOptions): (req: IncomingMessage, res: ServerResponse) => void {
  const routes = o.routes.map(directRoute);
  // What the express app's own middleware does first (createHttpApp), synchronous each.
  const first = [requestId(), securityHeaders(), accessLog(o.logger)];
  const find = (req: IncomingMessage): { route: DirectRoute; params: Record<string, string> } | null => {
    if (req.headers.origin !== undefined) return null;
    const path = (req.url ?? '/').split('?', 1)[0];
    for (const route of routes) {
      if (route.method !== req.method) continue;
      const m = route.matches(path);
      if (!m) continue;
      if (route.json && !plainJson(req)) return null;
      return { route, params: m.params };
    }
    return null;
  };
  return (req, res) => {
    let found: ReturnType<typeof find>;
    try {
      found = find(req);
    } catch {
      found = null; // a path express decodes its own way (a malformed escape): express answers it
    }
    if (!found) return app(req, res);
    void serve(found.route, found.params, req as Request, res as Response, o, first);
  };
}

/** A JSON body the lane reads as express.json() would, and nothing it would treat otherwise. */
function plainJson(req: IncomingMessage): boolean {
  const type = req.headers['content-type'];
  const encoding = req.headers['content-encoding'];
  return type !== undefined && PLAIN_JSON.test(type) && (encoding === undefined || encoding.toLowerCase() === 'identity');
}

async function serve(
  route: DirectRoute,
  params: Record<string, string>,
  req: Request,
  res: Response,
  o: DirectLaneOptions,
  first: RequestHandler[],
): Promise<void> {
  // What express's app sets before its middleware runs.
  req.originalUrl = req.url;
  (req as { res?: Response }).res = res;
  (res as { req?: Request }).req = req;
  for (const step of first) step(req, res, () => undefined);
  o.metrics.timeHttp(req, res, () => route.path);
  try {
    req.params = params;
    // A request without a body keeps `req.body` undefined, as express.json() leaves it.
    if (route.json && (req.headers['transfer-encoding'] !== undefined || req.headers['content-length'] !== undefined)) {
      // A Buffer decoded by node (raw-body's `encoding` looks its codec up in iconv-lite on every call).
      req.body = parseJson((await getRawBody(req, { limit: o.bodyLimit, length: req.headers['content-length'] })).toString('utf8'));
      const problem = jsonBodyProblem(req.body);
      if (problem) throw problem;
    }
    await runChain(route.chain, req, res);
  } catch (err) {
    sendError(o.logger, req, res, req.id, err);
  }
}

/** JSON.parse as express.json() parses (strict: an object or an array; an empty body is `{}`; a byte order mark skipped), failing as it does. */
function parseJson(decoded: string): unknown {
  const text = decoded.charCodeAt(0) === 0xfeff ? decoded.slice(1) : decoded;
  const first = /^[\x20\x09\x0a\x0d]*(.)/.exec(text)?.[1];
  if (first === undefined) return {};
  try {
    if (first !== '{' && first !== '[') throw new SyntaxError('not an object or array');
    return JSON.parse(text);
  } catch {
    throw Object.assign(new SyntaxError('request body is not valid JSON'), { status: 400, type: 'entity.parse.failed' });
  }
}

/**
 * The handlers in turn, as express runs a route's: each goes on by `next()`; an error (thrown,
 * rejected or passed to next) ends the chain. Settles when the last handler (the route's runner)
 * has: a guard's own promise ends as soon as it called next.
 */
function runChain(chain: RequestHandler[], req: Request, res: Response): Promise<void> {
  return new Promise((resolve, reject) => {
    let i = 0;
    const next = (err?: unknown): void => {
      if (err !== undefined && err !== null) return reject(err as Error);
      const h = chain[i++];
      const last = i === chain.length;
      try {
        const r = h(req, res, next) as unknown;
        if (last) Promise.resolve(r).then(() => resolve(), reject);
        else if (r instanceof Promise) r.then(undefined, next);
      } catch (e) {
        reject(e as Error);
      }
    };
    next();
  });
}

/** The kit's answer to an error (errorReply, as its express errorHandler sends it), for a request express never saw. */
export function sendError(logger: Logger, req: IncomingMessage, res: ServerResponse, id: string, err: unknown): void {
  const reply = errorReply(logger, err, res, { request_id: id, method: req.method, url: req.url });
  if (!reply) return;
  const { status, body, headers } = reply;
  const json = JSON.stringify(body);
  res.writeHead(status, { ...headers, 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(json) });
  res.end(req.method === 'HEAD' ? undefined : json);
}

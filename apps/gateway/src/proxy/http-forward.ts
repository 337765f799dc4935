import type { ClientRequest, IncomingMessage, ServerResponse } from 'node:http';
import { BadGateway, HttpError, TooLarge, Unavailable } from '@tessera/kit';
import { ErrorCode } from '@tessera/contracts';
import { connectTimeout, isUnreachable, transportOf, type Instance, type ServerPool } from './upstreams';
import { forwardResponseHeaders } from './headers';

export interface ForwardOptions {
  upstream: ServerPool;
  /** Path and query at the service. */
  path: string;
  /** Request headers for the service; `host` is set per instance. */
  headers: Record<string, string | string[] | number | undefined>;
  bodyLimit: number;
  connectTimeoutMs: number;
  /** Budget for the service's response headers; the body may then stream for as long as it takes. */
  responseTimeoutMs: number;
  /** The response could not be produced: the caller answers with the error shape. */
  fail: (err: HttpError) => void;
  /** Response headers came from the service (or the attempt failed): status and time to first byte. */
  onResponse?: (status: number, ms: number) => void;
}

export class GatewayTimeout extends HttpError {
  constructor(service: string, ms: number) {
    super(504, ErrorCode.GatewayTimeout, `${service} did not answer within ${ms} ms`, { service });
  }
}

/**
 * Forward one HTTP request and stream the reply back. Nothing is buffered: the request body is
 * written to the service as it arrives (counted against the limit), the service's body is piped
 * to the client chunk by chunk, and backpressure holds the faster side. The body is read only
 * once a connection to an instance stands, so that an instance that refuses the connection (or
 * does not accept it in time) is skipped for the next one with nothing lost.
 */
export function forwardHttp(req: IncomingMessage, res: ServerResponse, opts: ForwardOptions): void {
  const declared = req.headers['content-length'];
  if (declared !== undefined && Number(declared) > opts.bodyLimit) {
    return opts.fail(tooLarge(opts.bodyLimit));
  }
  const hasBody = declared !== undefined ? Number(declared) > 0 : req.headers['transfer-encoding'] !== undefined;
  const started = performance.now();
  const instances = opts.upstream.order();
  let retriedReset = false;
  const next = (i: number) => {
    attempt(req, res, opts, instances[i], hasBody, started, (err) => {
      // Nothing reached this instance: the next one gets the request.
      if (isUnreachable(err) && i + 1 < instances.length) return next(i + 1);
      // A keep-alive socket the service had just closed: once, the same instance on a new connection.
      if (err.code === 'ECONNRESET' && !retriedReset) {
        retriedReset = true;
        return next(i);
      }
      return false;
    });
  };
  next(0);
}

/** Returns false when it did not retry: the failure is the client's answer. */
type Retry = (err: NodeJS.ErrnoException) => false | void;

function attempt(req: IncomingMessage, res: ServerResponse, opts: ForwardOptions, inst: Instance, hasBody: boolean, started: number, retry: Retry): void {
  const pool = opts.upstream;
  const base = inst.base;
  // The client left while an earlier instance refused.
  if (res.destroyed) return;
  let settled = false;
  let upReq: ClientRequest;
  let bodyStarted = false;

  const settle = (err: HttpError | null, status: number) => {
    if (settled) return false;
    settled = true;
    clearTimeout(responseTimer);
    opts.onResponse?.(status, performance.now() - started);
    if (err) opts.fail(err);
    return true;
  };

  try {
    upReq = transportOf(inst).request({
      protocol: base.protocol,
      hostname: base.hostname,
      port: base.port,
      method: req.method,
      path: opts.path,
      headers: { ...opts.headers, host: inst.host },
      agent: inst.agent,
    });
  } catch (e) {
    settle(new BadGateway(`cannot reach ${pool.name}: ${(e as Error).message}`), 502);
    return;
  }
  connectTimeout(upReq, opts.connectTimeoutMs);
  const responseTimer = setTimeout(() => upReq.destroy(Object.assign(new Error('response timeout'), { code: 'RESPONSE_TIMEOUT' })), opts.responseTimeoutMs);

  upReq.on('response', (upRes) => {
    if (!settle(null, upRes.statusCode ?? 502)) return upRes.resume();
    res.writeHead(upRes.statusCode ?? 502, upRes.statusMessage, forwardResponseHeaders(upRes));
    // A streamed reply (no length): headers go out now, even when the first chunk is a while away.
    if (upRes.headers['content-length'] === undefined) res.flushHeaders();
    upRes.pipe(res);
    upRes.on('error', () => res.destroy());
    upRes.on('close', () => {
      if (!upRes.complete) res.destroy();
    });
  });

  upReq.on('error', (err: NodeJS.ErrnoException) => {
    if (settled) {
      // Mid-stream failure: the status line is gone, so the client sees a cut connection.
      if (!res.writableEnded) res.destroy();
      return;
    }
    if (isUnreachable(err)) pool.markDown(inst);
    const mayRetry = !bodyStarted && !res.headersSent && (isUnreachable(err) || (upReq.reusedSocket && err.code === 'ECONNRESET' && !hasBody));
    if (mayRetry) {
      settled = true;
      clearTimeout(responseTimer);
      res.off('close', onClientGone);
      if (retry(err) !== false) return;
      settled = false;
    }
    if (err.code === 'RESPONSE_TIMEOUT') settle(new GatewayTimeout(pool.name, opts.responseTimeoutMs), 504);
    else if (err.code === 'BODY_TOO_LARGE') settle(tooLarge(opts.bodyLimit), 413);
    else if (isUnreachable(err)) settle(new Unavailable(`${pool.name} is unavailable`, { service: pool.name, reason: err.code }), 503);
    else settle(new BadGateway(`${pool.name} failed to answer`, { service: pool.name, reason: err.code ?? err.message }), 502);
  });

  // The client went away: stop the work at the service too.
  const onClientGone = () => {
    if (!res.writableFinished) upReq.destroy();
  };
  res.once('close', onClientGone);

  if (!hasBody) {
    upReq.end();
    return;
  }
  // The body waits in the client's socket until this instance has taken the connection.
  upReq.once('socket', (socket) => {
    if (socket.connecting) socket.once('connect', () => sendBody());
    else sendBody();
  });

  const sendBody = () => {
    if (settled || upReq.destroyed) return;
    bodyStarted = true;
    let seen = 0;
    const onData = (chunk: Buffer) => {
      seen += chunk.length;
      if (seen > opts.bodyLimit) {
        req.off('data', onData);
        req.pause();
        // The rest of the body will not be read: close the connection after the 413.
        res.setHeader('Connection', 'close');
        upReq.destroy(Object.assign(new Error('body too large'), { code: 'BODY_TOO_LARGE' }));
        return;
      }
      if (!upReq.write(chunk)) {
        req.pause();
        upReq.once('drain', () => req.resume());
      }
    };
    req.on('data', onData);
    req.on('end', () => {
      if (seen <= opts.bodyLimit) upReq.end();
    });
    req.on('error', () => upReq.destroy());
  };
}

function tooLarge(limit: number): TooLarge {
  return new TooLarge(`request body is larger than ${limit} bytes`, { limit_bytes: limit });
}

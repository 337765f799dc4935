import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import express, { type RequestHandler } from 'express';
import { Histogram } from 'prom-client';
import { CloseCode, GatewayReadyReply } from '@tessera/contracts';
import {
  BadRequest,
  cors,
  NotFound,
  refuseUpgrade,
  REQUEST_ID_HEADER,
  requestId,
  requestIdOf,
  securityHeaders,
  readyWhen,
  sendError,
  serviceApp,
  serviceDocument,
  Unavailable,
  type Logger,
  type ServiceApi,
  type ServiceApp,
} from '@tessera/kit';
import { parseBytes } from './config';
import { isDocumentUpload, isIngest, isUpload, matchRoute, responseBudgetOf, type RouteMatch, type ServiceName } from './domain/routing';
import { EdgeGuard } from './edge/guard';
import { RateLimiter } from './edge/rate-limit';
import { forwardRequestHeaders } from './proxy/headers';
import { forwardHttp } from './proxy/http-forward';
import { forwardUpgrade } from './proxy/ws-upgrade';
import { TunnelSet } from './proxy/ws-tunnel';
import { consoleRoutes } from './routes/console';
import { upstreamsReady } from './routes/health';
import { asyncApiRoute, openApiRoute } from './routes/openapi';
import type { GatewayServices } from './services';

const api: ServiceApi = {
  title: 'Tessera gateway',
  tags: ['gateway'],
  healthSummary: 'Liveness of the gateway',
  readySummary: 'Redis, and each service behind the gateway',
  readySchema: GatewayReadyReply,
  extraRoutes: [
    { method: 'get', path: '/openapi.json', summary: 'This document: every service as reached through the gateway', tags: ['gateway'], access: 'public', responses: { 200: { description: 'OpenAPI 3.1' } } },
    {
      method: 'get',
      path: '/asyncapi.json',
      summary: 'The WebSocket protocols: runtime chat, Mission Ally, observability live view, bridge session',
      description: 'An AsyncAPI 3.0 document of the sockets of the deployed services, as reached through the gateway: addresses, parameters, credentials, messages each way with their schemas, close codes.',
      tags: ['gateway'],
      access: 'public',
      responses: { 200: { description: 'AsyncAPI 3.0' } },
    },
    { method: 'get', path: '/metrics', summary: 'Prometheus metrics', tags: ['gateway'], access: 'public', responses: { 200: { description: 'text exposition format' } } },
  ],
};

/** The gateway's own document (the one served at /openapi.json merges every service's into it). */
export const openapi = serviceDocument(api, []);

/** The gateway's HTTP app and WebSocket relay, built from its services (tests start it through server.ts). */
export function createGatewayApp(s: GatewayServices, opts: { isShuttingDown?: () => boolean } = {}): ServiceApp {
  const { config, logger, redis, metrics, upstreams } = s;
  const isShuttingDown = opts.isShuttingDown ?? (() => false);
  const upstreamLatency = new Histogram({
    name: 'gateway_upstream_duration_seconds',
    help: 'Time from receiving a request to the service’s response headers (or the failure), by service',
    labelNames: ['upstream', 'method', 'status'],
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [metrics.registry],
  });
  const tunnels = new TunnelSet((n) => metrics.openSockets.set({ kind: 'proxied' }, n));
  const limiter = new RateLimiter(redis, { limit: config.RATE_LIMIT_PER_MIN, windowMs: config.RATE_LIMIT_WINDOW_MS, prefix: config.RATE_LIMIT_PREFIX }, logger);
  const guard = new EdgeGuard({
    auth: s.auth,
    limiter,
    trustHops: config.TRUST_PROXY_HOPS,
    publicWorkflows: config.PUBLIC_WORKFLOWS,
    corsOrigins: config.CORS_ORIGINS,
  });
  const bodyLimit = parseBytes(config.BODY_LIMIT)!;
  const bodyLimitOf = (method: string, path: string) => {
    if (isUpload(method, path)) return config.UPLOAD_BODY_LIMIT;
    if (isDocumentUpload(method, path)) return config.DOCUMENTS_BODY_LIMIT;
    if (isIngest(method, path)) return config.OBSERVABILITY_BODY_LIMIT;
    return bodyLimit;
  };

  const accessLogged = logger.isLevelEnabled('http');

  /**
   * A proxied request once its edge headers are set: the gateway's own answer to OPTIONS, then
   * admission (token, rate limit) and the forward. Throws (rejects) what the caller answers with
   * the error shape; `ex.fail` takes the failures of the forward itself.
   */
  const proxy = async (req: IncomingMessage, res: ServerResponse, { route, path, upstreamPath }: RouteMatch, ex: Exchange) => {
    const method = req.method!;
    // CORS preflight is the gateway's: an allowed origin got its answer from cors() (express), any
    // other OPTIONS (no origin: curl, a script) gets this one. Never forwarded, no token needed.
    if (method === 'OPTIONS') {
      res.statusCode = 204;
      return void res.end();
    }
    const admission = await guard.admit(req, path, 'http');
    if (limiter.enabled) {
      res.setHeader('X-RateLimit-Limit', String(admission.rate.limit));
      res.setHeader('X-RateLimit-Remaining', String(admission.rate.remaining));
    }
    const upstream = upstreams[route.service];
    if (!upstream.deployed) throw new Unavailable(`${route.service} is not deployed`, { service: route.service });
    ex.upstream = route.service;
    forwardHttp(req, res, {
      upstream,
      path: upstreamPath,
      headers: forwardRequestHeaders(req, { requestId: ex.id, clientIp: admission.clientIp, trustHops: config.TRUST_PROXY_HOPS }),
      bodyLimit: bodyLimitOf(method, path),
      connectTimeoutMs: config.UPSTREAM_CONNECT_TIMEOUT_MS,
      responseTimeoutMs: responseBudgetOf(method, path, config.UPSTREAM_TIMEOUT_MS),
      fail: ex.fail,
      onResponse: (status, ms) => upstreamLatency.observe({ upstream: route.service, method, status: String(status) }, ms / 1000),
    });
  };

  // Not the kit's createHttpApp: its JSON body parser would read the bodies the gateway streams.
  const app = express();
  app.disable('x-powered-by');
  app.disable('etag');
  app.use(requestId());
  app.use(securityHeaders());
  app.use(cors(config.CORS_ORIGINS));
  app.use(accessLog(logger, accessLogged));
  // Proxied requests that onRequest hands over (those with an Origin) go first; everything else
  // falls through to the gateway's own routes.
  app.use((req, res, next) => {
    const m = matchRoute(req.originalUrl);
    if (!m.ok) return next(m.reason === 'bad_path' ? badPath() : undefined);
    const ex: Exchange = (res.locals.exchange = { id: req.id, fail: next });
    proxy(req, res, m.match, ex).catch(next);
  });

  /**
   * The server's request handler. Proxied traffic is the hot path: it is answered here, on node's
   * own objects, without express's work per request (its router, and the request and response
   * objects it re-prototypes): about a third less CPU per proxied request (tools/bench/gateway.ts
   * proxy), more than express's own share of the profile. What express's middleware adds to such a
   * request is done here the same way: the kit's request id and security headers, the access log,
   * the kit's error shape. Everything else goes to the express app unchanged: the gateway's own
   * routes and 404s, and any request with an Origin (CORS is the kit's middleware, written for
   * express).
   */
  const onRequest = (req: IncomingMessage, res: ServerResponse) => {
    const m = matchRoute(req.url!);
    if ((!m.ok && m.reason === 'no_route') || req.headers.origin !== undefined) return void app(req, res);
    const id = requestIdOf(req);
    res.setHeader(REQUEST_ID_HEADER, id);
    setSecurityHeaders(req, res, () => undefined);
    const ex: Exchange = { id, fail: (err) => sendError(logger, req, res, id, err) };
    if (accessLogged) logWhenClosed(logger, req, res, { id, url: req.url! }, () => ex.upstream);
    if (!m.ok) return ex.fail(badPath());
    proxy(req, res, m.match, ex).catch(ex.fail);
  };

  // The gateway's own routes (proxied requests are measured by upstream above).
  const http = serviceApp({
    service: 'gateway',
    api,
    services: { logger, metrics, config },
    health: { ready: { redis: readyWhen.redis(redis) }, readyDetails: upstreamsReady(upstreams, config.HEALTH_TIMEOUT_MS), timeoutMs: config.HEALTH_TIMEOUT_MS },
    isShuttingDown,
    guards: {},
    routes: () => undefined,
    edge: {
      base: app,
      openapi: openApiRoute({ own: openapi, upstreams, timeoutMs: config.HEALTH_TIMEOUT_MS, cacheMs: config.OPENAPI_CACHE_MS, publicUrl: config.PUBLIC_URL }),
      // The operator console (apps/console's build) at /console, and the sockets' document.
      undeclared: [asyncApiRoute({ upstreams, publicUrl: config.PUBLIC_URL }), consoleRoutes({ dist: config.CONSOLE_DIST })],
    },
    sockets: {
      attach: (server) => {
        // The server was made with the express app as its request handler: onRequest goes in its
        // place, and hands it what is not proxied.
        server.off('request', app).on('request', onRequest);
        // The gateway relays upgrades byte for byte to the service that holds the socket (the proxy, the one deliberate exception): it holds no socket of its own for a hub to own.
        // eslint-disable-next-line no-restricted-syntax
        server.on('upgrade', onUpgrade);
      },
      // Relayed WebSockets get 1001, each client told while the server still answers.
      close: () => tunnels.closeAll(CloseCode.GoingAway, 'gateway shutting down'),
    },
  });

  const onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', (err) => logger.debug('client socket error', { error: err.message }));
    const id = requestIdOf(req);
    const refuse = (err: unknown, match?: RouteMatch) => {
      const status = refuseUpgrade(socket, err);
      logger.http('upgrade refused', { request_id: id, url: req.url, status, upstream: match?.route.service });
    };
    const m = matchRoute(req.url ?? '/');
    if (!m.ok) return refuse(m.reason === 'bad_path' ? badPath() : new NotFound(`no route for ${req.url}`));
    const { route, path, upstreamPath } = m.match;
    if (!route.websocket) return refuse(new NotFound(`${path} does not accept WebSocket connections`), m.match);
    if ((req.headers.upgrade ?? '').toLowerCase() !== 'websocket') return refuse(new BadRequest('only WebSocket upgrades are supported'), m.match);
    if (isShuttingDown()) return refuse(new Unavailable('gateway is shutting down'), m.match);
    const upstream = upstreams[route.service];
    guard.admit(req, path, 'ws').then(
      (admission) => {
        if (!upstream.deployed) return refuse(new Unavailable(`${route.service} is not deployed`, { service: route.service }), m.match);
        forwardUpgrade(req, socket, head, {
          upstream,
          path: upstreamPath,
          headers: forwardRequestHeaders(req, { requestId: id, clientIp: admission.clientIp, trustHops: config.TRUST_PROXY_HOPS }, true),
          connectTimeoutMs: config.UPSTREAM_CONNECT_TIMEOUT_MS,
          responseTimeoutMs: config.UPSTREAM_TIMEOUT_MS,
          onTunnel: (t) => {
            if (!tunnels.add(t)) return;
            const opened = Date.now();
            void t.closed.then(() => logger.http('websocket closed', { request_id: id, upstream: route.service, open_ms: Date.now() - opened }));
          },
          onDone: (status, ms) => {
            upstreamLatency.observe({ upstream: route.service, method: 'UPGRADE', status: String(status) }, ms / 1000);
            logger.http('upgrade', { request_id: id, url: req.url, status, upstream: route.service, ms: Math.round(ms * 10) / 10 });
          },
        });
      },
      (err) => refuse(err, m.match),
    );
  };

  return http;
}

/**
 * A proxied request as the gateway follows it: its id, where a failure of its forward goes (the
 * error shape), and the service it was forwarded to (for its access-log line).
 */
interface Exchange {
  id: string;
  fail: (err: unknown) => void;
  upstream?: ServiceName;
}

const badPath = () => new BadRequest('path contains dot segments or encoded separators');

/** The kit's security headers (it only sets and removes response headers), on node's objects. */
const setSecurityHeaders = securityHeaders() as unknown as (req: IncomingMessage, res: ServerResponse, next: () => void) => void;

/** The access log for requests express serves; `enabled` is false when nobody reads it (winston runs its formats before it filters by level). */
function accessLog(logger: Logger, enabled: boolean): RequestHandler {
  return (req, res, next) => {
    if (!enabled || req.path === '/health' || req.path === '/metrics') return next();
    logWhenClosed(logger, req, res, { id: req.id, url: req.originalUrl }, () => (res.locals.exchange as Exchange | undefined)?.upstream);
    next();
  };
}

/**
 * One access-log line per request, written when its response closes (`aborted`: the client left
 * before the end). `upstream` is asked then: the service the request was forwarded to, if any.
 */
function logWhenClosed(logger: Logger, req: IncomingMessage, res: ServerResponse, line: { id: string; url: string }, upstream: () => ServiceName | undefined): void {
  const start = performance.now();
  res.once('close', () => {
    logger.http('request', {
      request_id: line.id,
      method: req.method,
      url: line.url,
      status: res.statusCode,
      upstream: upstream(),
      ms: Math.round((performance.now() - start) * 10) / 10,
      ...(!res.writableFinished && { aborted: true }),
    });
  });
}


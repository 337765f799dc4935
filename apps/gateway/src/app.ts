import { randomUUID } from 'node:crypto';
import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import express, { type Express, type RequestHandler } from 'express';
import type { Redis } from 'ioredis';
import { Histogram } from 'prom-client';
import { buildOpenApi, CloseCode, GatewayReadyReply, HealthReply } from '@tessera/contracts';
import {
  authSettings,
  BadRequest,
  cors,
  createAuth,
  finalizeHttpApp,
  GracefulShutdown,
  listen,
  Metrics,
  NotFound,
  refuseUpgrade,
  REQUEST_ID_HEADER,
  requestId,
  securityHeaders,
  Unavailable,
  type Logger,
} from '@tessera/kit';
import { parseBytes, type GatewayConfig } from './config';
import { isDocumentUpload, isIngest, isUpload, matchRoute, responseBudgetOf, type RouteMatch } from './domain/routing';
import { EdgeGuard } from './edge/guard';
import { RateLimiter } from './edge/rate-limit';
import { forwardRequestHeaders } from './proxy/headers';
import { forwardHttp } from './proxy/http-forward';
import { createUpstreams, destroyUpstreams } from './proxy/upstreams';
import { forwardUpgrade } from './proxy/ws-upgrade';
import { TunnelSet } from './proxy/ws-tunnel';
import { consoleRoutes } from './routes/console';
import { healthRoutes } from './routes/health';
import { asyncApiRoute, openApiRoute } from './routes/openapi';

export interface GatewayDeps {
  config: GatewayConfig;
  logger: Logger;
  redis: Redis;
  isShuttingDown?: () => boolean;
}

export const openapi = buildOpenApi({
  title: 'Tessera gateway',
  version: '0.1.0',
  routes: [
    { method: 'get', path: '/health', summary: 'Liveness of the gateway', tags: ['gateway'], access: 'public', responses: { 200: { description: 'alive', schema: HealthReply } } },
    {
      method: 'get',
      path: '/ready',
      summary: 'Readiness: Redis, and each service behind the gateway',
      tags: ['gateway'],
      access: 'public',
      responses: { 200: { description: 'ready (possibly degraded)', schema: GatewayReadyReply }, 503: { description: 'the gateway cannot serve', schema: GatewayReadyReply } },
    },
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
});

export interface GatewayApp {
  app: Express;
  metrics: Metrics;
  /** The server's `upgrade` listener. */
  onUpgrade: (req: IncomingMessage, socket: Duplex, head: Buffer) => void;
  tunnels: TunnelSet;
  /** Releases the connection pools (after the server has closed). */
  close: () => void;
}

export function createGatewayApp(deps: GatewayDeps): GatewayApp {
  const { config, logger, redis } = deps;
  const isShuttingDown = deps.isShuttingDown ?? (() => false);
  const metrics = new Metrics('gateway');
  const upstreamLatency = new Histogram({
    name: 'gateway_upstream_duration_seconds',
    help: 'Time from receiving a request to the service’s response headers (or the failure), by service',
    labelNames: ['upstream', 'method', 'status'],
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [metrics.registry],
  });
  const upstreams = createUpstreams(config);
  const tunnels = new TunnelSet((n) => metrics.openSockets.set({ kind: 'proxied' }, n));
  const limiter = new RateLimiter(redis, { limit: config.RATE_LIMIT_PER_MIN, windowMs: config.RATE_LIMIT_WINDOW_MS, prefix: config.RATE_LIMIT_PREFIX }, logger);
  const guard = new EdgeGuard({
    auth: createAuth(authSettings(config)),
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

  // Not the kit's createHttpApp: its JSON body parser would read the bodies the gateway streams.
  const app = express();
  app.disable('x-powered-by');
  app.disable('etag');
  app.use(requestId());
  app.use(securityHeaders());
  app.use(cors(config.CORS_ORIGINS));
  app.use(accessLog(logger));

  // Proxied traffic is the hot path: it goes first, with as few layers as possible in front.
  // Everything else falls through to the gateway's own routes.
  const proxy: RequestHandler = async (req, res, next) => {
    const m = matchRoute(req.originalUrl);
    if (!m.ok) return next(m.reason === 'bad_path' ? new BadRequest('path contains dot segments or encoded separators') : undefined);
    const { route, path, upstreamPath } = m.match;
    // CORS preflight is the gateway's: an allowed origin got its answer from cors() above, any
    // other OPTIONS (no origin: curl, a script) gets this one. Never forwarded, no token needed.
    if (req.method === 'OPTIONS') return void res.status(204).end();
    const admission = await guard.admit(req, path, 'http');
    if (limiter.enabled) {
      res.setHeader('X-RateLimit-Limit', String(admission.rate.limit));
      res.setHeader('X-RateLimit-Remaining', String(admission.rate.remaining));
    }
    const upstream = upstreams[route.service];
    if (!upstream.deployed) throw new Unavailable(`${route.service} is not deployed`, { service: route.service });
    res.locals.upstream = route.service;
    forwardHttp(req, res, {
      upstream,
      path: upstreamPath,
      headers: forwardRequestHeaders(req, { requestId: req.id, clientIp: admission.clientIp, trustHops: config.TRUST_PROXY_HOPS }),
      bodyLimit: bodyLimitOf(req.method, path),
      connectTimeoutMs: config.UPSTREAM_CONNECT_TIMEOUT_MS,
      responseTimeoutMs: responseBudgetOf(req.method, path, config.UPSTREAM_TIMEOUT_MS),
      fail: (err) => next(err),
      onResponse: (status, ms) => upstreamLatency.observe({ upstream: route.service, method: req.method, status: String(status) }, ms / 1000),
    });
  };
  app.use(proxy);
  // The gateway's own routes (proxied requests are measured by upstream above).
  app.use(metrics.httpMiddleware());
  app.use(healthRoutes({ redis, upstreams, timeoutMs: config.HEALTH_TIMEOUT_MS, isShuttingDown }));
  app.use(metrics.router());
  app.use(openApiRoute({ own: openapi, upstreams, timeoutMs: config.HEALTH_TIMEOUT_MS, cacheMs: config.OPENAPI_CACHE_MS, publicUrl: config.PUBLIC_URL }));
  app.use(asyncApiRoute({ upstreams, publicUrl: config.PUBLIC_URL }));
  // The operator console (apps/console's build) at /console.
  app.use(consoleRoutes({ dist: config.CONSOLE_DIST }));
  finalizeHttpApp(app, logger);

  const onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', (err) => logger.debug('client socket error', { error: err.message }));
    const id = requestIdOf(req);
    const refuse = (err: unknown, match?: RouteMatch) => {
      const status = refuseUpgrade(socket, err);
      logger.http('upgrade refused', { request_id: id, url: req.url, status, upstream: match?.route.service });
    };
    const m = matchRoute(req.url ?? '/');
    if (!m.ok) return refuse(m.reason === 'bad_path' ? new BadRequest('path contains dot segments or encoded separators') : new NotFound(`no route for ${req.url}`));
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

  return { app, metrics, onUpgrade, tunnels, close: () => destroyUpstreams(upstreams) };
}

function requestIdOf(req: IncomingMessage): string {
  const incoming = req.headers[REQUEST_ID_HEADER];
  return typeof incoming === 'string' && /^[A-Za-z0-9._:-]{1,128}$/.test(incoming) ? incoming : randomUUID();
}

function accessLog(logger: Logger): RequestHandler {
  // winston runs its formats before it filters by level: skip the work when nobody reads it.
  const enabled = logger.isLevelEnabled('http');
  return (req, res, next) => {
    if (!enabled || req.path === '/health' || req.path === '/metrics') return next();
    const start = performance.now();
    res.once('close', () => {
      logger.http('request', {
        request_id: req.id,
        method: req.method,
        url: req.originalUrl,
        status: res.statusCode,
        upstream: res.locals.upstream,
        ms: Math.round((performance.now() - start) * 10) / 10,
        ...(!res.writableFinished && { aborted: true }),
      });
    });
    next();
  };
}

export interface RunningGateway extends GatewayApp {
  server: Server;
  port: number;
  url: string;
  /** Stops the gateway: relayed WebSockets closed with 1001, in-flight requests drained, pools released. */
  shutdown: GracefulShutdown;
}

/**
 * Listen and wire the shutdown order: first the relayed WebSockets (1001 to each client, while
 * the server still answers), then the server (in-flight proxied requests finish), then the pools.
 * Callers add their own resources (Redis) after these.
 */
export async function startGateway(deps: Omit<GatewayDeps, 'isShuttingDown'>, port: number, host = '127.0.0.1'): Promise<RunningGateway> {
  const shutdown = new GracefulShutdown(deps.logger, deps.config.SHUTDOWN_TIMEOUT_MS);
  const gw = createGatewayApp({ ...deps, isShuttingDown: () => shutdown.shuttingDown });
  const running = await listen(gw.app, port, host);
  running.server.on('upgrade', gw.onUpgrade);
  shutdown
    .add('proxied websockets', () => gw.tunnels.closeAll(CloseCode.GoingAway, 'gateway shutting down'))
    .addServer('http', running.server)
    .add('upstream pools', () => gw.close());
  return { ...gw, ...running, shutdown };
}

import type { Server } from 'node:http';
import { buildOpenApi, HealthReply } from '@tessera/contracts';
import { authSettings, createAuth, createHttpApp, finalizeHttpApp, healthRouter, SERVICE_KEY_HEADER, serviceSocketHub } from '@tessera/kit';
import type { RequestHandler } from 'express';
import { eventRoutes, eventsReadRouter, ingestRouter } from './routes/events';
import { otlpRouter, otlpRoutes } from './routes/otlp';
import { sessionRoutes, sessionsRouter } from './routes/sessions';
import type { ObservabilityServices } from './services';
import { liveEndpoint } from './ws/live';

export const openapi = buildOpenApi({
  title: 'Tessera observability',
  version: '0.1.0',
  description:
    'Agent sessions and their events (document 001 §1, §4.1, §5): ingest from runtime chats (queue), outside agents (POST /events) and OpenTelemetry; reads, stop and delete for operators; live updates on WS /ws.',
  routes: [
    { method: 'get', path: '/health', summary: 'Liveness', access: 'public', responses: { 200: { description: 'alive', schema: HealthReply } } },
    { method: 'get', path: '/ready', summary: 'Redis and PostgreSQL reachable', access: 'public', responses: { 200: { description: 'ready', schema: HealthReply } } },
    ...eventRoutes,
    ...otlpRoutes,
    ...sessionRoutes,
  ],
});

/** Observability's HTTP app and live socket, built from its services (tests call this through server.ts). */
export function createObservabilityApp(s: ObservabilityServices, opts: { isShuttingDown?: () => boolean } = {}) {
  const auth = createAuth(authSettings(s.config));
  const hub = serviceSocketHub({ config: s.config, logger: s.logger, metrics: s.metrics, kind: 'live', isShuttingDown: opts.isShuttingDown });
  // Batches of up to 1,000 events: the one body limit of the app is the ingest one.
  const app = createHttpApp({ logger: s.logger, metrics: s.metrics, corsOrigins: s.config.CORS_ORIGINS, bodyLimit: s.config.INGEST_BODY_LIMIT });
  app.use(
    healthRouter({
      service: 'observability',
      ready: {
        redis: async () => void (await s.redis.ping()),
        database: async () => void (await s.db.pool.query('SELECT 1')),
      },
      isShuttingDown: opts.isShuttingDown,
    }),
  );
  app.use(s.metrics.router());
  app.get('/openapi.json', (_req, res) => res.json(openapi));
  // Ingest takes keys, not tokens; the operator routes take tokens route by route, so an unknown path stays a 404.
  app.use(ingestRouter(s));
  app.use(otlpRouter(s));
  // A service's request (the service key, checked by access.readScope) carries no user token.
  const tokenCheck = auth.middleware('http');
  const authn: RequestHandler = (req, res, next) => (req.header(SERVICE_KEY_HEADER) !== undefined ? next() : tokenCheck(req, res, next));
  app.use(sessionsRouter(s, authn));
  app.use(eventsReadRouter(s, authn));
  finalizeHttpApp(app, s.logger, openapi);

  return {
    app,
    hub,
    attach(server: Server) {
      hub.attach(server, [liveEndpoint(s, hub)]);
    },
  };
}

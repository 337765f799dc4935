import type { Server } from 'node:http';
import { buildOpenApi, HealthReply, type RouteSpec } from '@tessera/contracts';
import { authSettings, createAuth, createHttpApp, declareRoutes, finalizeHttpApp, healthRouter, serviceSocketHub } from '@tessera/kit';
import { routeGuards } from './domain/access';
import { eventRoutes } from './routes/events';
import { otlpRoutes } from './routes/otlp';
import { sessionRoutes } from './routes/sessions';
import type { ObservabilityServices } from './services';
import { liveEndpoint } from './ws/live';

/** The API document, with the routes as declared (routes/). */
function document(routes: RouteSpec[]) {
  return buildOpenApi({
    title: 'Tessera observability',
    version: '0.1.0',
    description:
      'Agent sessions and their events (document 001 §1, §4.1, §5): ingest from runtime chats (queue), outside agents (POST /events) and OpenTelemetry; reads, stop and delete for operators; live updates on WS /ws.',
    routes: [
      { method: 'get', path: '/health', summary: 'Liveness', access: 'public', responses: { 200: { description: 'alive', schema: HealthReply } } },
      { method: 'get', path: '/ready', summary: 'Redis and PostgreSQL reachable', access: 'public', responses: { 200: { description: 'ready', schema: HealthReply } } },
      ...routes,
    ],
  });
}

/** Observability's HTTP app and live socket, built from its services (tests call this through server.ts). */
export function createObservabilityApp(s: ObservabilityServices, opts: { isShuttingDown?: () => boolean } = {}) {
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
  // Ingest takes keys, not tokens; the operator routes take tokens (reads also the service key).
  const routes = declareRoutes(routeGuards(s.access, createAuth(authSettings(s.config))));
  eventRoutes(routes, s);
  otlpRoutes(routes, s);
  sessionRoutes(routes, s);
  const openapi = document(routes.specs);
  app.get('/openapi.json', (_req, res) => res.json(openapi));
  app.use(routes.router);
  finalizeHttpApp(app, s.logger, openapi);

  return {
    app,
    hub,
    attach(server: Server) {
      hub.attach(server, [liveEndpoint(s, hub)]);
    },
  };
}

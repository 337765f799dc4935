import { readyWhen, serviceApp, serviceSocketHub, type ServiceApp } from '@tessera/kit';
import { routeGuards } from './domain/access';
import { eventRoutes } from './routes/events';
import { otlpRoutes } from './routes/otlp';
import { sessionRoutes } from './routes/sessions';
import { usageRoutes } from './routes/usage';
import type { ObservabilityServices } from './services';
import { liveEndpoint } from './ws/live';

/** Observability's HTTP app and live socket, built from its services (tests call this through server.ts). */
export function createObservabilityApp(s: ObservabilityServices, opts: { isShuttingDown?: () => boolean } = {}): ServiceApp {
  const hub = serviceSocketHub({ config: s.config, logger: s.logger, metrics: s.metrics, kind: 'live', isShuttingDown: opts.isShuttingDown });
  return serviceApp({
    service: 'observability',
    api: {
      title: 'Tessera observability',
      description:
        'Agent sessions and their events (document 001 §1, §4.1, §5): ingest from runtime chats (queue), outside agents (POST /events) and OpenTelemetry; reads, stop and delete for operators; live updates on WS /ws.',
      readySummary: 'Redis and PostgreSQL reachable',
    },
    services: s,
    // Batches of up to 1,000 events: the one body limit of the app is the ingest one.
    bodyLimit: s.config.INGEST_BODY_LIMIT,
    health: {
      ready: {
        redis: readyWhen.redis(s.redis),
        database: readyWhen.postgres(s.db.pool),
      },
    },
    isShuttingDown: opts.isShuttingDown,
    // Ingest takes keys, not tokens; the operator routes take tokens (reads also the service key).
    guards: routeGuards(s.access, s.auth),
    routes: (routes) => {
      eventRoutes(routes, s);
      otlpRoutes(routes, s);
      sessionRoutes(routes, s);
      usageRoutes(routes, s);
    },
    sockets: { attach: (server) => hub.attach(server, [liveEndpoint(s, hub)]), close: () => hub.close() },
  });
}

import type { Server } from 'node:http';
import { bridge, buildOpenApi, HealthReply, type RouteSpec } from '@tessera/contracts';
import { createHttpApp, declareRoutes, finalizeHttpApp, healthRouter, serviceSocketHub } from '@tessera/kit';
import { bridgeGuards } from './routes/guards';
import { sessionRoutes } from './routes/sessions';
import type { BridgeServices } from './services';
import { sessionEndpoint, SessionSockets } from './ws/session-sockets';

const started = Date.now();

const health = { method: 'get', path: '/health', summary: 'Liveness and capacity of this instance', access: 'public', responses: { 200: { description: 'alive', schema: bridge.BridgeHealth } } } as const satisfies RouteSpec;
/** Answered by the kit's health router. */
const ready = { method: 'get', path: '/ready', summary: 'Redis reachable', access: 'public', responses: { 200: { description: 'ready', schema: HealthReply } } } as const satisfies RouteSpec;

/** The API document, with the routes as declared (`/ready` is the kit's, beside the bridge's own `/health`). */
function document(routes: RouteSpec[]) {
  return buildOpenApi({
    title: 'Tessera bridge',
    version: '0.1.0',
    description:
      'Backend bridge (document 004): one OpenCode agent server per (scadaUrl, access token), reused; session context; a session-scoped WebSocket (GET /api/session/{sessionId}/ws with the session token: session.snapshot, session.info.updated, session.event, session.closed; 4401 unauthorized, 4404 unknown session); request/response events across instances.',
    routes: [health, ready, ...routes.filter((r) => r !== health)],
  });
}

/** The bridge's HTTP app and session socket, built from its services (tests start it through server.ts). */
export function createBridgeApp(s: BridgeServices, opts: { isShuttingDown?: () => boolean } = {}) {
  const hub = serviceSocketHub({ config: s.config, logger: s.logger, metrics: s.metrics, kind: 'session', isShuttingDown: opts.isShuttingDown });
  const sockets = new SessionSockets(hub, s.bus);
  const app = createHttpApp({ logger: s.logger, metrics: s.metrics, corsOrigins: s.config.CORS_ORIGINS, bodyLimit: s.config.BODY_LIMIT });
  const routes = declareRoutes(bridgeGuards(s));
  routes.route(health, (_input, _req, res) => {
    const cap = s.pool.capacity;
    const reply: bridge.BridgeHealth = {
      status: opts.isShuttingDown?.() ? 'down' : cap.available > 0 ? 'ok' : 'degraded',
      service: 'bridge',
      uptime_s: Math.round((Date.now() - started) / 1000),
      instance: s.config.instanceId,
      capacity: { ...cap, ports: { base: s.config.OPENCODE_BASE_PORT, max: s.config.OPENCODE_MAX_PORT }, sockets: hub.size },
    };
    res.json(reply);
  });
  sessionRoutes(routes, s);
  const openapi = document(routes.specs);
  // Before the kit's health router: its `/health` knows nothing of the agent servers, the bridge's answers first.
  app.use(routes.router);
  app.use(healthRouter({ service: 'bridge', ready: { redis: async () => void (await s.redis.ping()) }, isShuttingDown: opts.isShuttingDown }));
  app.use(s.metrics.router());
  app.get('/openapi.json', (_req, res) => res.json(openapi));
  finalizeHttpApp(app, s.logger, openapi);
  return {
    app,
    hub,
    attach(server: Server) {
      hub.attach(server, [sessionEndpoint(s, hub, sockets)]);
    },
  };
}

import { buildOpenApi, HealthReply, type RouteSpec } from '@tessera/contracts';
import { createHttpApp, declareRoutes, finalizeHttpApp, healthRouter } from '@tessera/kit';
import { access, constants } from 'node:fs/promises';
import { agentRoutes } from './routes/agents';
import { versionRoutes } from './routes/versions';
import type { AgentManagerServices } from './services';

/** The API document, with the routes as declared (routes/). */
function document(routes: RouteSpec[]) {
  return buildOpenApi({
    title: 'Tessera agent manager',
    version: '0.1.0',
    description:
      "Agent blueprints (document 001 §2), each an app's, stored as the command-line tools' files under {project}/.agent-orchestrator/apps/{app}/agents/{name}/; every change kept as a version and announced on Redis. Every request acts in one app: the token's (one that allows several names it, ?app_id= or x-tessera-app; one that allows any app acts in the named one, else DEFAULT_APP_ID); the service key names it. Another app's agent answers as a missing one. Reads: a token of the app, or the service key; changes: an operator token.",
    routes: [
      { method: 'get', path: '/health', summary: 'Liveness', access: 'public', responses: { 200: { description: 'alive', schema: HealthReply } } },
      { method: 'get', path: '/ready', summary: 'Redis reachable, the agents folder writable', access: 'public', responses: { 200: { description: 'ready', schema: HealthReply } } },
      ...routes,
    ],
  });
}

/** The agent manager's HTTP app, built from its services (tests start it through server.ts). */
export function createAgentManagerApp(s: AgentManagerServices, opts: { isShuttingDown?: () => boolean } = {}) {
  const app = createHttpApp({ logger: s.logger, metrics: s.metrics, corsOrigins: s.config.CORS_ORIGINS, bodyLimit: s.config.BODY_LIMIT });
  app.use(
    healthRouter({
      service: 'agent-manager',
      ready: {
        redis: async () => void (await s.redis.ping()),
        files: () => access(s.layout.apps, constants.W_OK),
      },
      isShuttingDown: opts.isShuttingDown,
    }),
  );
  app.use(s.metrics.router());
  const routes = declareRoutes({ user: s.access.reader, operator: s.access.operator });
  versionRoutes(routes, s);
  agentRoutes(routes, s);
  const openapi = document(routes.specs);
  app.get('/openapi.json', (_req, res) => res.json(openapi));
  app.use(routes.router);
  finalizeHttpApp(app, s.logger, openapi);
  return { app };
}

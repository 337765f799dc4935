import { buildOpenApi, HealthReply } from '@tessera/contracts';
import { createHttpApp, finalizeHttpApp, healthRouter } from '@tessera/kit';
import { access, constants } from 'node:fs/promises';
import { agentRoutes, agentsRouter } from './routes/agents';
import { versionRoutes, versionsRouter } from './routes/versions';
import type { AgentManagerServices } from './services';

export const openapi = buildOpenApi({
  title: 'Tessera agent manager',
  version: '0.1.0',
  description:
    "Agent blueprints (document 001 §2) stored as the command-line tools' files under {project}/.agent-orchestrator/agents/{name}/; every change kept as a version and announced on Redis. Reads: any valid token; changes: an operator token.",
  routes: [
    { method: 'get', path: '/health', summary: 'Liveness', auth: false, responses: { 200: { description: 'alive', schema: HealthReply } } },
    { method: 'get', path: '/ready', summary: 'Redis reachable, the agents folder writable', auth: false, responses: { 200: { description: 'ready', schema: HealthReply } } },
    ...agentRoutes,
    ...versionRoutes,
  ],
});

/** The agent manager's HTTP app, built from its services (tests start it through server.ts). */
export function createAgentManagerApp(s: AgentManagerServices, opts: { isShuttingDown?: () => boolean } = {}) {
  const app = createHttpApp({ logger: s.logger, metrics: s.metrics, corsOrigins: s.config.CORS_ORIGINS, bodyLimit: s.config.BODY_LIMIT });
  app.use(
    healthRouter({
      service: 'agent-manager',
      ready: {
        redis: async () => void (await s.redis.ping()),
        files: () => access(s.layout.agents, constants.W_OK),
      },
      isShuttingDown: opts.isShuttingDown,
    }),
  );
  app.use(s.metrics.router());
  app.get('/openapi.json', (_req, res) => res.json(openapi));
  app.use(versionsRouter(s));
  app.use(agentsRouter(s));
  finalizeHttpApp(app, s.logger);
  return { app };
}

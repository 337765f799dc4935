import { access, constants } from 'node:fs/promises';
import { readyWhen, serviceApp, type ServiceApp } from '@tessera/kit';
import { agentRoutes } from './routes/agents';
import { versionRoutes } from './routes/versions';
import type { AgentManagerServices } from './services';

/** The agent manager's HTTP app, built from its services (tests start it through server.ts). */
export function createAgentManagerApp(s: AgentManagerServices, opts: { isShuttingDown?: () => boolean } = {}): ServiceApp {
  return serviceApp({
    service: 'agent-manager',
    api: {
      title: 'Tessera agent manager',
      description:
        "Agent blueprints (document 001 §2), each an app's, stored as the command-line tools' files under {project}/.agent-orchestrator/apps/{app}/agents/{name}/; every change kept as a version and announced on Redis. Every request acts in one app: the token's (one that allows several names it, ?app_id= or x-tessera-app; one that allows any app acts in the named one, else DEFAULT_APP_ID); the service key names it. Another app's agent answers as a missing one. Reads: a token of the app, or the service key; changes: an operator token.",
      readySummary: 'Redis reachable, the agents folder writable',
    },
    services: s,
    health: {
      ready: {
        redis: readyWhen.redis(s.redis),
        files: () => access(s.layout.apps, constants.W_OK),
      },
    },
    isShuttingDown: opts.isShuttingDown,
    guards: { user: s.access.reader, operator: s.access.operator },
    routes: (routes) => {
      versionRoutes(routes, s);
      agentRoutes(routes, s);
    },
  });
}

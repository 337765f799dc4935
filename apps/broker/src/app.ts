import { readyWhen, serviceApp, serviceDocument, type ServiceApp } from '@tessera/kit';
import { sessionRoutes, sessionsRoutes } from './routes/sessions';
import type { BrokerServices } from './services';

const api = {
  title: 'Tessera session broker',
  description: 'Signs users into chat sessions on the runtime with backend-only context (document 000).',
  healthSummary: 'Liveness; the runtime is reported degraded, not down, when unreachable',
  readySummary: 'Redis reachable',
};

/** The broker's API document as served, for the tests that read it without a running broker. */
export const openapi = serviceDocument(api, sessionRoutes);

/** The broker's HTTP app, built from its services (tests start it through server.ts). */
export function createBrokerApp(s: BrokerServices, opts: { isShuttingDown?: () => boolean } = {}): ServiceApp {
  return serviceApp({
    service: 'broker',
    api,
    services: s,
    health: {
      ready: { redis: readyWhen.redis(s.redis) },
      // Document 000 §6: an unreachable runtime makes the broker degraded, not down.
      liveness: {
        runtime: async () => {
          try {
            await s.runtime.health();
            return 'ok';
          } catch (e) {
            s.logger.debug('runtime health check failed', { error: (e as Error).message });
            return 'degraded';
          }
        },
      },
    },
    isShuttingDown: opts.isShuttingDown,
    guards: { user: s.auth.middleware() },
    routes: (routes) => sessionsRoutes(routes, { auth: s.auth, runtime: s.runtime, contextSource: s.contextSource, appId: s.config.APP_ID, publicWsUrl: s.config.PUBLIC_WS_URL }),
  });
}

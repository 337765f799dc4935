import type { Server } from 'node:http';
import type { Redis } from 'ioredis';
import { buildOpenApi, HealthReply } from '@tessera/contracts';
import { authSettings, createAuth, createHttpApp, finalizeHttpApp, GracefulShutdown, healthRouter, listen, Metrics, type Logger } from '@tessera/kit';
import type { BrokerConfig } from './config';
import { sessionRoutes, sessionsRouter } from './routes/sessions';
import { contextSourceFrom, type ContextSource } from './upstream/context-source';
import { RuntimeClient } from './upstream/runtime-client';

export interface BrokerDeps {
  config: BrokerConfig;
  logger: Logger;
  redis: Redis;
  isShuttingDown?: () => boolean;
}

export const openapi = buildOpenApi({
  title: 'Tessera session broker',
  version: '0.1.0',
  description: 'Signs users into chat sessions on the runtime with backend-only context (document 000).',
  routes: [
    ...sessionRoutes,
    { method: 'get', path: '/health', summary: 'Liveness; the runtime is reported degraded, not down, when unreachable', access: 'public', responses: { 200: { description: 'alive', schema: HealthReply } } },
    { method: 'get', path: '/ready', summary: 'Readiness (Redis)', access: 'public', responses: { 200: { description: 'ready', schema: HealthReply }, 503: { description: 'not ready', schema: HealthReply } } },
  ],
});

export interface BrokerApp {
  app: ReturnType<typeof createHttpApp>;
  metrics: Metrics;
  runtime: RuntimeClient;
  contextSource: ContextSource | null;
  close: () => void;
}

export function createBrokerApp(deps: BrokerDeps): BrokerApp {
  const { config, logger, redis } = deps;
  const metrics = new Metrics('broker');
  const runtime = new RuntimeClient({ baseUrl: config.RUNTIME_URL, serviceKey: config.SERVICE_KEY, timeoutMs: config.RUNTIME_TIMEOUT_MS, logger });
  const contextSource = contextSourceFrom(config, logger);
  const app = createHttpApp({ logger, metrics, corsOrigins: config.CORS_ORIGINS, bodyLimit: config.BODY_LIMIT });
  app.use(
    healthRouter({
      service: 'broker',
      ready: { redis: async () => void (await redis.ping()) },
      // Document 000 §6: an unreachable runtime makes the broker degraded, not down.
      liveness: {
        runtime: async () => {
          try {
            await runtime.health();
            return 'ok';
          } catch (e) {
            logger.debug('runtime health check failed', { error: (e as Error).message });
            return 'degraded';
          }
        },
      },
      isShuttingDown: deps.isShuttingDown,
    }),
  );
  app.use(metrics.router());
  app.get('/openapi.json', (_req, res) => res.json(openapi));
  app.use(sessionsRouter({ auth: createAuth(authSettings(config)), runtime, contextSource, appId: config.APP_ID, publicWsUrl: config.PUBLIC_WS_URL }));
  finalizeHttpApp(app, logger, openapi);
  return {
    app,
    metrics,
    runtime,
    contextSource,
    close: () => {
      runtime.close();
      contextSource?.close();
    },
  };
}

export interface RunningBroker extends BrokerApp {
  server: Server;
  port: number;
  url: string;
  shutdown: GracefulShutdown;
}

/** Listen, and wire the shutdown: in-flight requests drain, then the runtime connections close. Callers add Redis. */
export async function startBroker(deps: Omit<BrokerDeps, 'isShuttingDown'>, port: number, host = '127.0.0.1'): Promise<RunningBroker> {
  const shutdown = new GracefulShutdown(deps.logger, deps.config.SHUTDOWN_TIMEOUT_MS);
  const broker = createBrokerApp({ ...deps, isShuttingDown: () => shutdown.shuttingDown });
  const running = await listen(broker.app, port, host);
  shutdown.addServer('http', running.server).add('runtime connections', () => broker.close());
  return { ...broker, ...running, shutdown };
}

import type { Redis } from 'ioredis';
import { buildOpenApi, HealthReply, GatewayReadyReply } from '@tessera/contracts';
import { createHttpApp, finalizeHttpApp, healthRouter, Metrics, type Logger } from '@tessera/kit';
import type { GatewayConfig } from './config';

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
    { method: 'get', path: '/health', summary: 'Liveness of the gateway', auth: false, responses: { 200: { description: 'alive', schema: HealthReply } } },
    { method: 'get', path: '/ready', summary: 'Readiness', auth: false, responses: { 200: { description: 'ready', schema: GatewayReadyReply } } },
  ],
});

export function createGatewayApp(deps: GatewayDeps) {
  const metrics = new Metrics('gateway');
  const app = createHttpApp({ logger: deps.logger, metrics, corsOrigins: deps.config.CORS_ORIGINS, bodyLimit: deps.config.BODY_LIMIT });
  app.use(healthRouter({ service: 'gateway', ready: { redis: async () => void (await deps.redis.ping()) }, isShuttingDown: deps.isShuttingDown }));
  app.use(metrics.router());
  app.get('/openapi.json', (_req, res) => res.json(openapi));
  return { app: finalizeHttpApp(app, deps.logger), metrics };
}

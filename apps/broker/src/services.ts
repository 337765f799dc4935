import type { RedisClient } from '@tessera/kit';
import { authSettings, createAuth, createRedis, Metrics, type Auth, type Logger } from '@tessera/kit';
import type { BrokerConfig } from './config';
import { contextSourceFrom, type ContextSource } from './upstream/context-source';
import { RuntimeClient } from './upstream/runtime-client';

/** The broker's composition root: RedisClient, the runtime it starts chats on, the app backend it asks for context, with one close(). */
export interface BrokerServices {
  config: BrokerConfig;
  logger: Logger;
  metrics: Metrics;
  redis: RedisClient;
  /** The platform's tokens: every route is a signed-in user's. */
  auth: Auth;
  runtime: RuntimeClient;
  /** The app backend's user context (null: CONTEXT_URL not set). */
  contextSource: ContextSource | null;
  close(): Promise<void>;
}

export function createBrokerServices(config: BrokerConfig, logger: Logger): BrokerServices {
  const redis = createRedis(config.REDIS_URL, logger, 'broker');
  const runtime = new RuntimeClient({ baseUrl: config.RUNTIME_URL, serviceKey: config.SERVICE_KEY, timeoutMs: config.RUNTIME_TIMEOUT_MS, logger });
  const contextSource = contextSourceFrom(config, logger);
  return {
    config,
    logger,
    metrics: new Metrics('broker'),
    redis,
    auth: createAuth(authSettings(config)),
    runtime,
    contextSource,
    async close() {
      await Promise.allSettled([runtime.close(), contextSource?.close()]);
      await redis.quit().catch(() => undefined);
    },
  };
}

import type { RedisClient } from '@tessera/kit';
import { authSettings, createAuth, createRedis, Metrics, type Auth, type Logger } from '@tessera/kit';
import type { GatewayConfig } from './config';
import { createUpstreams, destroyUpstreams, type Upstreams } from './proxy/upstreams';

/** The gateway's composition root: RedisClient (the shared rate limit), the token verifier, the pools to each service, with one close(). */
export interface GatewayServices {
  config: GatewayConfig;
  logger: Logger;
  metrics: Metrics;
  /** Commands fail fast when Redis is away: the rate limiter then lets the request through (fail open). */
  redis: RedisClient;
  auth: Auth;
  /** Each service's instances and their keep-alive connections. */
  upstreams: Upstreams;
  close(): Promise<void>;
}

export function createGatewayServices(config: GatewayConfig, logger: Logger): GatewayServices {
  // Rate limiting must not wait on a Redis that is away: a command fails fast and the limiter lets the request through.
  const redis = createRedis(config.REDIS_URL, logger, 'gateway', { maxRetriesPerRequest: 1, enableOfflineQueue: false, enableAutoPipelining: true });
  const upstreams = createUpstreams(config);
  return {
    config,
    logger,
    metrics: new Metrics('gateway'),
    redis,
    auth: createAuth(authSettings(config)),
    upstreams,
    async close() {
      destroyUpstreams(upstreams);
      // A Redis that never answered has nothing to quit (no offline queue): the socket is dropped.
      await redis.quit().catch(() => redis.disconnect());
    },
  };
}

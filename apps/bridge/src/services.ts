import type { RedisClient } from '@tessera/kit';
import { authSettings, BusPublisher, BusSubscriber, createAuth, createRedis, Metrics, type Logger } from '@tessera/kit';
import { Reaper } from './agents/reaper';
import type { Sandbox } from './agents/sandbox';
import { ServerPool } from './agents/server-pool';
import { SessionBus } from './bus/session-bus';
import type { BridgeConfig } from './config';
import { createAccess, type Access } from './domain/access';
import { BridgeSessions } from './domain/bridge-sessions';
import { RequestBroker } from './domain/requests';
import { ObservabilityRelay } from './relay/observability';
import { keysOf, type Keys } from './store/keys';
import { SessionStore } from './store/sessions';

/** The bridge's composition root: RedisClient (commands and subscriptions), the agent servers, sessions, with one close(). */
export interface BridgeServices {
  config: BridgeConfig;
  logger: Logger;
  metrics: Metrics;
  redis: RedisClient;
  /** The channels this instance follows (its bus, operators' stops), on a connection of their own. */
  subscriber: BusSubscriber;
  keys: Keys;
  access: Access;
  sandbox: Sandbox;
  store: SessionStore;
  bus: SessionBus;
  pool: ServerPool;
  reaper: Reaper;
  requests: RequestBroker;
  relay: ObservabilityRelay;
  sessions: BridgeSessions;
  close(): Promise<void>;
}

export function createBridgeServices(config: BridgeConfig, logger: Logger, sandbox: Sandbox): BridgeServices {
  const metrics = new Metrics('bridge');
  const redis = createRedis(config.REDIS_URL, logger, 'bridge');
  const sub = createRedis(config.REDIS_URL, logger, 'bridge-sub', { maxRetriesPerRequest: null });
  const keys = keysOf(config.BRIDGE_REDIS_PREFIX);
  const store = new SessionStore(redis, keys);
  const subscriber = new BusSubscriber(sub, logger);
  const bus = new SessionBus(new BusPublisher(redis), subscriber, config.BRIDGE_REDIS_PREFIX, logger);
  const pool = new ServerPool(config, redis, keys, logger, sandbox);
  const reaper = new Reaper(config, redis, keys, pool.host, logger);
  const requests = new RequestBroker(redis, keys, bus);
  const relay = new ObservabilityRelay(config.OBSERVABILITY_URL, config.SERVICE_KEY, logger);
  const sessions = new BridgeSessions({ config, redis, keys, store, pool, reaper, bus, requests, relay, logger });
  return {
    config,
    logger,
    metrics,
    redis,
    subscriber,
    keys,
    access: createAccess(config, createAuth(authSettings(config))),
    sandbox,
    store,
    bus,
    pool,
    reaper,
    requests,
    relay,
    sessions,
    async close() {
      await relay.close();
      await Promise.all([redis.quit().catch(() => undefined), sub.quit().catch(() => undefined)]);
    },
  };
}

import type { Redis } from 'ioredis';
import { authSettings, createAuth, createRedis, Metrics, type Logger } from '@tessera/kit';
import { announcer } from './bus/changes';
import type { AgentManagerConfig } from './config';
import { createAccess, type Access } from './domain/access';
import { SessionsInUse } from './domain/sessions-in-use';
import { AgentStore } from './store/agent-store';
import { Layout } from './store/layout';
import { AgentLocks } from './store/locks';
import { VersionStore } from './store/versions';

/** The agent manager's composition root: the files, their lock and history, Redis for announcements, with one close(). */
export interface AgentManagerServices {
  config: AgentManagerConfig;
  logger: Logger;
  metrics: Metrics;
  redis: Redis;
  layout: Layout;
  store: AgentStore;
  sessions: SessionsInUse;
  access: Access;
  close(): Promise<void>;
}

export function createAgentManagerServices(config: AgentManagerConfig, logger: Logger): AgentManagerServices {
  const metrics = new Metrics('agent-manager');
  const redis = createRedis(config.REDIS_URL, logger, 'agent-manager');
  const layout = new Layout(config.AGENT_MANAGER_PROJECT_DIR);
  const locks = new AgentLocks(layout, config.LOCK_STALE_MS, logger);
  return {
    config,
    logger,
    metrics,
    redis,
    layout,
    store: new AgentStore(layout, locks, new VersionStore(layout), announcer(redis, logger), logger),
    sessions: new SessionsInUse(config),
    access: createAccess(config, createAuth(authSettings(config))),
    async close() {
      await redis.quit().catch(() => undefined);
    },
  };
}

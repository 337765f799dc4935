import type { RedisClient } from '@tessera/kit';
import { authSettings, BusPublisher, createAuth, createRedis, Metrics, type DeclaredRoutes, type Logger } from '@tessera/kit';
import { announcer } from './bus/changes';
import type { AgentManagerConfig } from './config';
import { createAccess, type Access } from './domain/access';
import { SessionsInUse } from './domain/sessions-in-use';
import { AgentStores } from './store/agent-stores';
import { ProjectLayout } from './store/layout';

/** Reads are a user's of the app (or the service key's, for the app it names); changes are an operator's. */
export type AgentManagerRoutes = DeclaredRoutes<'user' | 'operator'>;

/** The agent manager's composition root: every app's files, their locks and history, RedisClient for announcements, with one close(). */
export interface AgentManagerServices {
  config: AgentManagerConfig;
  logger: Logger;
  metrics: Metrics;
  redis: RedisClient;
  layout: ProjectLayout;
  /** Each app's agents: `stores.of(app)`. */
  stores: AgentStores;
  sessions: SessionsInUse;
  access: Access;
  close(): Promise<void>;
}

export function createAgentManagerServices(config: AgentManagerConfig, logger: Logger): AgentManagerServices {
  const metrics = new Metrics('agent-manager');
  const redis = createRedis(config.REDIS_URL, logger, 'agent-manager');
  const layout = new ProjectLayout(config.AGENT_MANAGER_PROJECT_DIR);
  const sessions = new SessionsInUse(config);
  return {
    config,
    logger,
    metrics,
    redis,
    layout,
    stores: new AgentStores(layout, config.LOCK_STALE_MS, announcer(new BusPublisher(redis), logger), logger),
    sessions,
    access: createAccess(config, createAuth(authSettings(config))),
    async close() {
      await sessions.close();
      await redis.quit().catch(() => undefined);
    },
  };
}

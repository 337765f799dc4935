import type { Redis } from 'ioredis';
import { agents, Channel } from '@tessera/contracts';
import type { Logger } from '@tessera/kit';

/**
 * Tells every cache of blueprints (the runtime's) that an app's agent changed. The files are the
 * truth and are already written: a lost announcement costs a cache its freshness until its TTL,
 * never the change, so a failure is logged, not thrown.
 */
export function announcer(redis: Redis, logger: Logger) {
  return (change: agents.AgentChangeAnnouncement): void => {
    redis.publish(Channel.agentChanges.name(), JSON.stringify(agents.AgentChangeAnnouncement.parse(change))).catch((e: Error) =>
      logger.warn('could not announce an agent change', { app_id: change.app_id, agent: change.name, kind: change.kind, error: e.message }),
    );
    logger.info('agent changed', { app_id: change.app_id, agent: change.name, kind: change.kind, version: change.version, source: change.source });
  };
}

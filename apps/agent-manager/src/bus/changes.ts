import { channelOf, type BusPublisher, type Logger } from '@tessera/kit';
import type { agents } from '@tessera/contracts';

/**
 * Tells every cache of blueprints (the runtime's) that an app's agent changed. The files are the
 * truth and are already written: a lost announcement costs a cache its freshness until its TTL,
 * never the change, so a failure (an invalid announcement included) is logged, not thrown.
 */
export function announcer(bus: BusPublisher, logger: Logger) {
  return (change: agents.AgentChangeAnnouncement): void => {
    bus.publish(channelOf('agentChanges'), change).catch((e: Error) =>
      logger.warn('could not announce an agent change', { app_id: change.app_id, agent: change.name, kind: change.kind, error: e.message }),
    );
    logger.info('agent changed', { app_id: change.app_id, agent: change.name, kind: change.kind, version: change.version, source: change.source });
  };
}

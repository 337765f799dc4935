import type { Redis } from 'ioredis';
import { Channel, type ObservabilityLive } from '@tessera/contracts';

/**
 * What this instance tells every instance's live sockets (`Channel.observabilityLive`), always
 * after the change is committed, so a socket never shows what a read would not.
 */
export function publishLive(redis: Redis, message: ObservabilityLive): Promise<number> {
  return redis.publish(Channel.observabilityLive.name(), JSON.stringify(message));
}

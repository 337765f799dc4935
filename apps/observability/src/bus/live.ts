import type { ObservabilityLive } from '@tessera/contracts';
import { channelOf, type BusPublisher } from '@tessera/kit';

/**
 * What this instance tells every instance's live sockets (`Channel.observabilityLive`), always
 * after the change is committed, so a socket never shows what a read would not.
 */
export function publishLive(bus: BusPublisher, message: ObservabilityLive): Promise<void> {
  return bus.publish(channelOf('observabilityLive'), message);
}

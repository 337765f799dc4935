import type { SessionControl } from '@tessera/contracts';
import { channelOf, type BusPublisher } from '@tessera/kit';

/**
 * An operator's stop, to the service that runs the session (`Channel.sessionControl`): the
 * runtime's instances and the bridge follow it, and the one holding the session's app and id acts.
 */
export function publishControl(bus: BusPublisher, control: SessionControl): Promise<void> {
  return bus.publish(channelOf('sessionControl'), control);
}

import type { ObservabilityLive } from '@tessera/contracts';
import { channelOf, type BusSubscriber } from '@tessera/kit';

export interface LiveListener {
  onLive(message: ObservabilityLive): void;
  /** The subscription was interrupted (Redis reconnect): messages may have been missed. */
  onResync(): void;
}

/**
 * This instance's one subscription to `Channel.observabilityLive`, shared by its live sockets:
 * every instance's committed changes reach every socket, whichever instance stored them.
 */
export class LiveFeed {
  private readonly listeners = new Set<LiveListener>();
  private subscribed: Promise<unknown> | null = null;

  constructor(private readonly bus: BusSubscriber) {}

  async add(listener: LiveListener): Promise<() => void> {
    this.subscribed ??= this.bus.subscribe(channelOf('observabilityLive'), {
      onMessage: (message) => {
        for (const l of this.listeners) l.onLive(message);
      },
      onResync: () => {
        for (const l of this.listeners) l.onResync();
      },
    });
    await this.subscribed;
    this.listeners.add(listener);
    return () => void this.listeners.delete(listener);
  }

  get size(): number {
    return this.listeners.size;
  }
}

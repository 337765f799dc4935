import type { Redis } from 'ioredis';
import { Channel, ObservabilityLive } from '@tessera/contracts';
import { errorSummary, whenReady, type Logger } from '@tessera/kit';

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
  private wasDown = false;

  constructor(
    private readonly sub: Redis,
    private readonly logger: Logger,
  ) {
    sub.on('message', (channel: string, raw: string) => {
      if (channel !== Channel.observabilityLive.name()) return;
      let message: ObservabilityLive;
      try {
        message = ObservabilityLive.parse(JSON.parse(raw));
      } catch (e) {
        return void logger.warn('live message dropped', { error: errorSummary(e) });
      }
      for (const l of this.listeners) l.onLive(message);
    });
    sub.on('close', () => (this.wasDown = true));
    sub.on('ready', () => {
      if (!this.wasDown) return;
      this.wasDown = false;
      for (const l of this.listeners) l.onResync();
    });
  }

  async add(listener: LiveListener): Promise<() => void> {
    this.subscribed ??= this.subscribe();
    await this.subscribed;
    this.listeners.add(listener);
    return () => void this.listeners.delete(listener);
  }

  private async subscribe(): Promise<void> {
    await whenReady(this.sub); // a SUBSCRIBE during ioredis's ready check is lost
    await this.sub.subscribe(Channel.observabilityLive.name());
  }

  get size(): number {
    return this.listeners.size;
  }
}

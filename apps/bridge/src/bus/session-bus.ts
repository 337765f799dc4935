import type { BridgeSessionMessage, bridge } from '@tessera/contracts';
import { channelOf, type BusPublisher, type BusSubscriber, type ChannelAddress, type Logger } from '@tessera/kit';

/** What instances tell each other on the deployment's one channel (`Channel.bridgeSessions`). */
export type BusMessage = BridgeSessionMessage;

export function envelope(type: bridge.SessionEnvelopeType, sessionId: string, payload: unknown): string {
  return JSON.stringify({ type, sessionId, timestamp: new Date().toISOString(), payload });
}

/**
 * Fan-out across instances over Redis pub/sub: everything goes through Redis, the publisher's own
 * instance included, so every socket of a session sees one order whichever instance published.
 */
export class SessionBus {
  private readonly handlers = new Set<(m: BusMessage) => void>();
  private readonly channel: ChannelAddress<'bridgeSessions'>;

  constructor(
    private readonly publisher: BusPublisher,
    private readonly subscriber: BusSubscriber,
    redisPrefix: string,
    private readonly logger: Logger,
  ) {
    this.channel = channelOf('bridgeSessions', redisPrefix);
  }

  private dispatch(m: BusMessage): void {
    for (const h of this.handlers) {
      try {
        h(m);
      } catch (e) {
        this.logger.error('bus handler failed', { error: (e as Error).message });
      }
    }
  }

  /** After a reconnect the kit's subscriber subscribes again; nothing here keeps state to re-read. */
  async start(): Promise<void> {
    await this.subscriber.subscribe(this.channel, { onMessage: (m) => this.dispatch(m) });
  }

  on(handler: (m: BusMessage) => void): void {
    this.handlers.add(handler);
  }

  /**
   * `closed` is also handled here at once: on shutdown this instance's sockets must hear it before
   * the hub closes them, not whenever Redis echoes it (the echo then finds them gone).
   */
  async publish(m: BusMessage): Promise<void> {
    const sent = this.publisher.publish(this.channel, m);
    if (m.kind === 'closed') this.dispatch(m);
    await sent;
  }
}

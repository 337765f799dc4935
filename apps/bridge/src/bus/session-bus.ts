import type { Redis } from 'ioredis';
import { whenReady, type Logger } from '@tessera/kit';
import type { bridge } from '@tessera/contracts';
import type { Keys } from '../store/keys';

/** What instances tell each other on the deployment's one channel. */
export type BusMessage =
  /** An envelope for the session's sockets, serialised once by the publisher. */
  | { kind: 'envelope'; sessionId: string; wire: string }
  /** Close the session's sockets (the session is gone). */
  | { kind: 'closed'; sessionId: string; reason: bridge.CloseReason; wire: string }
  /** Ask the instance that holds the agent server to close the session. */
  | { kind: 'close'; sessionId: string; instance: string; reason: bridge.CloseReason }
  /** A request was resolved, timed out or cancelled: its waiter reads the outcome. */
  | { kind: 'settled'; requestId: string };

export function envelope(type: bridge.SessionEnvelopeType, sessionId: string, payload: unknown): string {
  return JSON.stringify({ type, sessionId, timestamp: new Date().toISOString(), payload });
}

/**
 * Fan-out across instances over Redis pub/sub: everything goes through Redis, the publisher's own
 * instance included, so every socket of a session sees one order whichever instance published.
 */
export class SessionBus {
  private readonly handlers = new Set<(m: BusMessage) => void>();

  constructor(
    private readonly pub: Redis,
    private readonly sub: Redis,
    private readonly k: Keys,
    private readonly logger: Logger,
  ) {
    sub.on('message', (channel: string, raw: string) => {
      if (channel !== this.k.bus) return;
      let m: BusMessage;
      try {
        m = JSON.parse(raw) as BusMessage;
      } catch {
        return;
      }
      this.dispatch(m);
    });
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

  async start(): Promise<void> {
    await whenReady(this.sub);
    await this.sub.subscribe(this.k.bus);
    // After a reconnect ioredis resubscribes by itself (autoResubscribe).
  }

  on(handler: (m: BusMessage) => void): void {
    this.handlers.add(handler);
  }

  /**
   * `closed` is also handled here at once: on shutdown this instance's sockets must hear it before
   * the hub closes them, not whenever Redis echoes it (the echo then finds them gone).
   */
  async publish(m: BusMessage): Promise<void> {
    if (m.kind === 'closed') this.dispatch(m);
    await this.pub.publish(this.k.bus, JSON.stringify(m));
  }
}

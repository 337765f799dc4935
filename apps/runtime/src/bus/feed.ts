import type { ChatEventBatch, SessionControl } from '@tessera/contracts';
import { channelOf, type BusPublisher, type BusSubscriber } from '@tessera/kit';
import type { StoredEvent } from '../store/timeline';

export type LiveEvent = ChatEventBatch['events'][number];

export interface FeedListener {
  /** Events of the chat, in index order within a batch. */
  onEvents(events: LiveEvent[]): void;
  /** The subscription was interrupted (Redis reconnect): events may have been missed. */
  onResync(): void;
}

/**
 * Live fan-out of chat timelines over Redis pub/sub (the kit's typed bus): a writer publishes each
 * appended batch after it is stored; every runtime instance with a socket on the chat receives it.
 * Pub/sub may drop messages while a connection is down, so listeners are told to resync from the
 * log. The publishes of one turn of the event loop (the chats of one group commit) go to Redis
 * as one pipeline (BusPublisher).
 */
export class ChatFeed {
  constructor(
    private readonly publisher: BusPublisher,
    private readonly subscriber: BusSubscriber,
    /** How long a quiet chat's channel stays subscribed after its last listener (CHAT_LINGER_MS). */
    private readonly lingerMs = 0,
  ) {}

  publish(chatId: string, events: StoredEvent[]): Promise<void> {
    if (events.length === 0) return Promise.resolve();
    return this.publisher.publish(channelOf('chatEvents', chatId), { chat_id: chatId, events: events.map((e) => ({ index: e.index, type: e.type, wire: e.wire })) });
  }

  /**
   * Resolves once Redis confirmed the subscription: from then on nothing published is missed. The
   * chat's channel stays subscribed `lingerMs` after its last listener leaves, while the chat is
   * quiet: the next run of a protocol that makes a request per run (AG-UI's runs of one thread,
   * a frontend tool's result posted right after its run) or a socket back after a drop starts
   * without a round trip to Redis (SSUBSCRIBE, then SUNSUBSCRIBE, per run otherwise).
   */
  subscribe(chatId: string, listener: FeedListener): Promise<() => Promise<void>> {
    return this.subscriber.subscribe(channelOf('chatEvents', chatId), { onMessage: (batch) => listener.onEvents(batch.events), onResync: () => listener.onResync() }, { lingerMs: this.lingerMs });
  }

  publishControl(m: SessionControl): Promise<void> {
    return this.publisher.publish(channelOf('sessionControl'), m);
  }

  async onControl(handler: (m: SessionControl) => void): Promise<void> {
    await this.subscriber.subscribe(channelOf('sessionControl'), { onMessage: handler });
  }
}

import type { Redis } from 'ioredis';
import { Channel, ChatEventBatch, SessionControl } from '@tessera/contracts';
import { whenReady, type Logger } from '@tessera/kit';
import type { StoredEvent } from '../store/timeline';

export type LiveEvent = ChatEventBatch['events'][number];

export interface FeedListener {
  /** Events of the chat, in index order within a batch. */
  onEvents(events: LiveEvent[]): void;
  /** The subscription was interrupted (Redis reconnect): events may have been missed. */
  onResync(): void;
}

/**
 * Live fan-out of chat timelines over Redis pub/sub: a writer publishes each appended batch
 * after it is stored; every runtime instance with a socket on the chat receives it. Pub/sub
 * may drop messages while a connection is down, so listeners are told to resync from the log.
 */
export class ChatFeed {
  private readonly listeners = new Map<string, Set<FeedListener>>();
  private readonly pending = new Map<string, Promise<unknown>>();
  private readonly controlHandlers = new Set<(m: SessionControl) => void>();
  private wasDown = false;

  constructor(
    private readonly pub: Redis,
    private readonly sub: Redis,
    private readonly logger: Logger,
  ) {
    sub.on('message', (channel: string, message: string) => this.dispatch(channel, message));
    sub.on('close', () => (this.wasDown = true));
    sub.on('ready', () => {
      if (!this.wasDown) return;
      this.wasDown = false;
      for (const set of this.listeners.values()) for (const l of set) l.onResync();
    });
  }

  /**
   * Publishes made in the same turn of the event loop (e.g. the chats of one group commit) go to
   * Redis together, as one pipeline: one write instead of one per chat. Each still resolves or
   * fails on its own, and one caller's publishes stay in the order it made them.
   */
  publish(chatId: string, events: StoredEvent[]): Promise<void> {
    if (events.length === 0) return Promise.resolve();
    const batch: ChatEventBatch = { chat_id: chatId, events: events.map((e) => ({ index: e.index, type: e.type, wire: e.wire })) };
    const message = JSON.stringify(batch);
    return new Promise<void>((resolve, reject) => {
      this.outbox.push({ channel: Channel.chatEvents.name(chatId), message, resolve, reject });
      if (this.outbox.length === 1) setImmediate(this.flushOutbox);
    });
  }

  private outbox: { channel: string; message: string; resolve: () => void; reject: (e: unknown) => void }[] = [];

  private readonly flushOutbox = (): void => {
    const out = this.outbox;
    this.outbox = [];
    if (out.length === 1) {
      const o = out[0];
      this.pub.publish(o.channel, o.message).then(() => o.resolve(), o.reject);
      return;
    }
    const pipeline = this.pub.pipeline();
    for (const o of out) pipeline.publish(o.channel, o.message);
    pipeline.exec().then(
      (results) => out.forEach((o, i) => (results?.[i]?.[0] ? o.reject(results[i][0]) : o.resolve())),
      (err: unknown) => out.forEach((o) => o.reject(err)),
    );
  };

  /** Resolves once Redis confirmed the subscription: from then on nothing published is missed. */
  async subscribe(chatId: string, listener: FeedListener): Promise<() => Promise<void>> {
    const channel = Channel.chatEvents.name(chatId);
    let set = this.listeners.get(chatId);
    if (!set) {
      set = new Set();
      this.listeners.set(chatId, set);
      this.pending.set(chatId, whenReady(this.sub).then(() => this.sub.subscribe(channel)));
    }
    set.add(listener);
    await this.pending.get(chatId);
    return async () => {
      const s = this.listeners.get(chatId);
      if (!s) return;
      s.delete(listener);
      if (s.size === 0) {
        this.listeners.delete(chatId);
        this.pending.delete(chatId);
        await this.sub.unsubscribe(channel).catch(() => undefined);
      }
    };
  }

  async publishControl(m: SessionControl): Promise<void> {
    await this.pub.publish(Channel.sessionControl.name(), JSON.stringify(SessionControl.parse(m)));
  }

  async onControl(handler: (m: SessionControl) => void): Promise<void> {
    if (this.controlHandlers.size === 0) {
      await whenReady(this.sub);
      await this.sub.subscribe(Channel.sessionControl.name());
    }
    this.controlHandlers.add(handler);
  }

  get subscribedChats(): number {
    return this.listeners.size;
  }

  private dispatch(channel: string, message: string): void {
    if (channel === Channel.sessionControl.name()) {
      const r = SessionControl.safeParse(safeJson(message));
      if (!r.success) return void this.logger.warn('ignoring malformed control message', { channel });
      for (const h of this.controlHandlers) h(r.data);
      return;
    }
    const parsed = safeJson(message) as ChatEventBatch | undefined;
    if (!parsed?.chat_id || !Array.isArray(parsed.events)) return;
    const set = this.listeners.get(parsed.chat_id);
    if (!set) return;
    for (const l of set) l.onEvents(parsed.events);
  }
}

function safeJson(s: string): unknown {
  try {
    return JSON.parse(s);
  } catch {
    return undefined;
  }
}

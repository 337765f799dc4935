import { Channel, type ChannelKey, type ChannelMessage } from '@tessera/contracts';
import { errorSummary, type Logger } from './logger';
import { isCluster, whenReady, type RedisClient } from './redis';

/**
 * Redis pub/sub typed by the contracts' channel map (`Channel`), validated at both ends as the
 * `TypedQueue` is: a publisher cannot send what the contract does not allow, and a subscriber's
 * handler receives only messages that match it.
 *
 * Sharded pub/sub (SPUBLISH / SSUBSCRIBE, Redis 7): on a Redis Cluster a channel's messages stay on
 * the shard that owns its slot, so one chat's events never cross the cluster bus to every node; on
 * a single Redis it is plain pub/sub. There are no sharded patterns, so there are no pattern
 * subscriptions.
 */

/** One concrete channel of the map: which schema (`key`) and its Redis name. */
export interface ChannelAddress<K extends ChannelKey = ChannelKey> {
  readonly key: K;
  readonly name: string;
}

/** `channelOf('chatEvents', chatId)`. */
export function channelOf<K extends ChannelKey>(key: K, ...ids: Parameters<(typeof Channel)[K]['name']>): ChannelAddress<K> {
  return { key, name: (Channel[key].name as (...ids: string[]) => string)(...ids) };
}

/**
 * Publishes on the map's channels. Publishes made in the same turn of the event loop (the chats of
 * one group commit, say) go to Redis together as one pipeline; each still resolves or fails on its
 * own, and one caller's publishes keep their order.
 */
export class BusPublisher {
  private outbox: { name: string; wire: string; resolve: () => void; reject: (e: unknown) => void }[] = [];

  /**
   * `perTick`: the publishes of one event-loop tick go out as one pipeline, after the tick (the
   * runtime's chat feed, whose many small batches this makes cheap). Without it a publish goes on
   * the connection at once, before anything the caller does next (an HTTP answer, say): a client
   * that acts on the answer finds the message already sent.
   */
  constructor(
    private readonly redis: RedisClient,
    private readonly opts: { perTick?: boolean } = {},
  ) {}

  /** Rejects (a ZodError) without sending when the message does not match the channel's schema. */
  publish<K extends ChannelKey>(to: ChannelAddress<K>, message: ChannelMessage<K>): Promise<void> {
    let wire: string;
    try {
      wire = JSON.stringify(Channel[to.key].schema.parse(message));
    } catch (e) {
      return Promise.reject(e);
    }
    // Its reply resolves it (a number of receivers nobody needs): no further hop, so replies keep the order of the commands.
    if (!this.opts.perTick) return this.redis.spublish(to.name, wire) as Promise<unknown> as Promise<void>;
    return new Promise<void>((resolve, reject) => {
      this.outbox.push({ name: to.name, wire, resolve, reject });
      if (this.outbox.length === 1) setImmediate(this.flush);
    });
  }

  private readonly flush = (): void => {
    const out = this.outbox;
    this.outbox = [];
    // A cluster's pipeline must stay on one node: there each publish goes on its own.
    if (out.length === 1 || isCluster(this.redis)) {
      for (const o of out) this.redis.spublish(o.name, o.wire).then(() => o.resolve(), o.reject);
      return;
    }
    const pipeline = this.redis.pipeline();
    for (const o of out) pipeline.spublish(o.name, o.wire);
    pipeline.exec().then(
      (results) => out.forEach((o, i) => (results?.[i]?.[0] ? o.reject(results[i][0]) : o.resolve())),
      (err: unknown) => out.forEach((o) => o.reject(err)),
    );
  };
}

export interface BusSubscription<K extends ChannelKey> {
  /** A message that matched the channel's schema, and the channel it came on. */
  onMessage(message: ChannelMessage<K>, channel: string): void;
  /**
   * The connection to Redis was lost and is back, subscribed again: messages published meanwhile
   * were missed, so a consumer that keeps state re-reads it here.
   */
  onResync?(): void;
}

type Entry = {
  key: ChannelKey;
  subs: Set<BusSubscription<never>>;
  confirmed: Promise<unknown>;
  /** How long the channel stays subscribed once its last subscription ended (the longest any asked for). */
  lingerMs: number;
  /** While it lingers: the timer that unsubscribes it. */
  idle?: NodeJS.Timeout;
};

/** Channels one subscriber keeps subscribed with no subscription left, at most: past that, the last to end unsubscribes at once. */
const MAX_LINGERING = 10_000;

export interface SubscribeOptions {
  /**
   * Keep the channel subscribed this long after its last subscription ends: a subscription that
   * comes meanwhile (the next request of a protocol that makes one per run, a socket back after a
   * drop) starts without a round trip to Redis. Messages meanwhile are dropped unread.
   */
  lingerMs?: number;
}

/**
 * The one owner of a subscriber connection (ioredis: a subscribed connection does nothing else).
 * Subscribes only once the connection is ready (a SUBSCRIBE during ioredis's ready check is lost),
 * again after every reconnect, then calls each subscription's `onResync`. A message that is not
 * JSON or does not match its channel's schema is counted and logged without its content, never
 * delivered, never thrown.
 */
export class BusSubscriber {
  private readonly channels = new Map<string, Entry>();
  private lingering = 0;
  private wasDown = false;
  /** Messages dropped as invalid, by channel key. */
  readonly dropped: Partial<Record<ChannelKey, number>> = {};

  constructor(
    private readonly sub: RedisClient,
    private readonly logger: Logger,
  ) {
    sub.on('smessage', (channel: string, raw: string) => this.deliver(this.channels.get(channel), channel, raw));
    sub.on('close', () => (this.wasDown = true));
    sub.on('ready', () => this.back());
    if (isCluster(sub)) {
      // One shard's subscriber connection lost (its primary died, say): the client makes a new
      // one once the slots say where that shard now is, and then reports its subscribers ready.
      sub.on('-node', () => (this.wasDown = true));
      sub.on('subscribersReady', () => this.back());
    }
  }

  private back(): void {
    if (!this.wasDown) return;
    this.wasDown = false;
    void this.resubscribe();
  }

  /**
   * Resolves once Redis confirmed the subscription: from then on nothing published is missed. The
   * returned function ends this subscription (the channel's last one unsubscribes from Redis).
   */
  async subscribe<K extends ChannelKey>(to: ChannelAddress<K>, subscription: BusSubscription<K>, opts: SubscribeOptions = {}): Promise<() => Promise<void>> {
    const map = this.channels;
    const s = subscription as BusSubscription<never>;
    let entry = map.get(to.name);
    if (!entry) {
      const confirmed = whenReady(this.sub).then(() => this.sub.ssubscribe(to.name));
      entry = { key: to.key, subs: new Set(), confirmed, lingerMs: 0 };
      map.set(to.name, entry);
    } else if (entry.idle) {
      clearTimeout(entry.idle);
      entry.idle = undefined;
      this.lingering--;
    }
    const e = entry;
    e.lingerMs = Math.max(e.lingerMs, opts.lingerMs ?? 0);
    e.subs.add(s);
    try {
      await e.confirmed;
    } catch (err) {
      // Not confirmed: nothing to linger for (a subscription that comes next tries again).
      e.lingerMs = 0;
      void this.remove(map, to.name, e, s);
      throw err;
    }
    return () => this.remove(map, to.name, e, s);
  }

  /** Channels subscribed now. */
  get size(): number {
    return this.channels.size;
  }

  private async remove(map: Map<string, Entry>, name: string, entry: Entry, s: BusSubscription<never>): Promise<void> {
    entry.subs.delete(s);
    if (entry.subs.size > 0 || map.get(name) !== entry || entry.idle) return;
    if (entry.lingerMs > 0 && this.lingering < MAX_LINGERING) {
      this.lingering++;
      entry.idle = setTimeout(() => this.endLinger(name, entry), entry.lingerMs);
      entry.idle.unref();
      entry.lingerMs = 0;
      return;
    }
    await this.unsubscribe(name);
  }

  private endLinger(name: string, entry: Entry): void {
    clearTimeout(entry.idle);
    entry.idle = undefined;
    this.lingering--;
    if (entry.subs.size === 0 && this.channels.get(name) === entry) void this.unsubscribe(name);
  }

  private async unsubscribe(name: string): Promise<void> {
    this.channels.delete(name);
    await this.sub.sunsubscribe(name).catch(() => undefined);
  }

  private deliver(entry: Entry | undefined, channel: string, raw: string): void {
    if (!entry) return;
    if (entry.subs.size === 0) {
      // It lingers, and the channel is busy without us (a socket moved to another instance): it
      // is not kept for a subscription that may come, and this message is not parsed for nobody.
      if (entry.idle) this.endLinger(channel, entry);
      return;
    }
    let json: unknown;
    try {
      json = JSON.parse(raw);
    } catch {
      return this.drop(entry.key, channel, ['not JSON']);
    }
    const r = Channel[entry.key].schema.safeParse(json);
    if (!r.success) return this.drop(entry.key, channel, r.error.issues.map((i) => `${i.path.join('.') || '(message)'}: ${i.code}`));
    for (const s of entry.subs) {
      try {
        s.onMessage(r.data as never, channel);
      } catch (e) {
        this.logger.error('bus subscriber failed', { channel, error: errorSummary(e) });
      }
    }
  }

  /** Only where and what kind of wrong: a message's content may be anything, secrets included. */
  private drop(key: ChannelKey, channel: string, problems: string[]): void {
    this.dropped[key] = (this.dropped[key] ?? 0) + 1;
    this.logger.warn('bus message dropped: it does not match its channel', { channel, problems: problems.slice(0, 5) });
  }

  /**
   * ioredis resubscribes by itself on `ready`; subscribing again here (harmless) is what tells us
   * when Redis has confirmed, so a consumer's re-read cannot miss what is published right after.
   */
  private async resubscribe(): Promise<void> {
    try {
      // One channel a command: on a cluster one SSUBSCRIBE takes only channels of one slot.
      await Promise.all([...this.channels.keys()].map((name) => this.sub.ssubscribe(name)));
    } catch (e) {
      // The connection went down again: its next `ready` comes back here.
      this.wasDown = true;
      return void this.logger.warn('bus resubscribe failed', { error: errorSummary(e) });
    }
    for (const entry of this.channels.values()) {
      for (const s of entry.subs) {
        try {
          s.onResync?.();
        } catch (e) {
          this.logger.error('bus resync failed', { error: errorSummary(e) });
        }
      }
    }
  }
}

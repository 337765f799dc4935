import { setTimeout as sleep } from 'node:timers/promises';
import { isStorageUnreachable, RedisLeases, type Logger, type RedisClient } from '@tessera/kit';
import type { EventTail } from './tail';

/** Marked chats looked at in one round. */
const CHATS_PER_ROUND = 1000;

export interface TailFlusherOptions {
  /** The sweeper's lease: a worker that dies hands the sweep on within this. */
  ttlMs?: number;
  /** Events written per chat in one statement (500). */
  eventsPerChat?: number;
  /** Between rounds (1 s): a chat is written from its tail only when no append marked it for a whole round. */
  roundMs?: number;
}
/** How long a failed round waits before the next (PostgreSQL away: the tails hold the events). */
const FAILED_MS = 500;
/** How often a worker that does not sweep asks for the lease. */
const CLAIM_MS = 1_000;

/**
 * The tails' sweeper (EVENT_TAIL=on). Every process writes what it appends to PostgreSQL behind
 * itself, from memory (EventTail's write-behind), and takes the chat off the marks once all of it
 * is there. A chat still marked after a whole round without an append was left behind: its writer
 * died, PostgreSQL was away, or (on a Redis Cluster, where the marks are on another slot) its
 * write-behind cannot take the mark off itself. Every worker runs a sweeper; the one holding the
 * Redis lease `<prefix>:tail:flusher` writes such chats from their tails, up to `eventsPerChat`
 * events each in one statement, then records, trims and unmarks them; a chat with more left (a
 * long outage) goes on in the next round at once, without the wait. A sweep cut off by a death is
 * done again (an index PostgreSQL holds is skipped).
 */
export class TailFlusher {
  private readonly leases: RedisLeases;
  private stopped = false;
  private loop: Promise<void> | null = null;
  private lastWarn = 0;
  /** Each marked chat's mark at the last round. */
  private seen = new Map<string, string>();

  private readonly eventsPerChat: number;
  private readonly roundMs: number;

  constructor(
    private readonly tail: EventTail,
    redis: RedisClient,
    private readonly logger: Logger,
    private readonly lockKey: string,
    opts: TailFlusherOptions = {},
  ) {
    this.leases = new RedisLeases(redis, { ttlMs: opts.ttlMs ?? 5_000 });
    this.eventsPerChat = opts.eventsPerChat ?? 500;
    this.roundMs = opts.roundMs ?? 1_000;
  }

  start(): this {
    this.loop = this.run();
    return this;
  }

  async close(): Promise<void> {
    this.stopped = true;
    await this.loop;
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      const lease = await this.leases.acquire(this.lockKey).catch(() => null);
      if (!lease) {
        await sleep(CLAIM_MS);
        continue;
      }
      try {
        while (!this.stopped && !lease.lost.aborted) {
          const r = await this.round().catch((e: Error) => this.failed(e));
          if (r === 'failed') await sleep(FAILED_MS);
          else if (r === 'swept') await sleep(this.roundMs);
        }
      } finally {
        await lease.release();
      }
    }
  }

  /** One round: 'more' when a chat written has more left in its tail. */
  private async round(): Promise<'swept' | 'more'> {
    const now = await this.tail.dirty(CHATS_PER_ROUND);
    const marked = now.filter((m) => this.seen.get(m.chatId) === m.mark);
    this.seen = new Map(now.map((m) => [m.chatId, m.mark]));
    if (marked.length === 0) return 'swept';
    const results = await this.tail.flush(
      marked.map((m) => m.chatId),
      this.eventsPerChat,
    );
    let more = false;
    await Promise.all(
      marked.map(async (m) => {
        const r = results.get(m.chatId);
        if (r?.done) await this.tail.unmark(m.chatId, m.mark);
        // Only after progress: a chat that wrote nothing waits for the next round like the rest.
        else if (r?.written) more = true;
      }),
    );
    return more ? 'more' : 'swept';
  }

  private failed(e: Error): 'failed' {
    const now = Date.now();
    if (now - this.lastWarn > 10_000) {
      this.lastWarn = now;
      this.logger.warn(isStorageUnreachable(e) ? 'timeline tail waits for the database' : 'timeline tail flush failed', { error: e.message });
    }
    return 'failed';
  }
}

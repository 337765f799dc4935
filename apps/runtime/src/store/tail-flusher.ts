import { setTimeout as sleep } from 'node:timers/promises';
import { isStorageUnreachable, RedisLeases, type Logger, type RedisClient } from '@tessera/kit';
import type { EventTail } from './tail';

/** Chats looked at in one round, and events written per chat in one statement. */
const CHATS_PER_ROUND = 200;
const EVENTS_PER_CHAT = 500;
/** A round that found little to write waits this long, so that the next one writes a batch. */
const IDLE_MS = 5;
/** How long a failed round waits before the next (PostgreSQL away: the tail holds the events). */
const FAILED_MS = 500;
/** How often a worker that does not flush asks for the flusher's lease. */
const CLAIM_MS = 1_000;

/**
 * Writes the chats' tails to PostgreSQL (EVENT_TAIL=on). Every worker runs one; the one holding
 * the Redis lease `<prefix>:tail:flusher` flushes, in rounds: the chats marked since their last
 * flush, up to EVENTS_PER_CHAT events each, in one statement, then each chat's flushed mark and
 * its stream trimmed. A worker that dies frees the lease within its TTL and another takes over; a
 * round cut off by the death is written again (an index PostgreSQL holds is skipped).
 */
export class TailFlusher {
  private readonly leases: RedisLeases;
  private stopped = false;
  private loop: Promise<void> | null = null;
  private lastWarn = 0;
  /** Events written since start (tests and metrics). */
  written = 0;

  constructor(
    private readonly tail: EventTail,
    redis: RedisClient,
    private readonly logger: Logger,
    private readonly lockKey: string,
    ttlMs = 5_000,
  ) {
    this.leases = new RedisLeases(redis, { ttlMs });
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
          const written = await this.round().catch((e: Error) => this.failed(e));
          if (written < 0) await sleep(FAILED_MS);
          else if (written < EVENTS_PER_CHAT) await sleep(IDLE_MS);
        }
      } finally {
        await lease.release();
      }
    }
  }

  /** One round: the events written (-1 when it failed). */
  async round(): Promise<number> {
    const marked = await this.tail.dirty(CHATS_PER_ROUND);
    if (marked.length === 0) return 0;
    const results = await this.tail.flush(
      marked.map((m) => m.chatId),
      EVENTS_PER_CHAT,
    );
    let written = 0;
    await Promise.all(
      marked.map(async (m) => {
        const r = results.get(m.chatId);
        written += r?.written ?? 0;
        if (r?.done) await this.tail.unmark(m.chatId, m.mark);
      }),
    );
    this.written += written;
    return written;
  }

  private failed(e: Error): number {
    const now = Date.now();
    if (now - this.lastWarn > 10_000) {
      this.lastWarn = now;
      this.logger.warn(isStorageUnreachable(e) ? 'timeline tail waits for the database' : 'timeline tail flush failed', { error: e.message });
    }
    return -1;
  }
}

import type { RedisClient } from '@tessera/kit';
import { RedisLeases } from '@tessera/kit';

export interface HeldLease {
  readonly chatId: string;
  /** Aborted when the lease could not be renewed (another worker may take the chat). */
  readonly lost: AbortSignal;
  release(): Promise<void>;
}

/**
 * One worker at a time runs a chat's turns: the kit's Redis lease on the chat, renewed while
 * held, so a worker that dies frees its chats within `ttlMs`.
 */
export class ChatLease {
  private readonly leases: RedisLeases;

  constructor(
    redis: RedisClient,
    private readonly prefix = 'tessera',
    ttlMs = 5_000,
  ) {
    this.leases = new RedisLeases(redis, { ttlMs });
  }

  key(chatId: string): string {
    return `${this.prefix}:lease:chat:${chatId}`;
  }

  isHeld(chatId: string): Promise<boolean> {
    return this.leases.isHeld(this.key(chatId));
  }

  async acquire(chatId: string): Promise<HeldLease | null> {
    const lease = await this.leases.acquire(this.key(chatId));
    return lease && { chatId, lost: lease.lost, release: () => lease.release() };
  }
}

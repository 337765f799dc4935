import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';

const RENEW = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end`;
const RELEASE = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end`;

export interface HeldLease {
  readonly chatId: string;
  /** Aborted when the lease could not be renewed (another worker may take the chat). */
  readonly lost: AbortSignal;
  release(): Promise<void>;
}

/**
 * One worker at a time runs a chat's turns. The lease lives in Redis with a short TTL renewed
 * while held, so a worker that dies frees its chats within `ttlMs`.
 */
export class ChatLease {
  constructor(
    private readonly redis: Redis,
    private readonly prefix = 'tessera',
    private readonly ttlMs = 5_000,
  ) {}

  key(chatId: string): string {
    return `${this.prefix}:lease:chat:${chatId}`;
  }

  async isHeld(chatId: string): Promise<boolean> {
    return (await this.redis.exists(this.key(chatId))) === 1;
  }

  async acquire(chatId: string): Promise<HeldLease | null> {
    const token = randomUUID();
    const key = this.key(chatId);
    const ok = await this.redis.set(key, token, 'PX', this.ttlMs, 'NX');
    if (ok !== 'OK') return null;
    const lost = new AbortController();
    const timer = setInterval(() => {
      this.redis.eval(RENEW, 1, key, token, String(this.ttlMs)).then(
        (r) => {
          if (r !== 1) lost.abort(new Error('chat lease lost'));
        },
        () => undefined, // Redis briefly away: the next renewal decides
      );
    }, Math.floor(this.ttlMs / 3));
    timer.unref();
    return {
      chatId,
      lost: lost.signal,
      release: async () => {
        clearInterval(timer);
        await this.redis.eval(RELEASE, 1, key, token).catch(() => undefined);
      },
    };
  }
}

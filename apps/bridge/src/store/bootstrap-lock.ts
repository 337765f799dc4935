import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import { Unavailable } from '@tessera/kit';
import type { Keys } from './keys';

const POLL_MS = 50;

/**
 * One bootstrap of a reuse key at a time across every instance: a Redis key set NX with an
 * expiry, deleted only by its holder. Kept on its own so that the kit's lease can take its place.
 */
export class BootstrapLock {
  constructor(
    private readonly redis: Redis,
    private readonly k: Keys,
  ) {}

  /**
   * Runs `work` holding the lock of `reuseKey` for at most `holdMs`. While another instance holds
   * it, `theirs` is asked every 50 ms for what that instance made, and its answer is returned
   * instead; a holder that takes longer than `holdMs` is a 503.
   */
  async run<T>(reuseKey: string, holdMs: number, work: () => Promise<T>, theirs: () => Promise<T | null>): Promise<T> {
    const key = this.k.lock(reuseKey);
    const token = randomUUID();
    const deadline = Date.now() + holdMs;
    for (;;) {
      if ((await this.redis.set(key, token, 'PX', holdMs, 'NX')) === 'OK') break;
      await new Promise((r) => setTimeout(r, POLL_MS));
      const made = await theirs();
      if (made) return made;
      if (Date.now() > deadline) throw new Unavailable('another bootstrap of this session is still starting its agent server; try again');
    }
    try {
      return await work();
    } finally {
      await this.redis.eval(`if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`, 1, key, token).catch(() => undefined);
    }
  }
}

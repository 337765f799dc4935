import type { RedisClient } from '@tessera/kit';
import { RedisLeases, Unavailable } from '@tessera/kit';
import type { Keys } from './keys';

const POLL_MS = 50;

/** One bootstrap of a reuse key at a time across every instance: the kit's Redis lease on it. */
export class BootstrapLock {
  constructor(
    private readonly redis: RedisClient,
    private readonly k: Keys,
  ) {}

  /**
   * Runs `work` holding the lock of `reuseKey` (a holder that dies frees it within `holdMs`).
   * While another instance holds it, `theirs` is asked every 50 ms for what that instance made,
   * and its answer is returned instead; waiting longer than `holdMs` is a 503.
   */
  async run<T>(reuseKey: string, holdMs: number, work: () => Promise<T>, theirs: () => Promise<T | null>): Promise<T> {
    const leases = new RedisLeases(this.redis, { ttlMs: holdMs });
    const key = this.k.lock(reuseKey);
    const deadline = Date.now() + holdMs;
    let lease;
    while (!(lease = await leases.acquire(key))) {
      await new Promise((r) => setTimeout(r, POLL_MS));
      const made = await theirs();
      if (made) return made;
      if (Date.now() > deadline) throw new Unavailable('another bootstrap of this session is still starting its agent server; try again');
    }
    try {
      return await work();
    } finally {
      await lease.release();
    }
  }
}

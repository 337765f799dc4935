import type { RedisClient } from '@tessera/kit';
import { RateLimiterRedis, RateLimiterRes } from 'rate-limiter-flexible';

/**
 * Messages that make work (a turn, a new chat) per user per minute, whichever way they come (the
 * chat socket, HTTP input, AG-UI, A2A, MCP, Mission Ally) and on every runtime instance (counted
 * in Redis): a user with many sockets or clients gets one budget. The per-socket rate of the kit's
 * SocketHub bounds a single socket; this bounds the user. When Redis does not answer, messages
 * pass: the per-socket limit and the gateway's still hold.
 */
const MAX_RATES = 1_000;

export class UserMessageLimit {
  /** One limiter per rate: the deployment's, and each a budget sets (`turns_per_minute`). */
  private readonly limiters = new Map<number, RateLimiterRedis>();

  constructor(
    private readonly redis: RedisClient,
    private readonly prefix: string,
    private readonly perMinute: number,
  ) {}

  /**
   * Counts one message; the seconds to wait when the user's rate is spent, else null. `perMinute`,
   * a budget's turns_per_minute for the user, replaces the deployment's rate (0: no limit).
   */
  async take(appId: string, userId: string, perMinute = this.perMinute): Promise<number | null> {
    if (perMinute <= 0) return null;
    let limiter = this.limiters.get(perMinute);
    if (!limiter) {
      // Budgets may set any rate: the limiters of rates seen are few, but never more than this.
      if (this.limiters.size >= MAX_RATES) this.limiters.clear();
      // Counted under a key of its own per rate: a rate changed by a budget starts afresh.
      const keyPrefix = perMinute === this.perMinute ? `${this.prefix}:ws-user` : `${this.prefix}:ws-user:${perMinute}`;
      limiter = new RateLimiterRedis({ storeClient: this.redis, keyPrefix, points: perMinute, duration: 60 });
      this.limiters.set(perMinute, limiter);
    }
    try {
      await limiter.consume(`${appId}:${userId}`);
      return null;
    } catch (e) {
      if (!(e instanceof RateLimiterRes)) return null;
      return Math.max(1, Math.ceil(e.msBeforeNext / 1000));
    }
  }
}

import type { Redis } from 'ioredis';
import { RateLimiterRedis, RateLimiterRes } from 'rate-limiter-flexible';

/**
 * Messages that make work (a turn, a new chat) per user per minute, whichever way they come (the
 * chat socket, HTTP input, AG-UI, A2A, MCP, Mission Ally) and on every runtime instance (counted
 * in Redis): a user with many sockets or clients gets one budget. The per-socket rate of the kit's
 * SocketHub bounds a single socket; this bounds the user. When Redis does not answer, messages
 * pass: the per-socket limit and the gateway's still hold.
 */
export class UserMessageLimit {
  private readonly limiter: RateLimiterRedis | null;

  constructor(redis: Redis, prefix: string, perMinute: number) {
    this.limiter = perMinute > 0 ? new RateLimiterRedis({ storeClient: redis, keyPrefix: `${prefix}:ws-user`, points: perMinute, duration: 60 }) : null;
  }

  /** Counts one message; the seconds to wait when the user's budget is spent, else null. */
  async take(appId: string, userId: string): Promise<number | null> {
    if (!this.limiter) return null;
    try {
      await this.limiter.consume(`${appId}:${userId}`);
      return null;
    } catch (e) {
      if (!(e instanceof RateLimiterRes)) return null;
      return Math.max(1, Math.ceil(e.msBeforeNext / 1000));
    }
  }
}

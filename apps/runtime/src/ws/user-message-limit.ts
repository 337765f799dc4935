import type { Redis } from 'ioredis';
import { RateLimiterRedis, RateLimiterRes } from 'rate-limiter-flexible';
import { WsErrorCode } from '@tessera/contracts';
import { InputRefused } from '../turns/chat-inputs';

/**
 * Messages that make work (a turn, a new chat) per user per minute, across every socket of the
 * user on every runtime instance (counted in Redis): a user with many sockets gets one budget.
 * The per-socket rate of the kit's SocketHub bounds a single socket; this bounds the user.
 * When Redis does not answer, messages pass: the per-socket limit still holds.
 */
export class UserMessageLimit {
  private readonly limiter: RateLimiterRedis | null;

  constructor(redis: Redis, prefix: string, perMinute: number) {
    this.limiter = perMinute > 0 ? new RateLimiterRedis({ storeClient: redis, keyPrefix: `${prefix}:ws-user`, points: perMinute, duration: 60 }) : null;
  }

  async take(appId: string, userId: string): Promise<void> {
    if (!this.limiter) return;
    try {
      await this.limiter.consume(`${appId}:${userId}`);
    } catch (e) {
      if (!(e instanceof RateLimiterRes)) return;
      const retry = Math.max(1, Math.ceil(e.msBeforeNext / 1000));
      throw new InputRefused(WsErrorCode.RateLimited, `too many messages from this user; try again in ${retry} s`, 429);
    }
  }
}

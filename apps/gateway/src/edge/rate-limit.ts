import type { RedisClient } from '@tessera/kit';
import { RateLimiterRedis, RateLimiterRes, RLWrapperTimeouts } from 'rate-limiter-flexible';
import type { Logger } from '@tessera/kit';

export interface RateVerdict {
  allowed: boolean;
  limit: number;
  remaining: number;
  /** Seconds to wait, when refused. */
  retryAfterS?: number;
}

export interface RateLimitOptions {
  /** Requests per window; 0 disables limiting. */
  limit: number;
  /** Window length; counted in whole seconds (rounded up), as Redis expiries are. */
  windowMs: number;
  prefix: string;
  /** A Redis that does not answer within this lets the request through (fail open). */
  timeoutMs?: number;
}

/**
 * Per-client limit counted in Redis (rate-limiter-flexible's fixed window, one key per client),
 * so that every gateway instance shares one budget per client. When Redis is away the gateway
 * keeps serving without limits (and says so in the log, and /ready reports it down) rather than
 * refusing every request.
 */
export class RateLimiter {
  private readonly limiter?: RLWrapperTimeouts;
  private lastWarn = 0;

  constructor(
    redis: RedisClient,
    private readonly opts: RateLimitOptions,
    private readonly logger: Logger,
  ) {
    if (opts.limit <= 0) return;
    const store = new RateLimiterRedis({
      storeClient: redis,
      useRedisPackage: false, // ioredis
      keyPrefix: opts.prefix,
      points: opts.limit,
      duration: Math.ceil(opts.windowMs / 1000),
      // Fail at once while reconnecting, instead of queueing behind ioredis's retries.
      rejectIfRedisNotReady: true,
      // A client past its budget is refused from memory for the rest of its window: a flood of
      // refused requests costs this instance no Redis round trips.
      inMemoryBlockOnConsumed: opts.limit + 1,
    });
    // No insuranceLimiter: a Redis error reaches take(), which lets the request through and warns.
    this.limiter = new RLWrapperTimeouts({ limiter: store, timeoutMs: opts.timeoutMs ?? 250 });
  }

  get enabled(): boolean {
    return this.limiter !== undefined;
  }

  async take(client: string): Promise<RateVerdict> {
    const { limit } = this.opts;
    if (!this.limiter) return { allowed: true, limit, remaining: limit };
    try {
      const res = await this.limiter.consume(client);
      return { allowed: true, limit, remaining: res.remainingPoints };
    } catch (e) {
      if (!(e instanceof RateLimiterRes)) return this.failOpen(e as Error);
      return { allowed: false, limit, remaining: 0, retryAfterS: Math.max(1, Math.ceil(e.msBeforeNext / 1000)) };
    }
  }

  private failOpen(err: Error): RateVerdict {
    const now = Date.now();
    if (now - this.lastWarn > 60_000) {
      this.lastWarn = now;
      this.logger.warn('rate limit not enforced: redis unavailable', { error: err.message });
    }
    return { allowed: true, limit: this.opts.limit, remaining: this.opts.limit };
  }
}

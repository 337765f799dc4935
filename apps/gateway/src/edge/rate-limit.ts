import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { Logger } from '@tessera/kit';
import { estimate, retryAfterMs, retryAfterSeconds, SLIDING_WINDOW_LUA, windowAt } from '../domain/sliding-window';

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
  windowMs: number;
  prefix: string;
  /** A Redis that does not answer within this lets the request through (fail open). */
  timeoutMs?: number;
}

const SHA = createHash('sha1').update(SLIDING_WINDOW_LUA).digest('hex');

/**
 * Per-client limit counted in Redis, so that every gateway instance shares one budget per
 * client. When Redis is away the gateway keeps serving without limits (and says so in the log,
 * and /ready reports it down) rather than refusing every request.
 */
export class RateLimiter {
  private lastWarn = 0;

  constructor(
    private readonly redis: Redis,
    private readonly opts: RateLimitOptions,
    private readonly logger: Logger,
  ) {}

  get enabled(): boolean {
    return this.opts.limit > 0;
  }

  async take(client: string, now = Date.now()): Promise<RateVerdict> {
    const { limit, windowMs, prefix } = this.opts;
    if (!this.enabled) return { allowed: true, limit, remaining: limit };
    if (this.redis.status !== 'ready') return this.failOpen(new Error(`redis is ${this.redis.status}`));
    const pos = windowAt(now, windowMs);
    // One hash slot per client ({…}), so the script's two keys may live on one Redis Cluster node.
    const tag = `${prefix}:{${encodeURIComponent(client)}}`;
    const keys = [`${tag}:${pos.index}`, `${tag}:${pos.index - 1}`];
    const args = [limit, windowMs, pos.elapsedMs];
    let reply: [number, number, number];
    try {
      reply = (await withTimeout(this.run(keys, args), this.opts.timeoutMs ?? 250)) as [number, number, number];
    } catch (e) {
      return this.failOpen(e as Error);
    }
    const [allowed, cur, prev] = reply.map(Number);
    if (allowed === 1) {
      return { allowed: true, limit, remaining: Math.max(0, Math.floor(limit - estimate(prev, cur, pos.elapsedMs, windowMs))) };
    }
    return { allowed: false, limit, remaining: 0, retryAfterS: retryAfterSeconds(retryAfterMs(limit, windowMs, pos.elapsedMs, prev, cur)) };
  }

  private async run(keys: string[], args: number[]): Promise<unknown> {
    try {
      return await this.redis.evalsha(SHA, keys.length, ...keys, ...args);
    } catch (e) {
      if (!String((e as Error).message).includes('NOSCRIPT')) throw e;
      return this.redis.eval(SLIDING_WINDOW_LUA, keys.length, ...keys, ...args);
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

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`redis did not answer within ${ms} ms`)), ms);
    }),
  ]);
}

import type { Logger, RedisClient } from '@tessera/kit';

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
  /** Window length (fixed windows: a client's first request starts one). */
  windowMs: number;
  prefix: string;
  /** A Redis that does not answer within this lets the request through (fail open). */
  timeoutMs?: number;
  /** Clients whose allotments an instance keeps in memory (default 100,000); past it the oldest are forgotten. */
  maxClients?: number;
}

/** The most points an instance takes for one client at once. */
const MAX_ALLOTMENT = 64;
/** An instance takes at most this share of what is left of a client's window, so that points held unspent stay few. */
const SHARE_OF_LEFT = 8;
/** An allotment spent within this of being taken was too small: the next one is twice its size. */
const SPENT_FAST_MS = 1_000;

/**
 * Hands out up to ARGV[2] of the window's points (never more than an eighth of those left, at
 * least one while any are left), starting the window (ARGV[3] ms) on its first point.
 * Returns the points granted, the window's count after the grant and its milliseconds left.
 */
const TAKE = `
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
local left = tonumber(ARGV[1]) - used
local ttl = redis.call('PTTL', KEYS[1])
if left <= 0 then return {0, used, ttl} end
local grant = math.min(tonumber(ARGV[2]), math.max(1, math.floor(left / ${SHARE_OF_LEFT})))
used = redis.call('INCRBY', KEYS[1], grant)
if ttl < 0 then
  ttl = tonumber(ARGV[3])
  redis.call('PEXPIRE', KEYS[1], ttl)
end
return {grant, used, ttl}
`;

type RedisWithTake = RedisClient & { tesseraRateTake(key: string, limit: number, want: number, windowMs: number): Promise<[number, number, number]> };

/** What this instance holds of one client's window. */
interface Allotment {
  /** Points taken from Redis and not spent yet. */
  left: number;
  /** The window's count in Redis at the last take: every instance's points handed out, these included. */
  used: number;
  /** When the window ends, on this instance's clock. */
  until: number;
  /** The window's points are all handed out: refused from memory until it ends. */
  exhausted: boolean;
  /** The next take's size. */
  want: number;
  takenAt: number;
  /** A take in flight: requests that find nothing left wait for it rather than send their own. */
  taking?: Promise<void>;
}

/**
 * Per-client limit in fixed windows, with one budget per client across every gateway instance:
 * the window's count lives in Redis. An instance does not ask Redis for every request: it takes a
 * client's points in allotments and spends them from memory. An allotment grows (doubling, up to
 * MAX_ALLOTMENT) while the client spends each within a second, and is never more than an eighth of
 * the points the window has left, so a client is never let through more than the limit and the
 * points other instances hold unspent when a window runs out are few. A client past its budget is
 * refused from memory for the rest of its window. When Redis is away the gateway keeps serving
 * without limits (and says so in the log, and /ready reports it down) rather than refusing every
 * request.
 */
export class RateLimiter {
  private readonly allotments = new Map<string, Allotment>();
  private lastWarn = 0;
  private lastSweep = Date.now();

  constructor(
    private readonly redis: RedisClient,
    private readonly opts: RateLimitOptions,
    private readonly logger: Logger,
  ) {
    if (opts.limit > 0) redis.defineCommand('tesseraRateTake', { numberOfKeys: 1, lua: TAKE });
  }

  get enabled(): boolean {
    return this.opts.limit > 0;
  }

  async take(client: string): Promise<RateVerdict> {
    const { limit } = this.opts;
    if (!this.enabled) return { allowed: true, limit, remaining: limit };
    for (;;) {
      const now = Date.now();
      this.sweep(now);
      let a = this.allotments.get(client);
      if (a && now >= a.until && !a.taking) a = undefined;
      if (a && a.left > 0) {
        a.left--;
        return { allowed: true, limit, remaining: limit - a.used + a.left };
      }
      if (a?.exhausted) return { allowed: false, limit, remaining: 0, retryAfterS: Math.max(1, Math.ceil((a.until - now) / 1000)) };
      if (!a) {
        a = { left: 0, used: 0, until: 0, exhausted: false, want: 1, takenAt: 0 };
        this.remember(client, a);
      }
      a.taking ??= this.refill(client, a).finally(() => (a.taking = undefined));
      try {
        await a.taking;
      } catch (e) {
        return this.failOpen(e as Error);
      }
    }
  }

  private async refill(client: string, a: Allotment): Promise<void> {
    if (this.redis.status !== 'ready') throw new Error(`redis is ${this.redis.status}`);
    const now = Date.now();
    // The last allotment went within a second (or requests wait for this one): take more.
    const want = now < a.until && now - a.takenAt < SPENT_FAST_MS ? Math.min(a.want * 2, MAX_ALLOTMENT) : 1;
    const reply = (this.redis as RedisWithTake).tesseraRateTake(`${this.opts.prefix}:${client}`, this.opts.limit, want, this.opts.windowMs);
    // Points granted after the timeout let requests through are kept for the next ones.
    const granted = reply.then(([points, used, ttl]) => {
      const at = Date.now();
      Object.assign(a, { left: a.left + points, used, until: at + ttl, exhausted: points === 0, want, takenAt: at });
    });
    await withTimeout(granted, this.opts.timeoutMs ?? 250);
  }

  /** Clients held in memory now. */
  get clients(): number {
    return this.allotments.size;
  }

  /**
   * Past maxClients (a flood of addresses, say) the oldest tenth is forgotten. Forgetting is safe:
   * points held are never spent (fewer requests pass, never more), and a client refused from
   * memory is refused by Redis on its next request.
   */
  private remember(client: string, a: Allotment): void {
    const max = this.opts.maxClients ?? 100_000;
    if (this.allotments.size >= max) {
      let drop = Math.ceil(max / 10);
      for (const [old, held] of this.allotments) {
        if (drop-- <= 0) break;
        if (!held.taking) this.allotments.delete(old);
      }
    }
    this.allotments.set(client, a);
  }

  /** Forgets windows that ended, at most once a window. */
  private sweep(now: number): void {
    if (now - this.lastSweep < this.opts.windowMs) return;
    this.lastSweep = now;
    for (const [client, a] of this.allotments) if (now >= a.until && !a.taking) this.allotments.delete(client);
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
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`redis did not answer within ${ms} ms`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

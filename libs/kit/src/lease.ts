import { randomUUID } from 'node:crypto';
import type { RedisClient } from './redis';

// Only the holder (the token it set) may extend or delete the key.
const RENEW = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end`;
const RELEASE = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end`;

type RedisWithLeases = RedisClient & {
  tesseraLeaseRenew(key: string, token: string, ttlMs: string): Promise<number>;
  tesseraLeaseRelease(key: string, token: string): Promise<number>;
};

/** A lease this process holds. */
export interface Lease {
  readonly key: string;
  /** Aborted when the lease could not be renewed: another process may hold it now. */
  readonly lost: AbortSignal;
  /** Ends the lease (a no-op once it is someone else's); never throws. */
  release(): Promise<void>;
}

export interface LeaseOptions {
  /** How long the lease outlives a holder that stopped renewing it (died, or lost Redis). */
  ttlMs: number;
}

/**
 * Leases on Redis keys, one holder at a time across every process: SET NX PX with a random token,
 * renewed every third of the TTL while held, and released or renewed only by the token's holder
 * (Lua, sent by SHA once Redis knows the script). A holder that dies frees its keys within
 * `ttlMs`. One Redis, not Redlock's quorum: every service already depends on that one Redis being there.
 */
export class RedisLeases {
  private readonly redis: RedisWithLeases;

  constructor(
    redis: RedisClient,
    private readonly opts: LeaseOptions,
  ) {
    redis.defineCommand('tesseraLeaseRenew', { numberOfKeys: 1, lua: RENEW });
    redis.defineCommand('tesseraLeaseRelease', { numberOfKeys: 1, lua: RELEASE });
    this.redis = redis as RedisWithLeases;
  }

  async isHeld(key: string): Promise<boolean> {
    return (await this.redis.exists(key)) === 1;
  }

  /** The lease on `key`, or null while another process holds it. */
  async acquire(key: string): Promise<Lease | null> {
    const { ttlMs } = this.opts;
    const token = randomUUID();
    // SET NX GET (Redis 7): nil when this call set the key, else the holder's token. Our own token
    // is a SET that ioredis sent again after its connection dropped before the answer: ours.
    const holder = (await this.redis.call('SET', key, token, 'PX', String(ttlMs), 'NX', 'GET')) as string | null;
    if (holder !== null && holder !== token) return null;
    const lost = new AbortController();
    const timer = setInterval(() => {
      this.redis.tesseraLeaseRenew(key, token, String(ttlMs)).then(
        (r) => {
          if (r !== 1) {
            clearInterval(timer);
            lost.abort(new Error(`lease ${key} lost`));
          }
        },
        () => undefined, // Redis briefly away: the next renewal decides
      );
    }, Math.floor(ttlMs / 3));
    timer.unref();
    return {
      key,
      lost: lost.signal,
      release: async () => {
        clearInterval(timer);
        await this.redis.tesseraLeaseRelease(key, token).catch(() => undefined);
      },
    };
  }
}

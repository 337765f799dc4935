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
 * renewed every fifth of the TTL while held (two renewals may fail or be slow before the holder
 * gives the lease up, two fifths of the TTL before the key could expire), and released or renewed only by the token's holder
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

  /**
   * The lease on `key`, or null while another process holds it. It is lost (`lost` aborts) when a
   * renewal finds another holder, and also when no renewal has succeeded for three fifths of the TTL
   * (Redis unreachable, a failover under way): the holder stops before the key can expire, in
   * Redis or in the replica promoted in its place, and be taken by another process.
   */
  async acquire(key: string): Promise<Lease | null> {
    const { ttlMs } = this.opts;
    const keepMs = Math.floor((ttlMs * 3) / 5);
    const token = randomUUID();
    let renewedAt = Date.now();
    // SET NX GET (Redis 7): nil when this call set the key, else the holder's token. Our own token
    // is a SET that ioredis sent again after its connection dropped before the answer: ours.
    const holder = (await this.redis.call('SET', key, token, 'PX', String(ttlMs), 'NX', 'GET')) as string | null;
    if (holder !== null && holder !== token) return null;
    const lost = new AbortController();
    const lose = (why: string) => {
      clearInterval(timer);
      clearTimeout(deadline);
      if (!lost.signal.aborted) lost.abort(new Error(`lease ${key} lost: ${why}`));
    };
    // Counted from when the last successful command was sent: Redis set the expiry after that.
    const expiresIn = () => setTimeout(() => lose(`not renewed for ${keepMs} ms`), Math.max(0, renewedAt + keepMs - Date.now())).unref();
    let deadline = expiresIn();
    const timer = setInterval(() => {
      const sentAt = Date.now();
      this.redis.tesseraLeaseRenew(key, token, String(ttlMs)).then(
        (r) => {
          if (r !== 1) return lose('another process holds it');
          if (lost.signal.aborted || sentAt <= renewedAt) return;
          renewedAt = sentAt;
          clearTimeout(deadline);
          deadline = expiresIn();
        },
        () => undefined, // Redis briefly away: a later renewal, or the deadline, decides
      );
    }, Math.floor(ttlMs / 5));
    timer.unref();
    return {
      key,
      lost: lost.signal,
      release: async () => {
        clearInterval(timer);
        clearTimeout(deadline);
        await this.redis.tesseraLeaseRelease(key, token).catch(() => undefined);
      },
    };
  }
}

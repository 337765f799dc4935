import { createLogger, createRedis, RedisLeases, type RedisClient } from '../src';
import { tcpRelay, TEST_REDIS_URL, testPrefix } from '../src/testing';

const ONE_REDIS = /^rediss?:\/\//.test(TEST_REDIS_URL);

const prefix = testPrefix('kit-lease');
let redis: RedisClient;
let n = 0;
const key = () => `${prefix}:${++n}`;

beforeAll(() => {
  redis = createRedis(TEST_REDIS_URL, createLogger('lease-test', 'silent'), 'lease-test');
});
afterAll(async () => {
  const keys = await redis.keys(`${prefix}:*`);
  if (keys.length) await redis.del(...keys);
  await redis.quit();
});

const aborted = (signal: AbortSignal) => new Promise<unknown>((r) => signal.addEventListener('abort', () => r(signal.reason), { once: true }));

describe('RedisLeases', () => {
  it('gives a key to one holder at a time, and to the next once released', async () => {
    const leases = new RedisLeases(redis, { ttlMs: 5_000 });
    const k = key();
    const [a, b] = await Promise.all([leases.acquire(k), leases.acquire(k)]);
    expect([a, b].filter(Boolean)).toHaveLength(1);
    const held = (a ?? b)!;
    expect(held.key).toBe(k);
    expect(await leases.isHeld(k)).toBe(true);
    expect(await leases.acquire(k)).toBeNull();
    await held.release();
    expect(await leases.isHeld(k)).toBe(false);
    const next = await leases.acquire(k);
    expect(next).not.toBeNull();
    await next!.release();
  });

  it('is renewed while held, so it outlives its TTL', async () => {
    const leases = new RedisLeases(redis, { ttlMs: 300 });
    const k = key();
    const started = Date.now();
    const held = (await leases.acquire(k))!;
    // Each renewal puts the expiry back to the full TTL: seen as a time-to-live that grew.
    let renewals = 0;
    let last = await redis.pttl(k);
    while (Date.now() - started < 1_000) {
      const left = await redis.pttl(k);
      expect(left).toBeGreaterThan(0);
      if (left > last) renewals++;
      last = left;
    }
    expect(renewals).toBeGreaterThanOrEqual(4);
    expect(held.lost.aborted).toBe(false);
    expect(await leases.acquire(k)).toBeNull();
    await held.release();
  });

  it('tells its holder when it was lost, and a late release does not free the new holder', async () => {
    const leases = new RedisLeases(redis, { ttlMs: 300 });
    const k = key();
    const held = (await leases.acquire(k))!;
    // Another process took the key (this one's renewals were lost, say).
    await redis.set(k, 'someone-else', 'PX', 60_000);
    expect(String(await aborted(held.lost))).toContain(`lease ${k} lost`);
    await held.release();
    expect(await redis.get(k)).toBe('someone-else');
  });

  (ONE_REDIS ? it : it.skip)('is given up by a holder that cannot renew it (Redis hangs, a failover under way) while the key still has time left: nobody else can hold it yet', async () => {
    const relay = await tcpRelay(new URL(TEST_REDIS_URL));
    const hung = createRedis(relay.url, createLogger('lease-test', 'silent'), 'lease-hung');
    try {
      const ttlMs = 1_000;
      const k = key();
      const held = (await new RedisLeases(hung, { ttlMs }).acquire(k))!;
      // Renewed while Redis answers.
      await new Promise((r) => setTimeout(r, 1_500));
      expect(held.lost.aborted).toBe(false);
      relay.freeze();
      const frozenAt = Date.now();
      expect(String(await aborted(held.lost))).toContain(`lease ${k} lost: not renewed for 600 ms`);
      const after = Date.now() - frozenAt;
      // Given up before the key expires, so a second holder never overlaps it.
      const left = await redis.pttl(k);
      expect([after, left > 0]).toEqual([after, true]);
      expect(after).toBeLessThan(ttlMs);
      expect(await new RedisLeases(redis, { ttlMs }).acquire(k)).toBeNull();
    } finally {
      hung.disconnect();
      await relay.down();
    }
  });

  // A relay stands in front of one Redis: a cluster's clients reach its nodes at the addresses the cluster gives.
  (ONE_REDIS ? it : it.skip)('is its holder\'s when the SET that took it is sent again after a dropped connection (ioredis resends a command whose answer was lost)', async () => {
    // The SET runs in Redis, and the connection is cut before its answer gets back.
    const relay = await tcpRelay(new URL(TEST_REDIS_URL));
    const cut = createRedis(relay.url, createLogger('lease-test', 'silent'), 'lease-cut');
    try {
      await cut.ping();
      const leases = new RedisLeases(cut, { ttlMs: 5_000 });
      const k = key();
      relay.cutAfter('SET');
      let cuts = 0;
      cut.on('reconnecting', () => cuts++);
      const held = await leases.acquire(k);
      expect(cuts).toBeGreaterThan(0);
      expect(held).not.toBeNull();
      expect(await new RedisLeases(redis, { ttlMs: 5_000 }).acquire(k)).toBeNull();
      await held!.release();
      expect(await leases.isHeld(k)).toBe(false);
    } finally {
      cut.disconnect();
      await relay.down();
    }
  });
});

import express from 'express';
import fc from 'fast-check';
import { Redis } from 'ioredis';
import winston from 'winston';
import WebSocket from 'ws';
import { call, testPrefix, TEST_REDIS_URL, type Reply } from '@tessera/kit/testing';
import { RateLimiter } from '../src/edge/rate-limit';
import { startStandIn, startTestGateway, token, type StandIn, type TestGateway } from './support';

describe('gateway rate limit shared through Redis', () => {
  let upstream: StandIn;
  let a: TestGateway;
  let b: TestGateway;
  let redis: Redis;
  const prefix = testPrefix('gateway-rl');

  beforeAll(async () => {
    const app = express();
    app.get('/api/chats/ping', (_req, res) => res.json({ pong: true }));
    app.get('/api/workflows', (_req, res) => res.json({}));
    upstream = await startStandIn(app);
    redis = new Redis(TEST_REDIS_URL);
    // Two gateway instances, one Redis: the budget is per client across both. A long window
    // keeps a client's window from ending during the test.
    const env = { RUNTIME_URL: upstream.url, RATE_LIMIT_PER_MIN: '10', RATE_LIMIT_WINDOW_MS: '3600000', RATE_LIMIT_PREFIX: prefix };
    a = await startTestGateway(env);
    b = await startTestGateway(env);
  });

  afterAll(async () => {
    await a.stop();
    await b.stop();
    const keys = await redis.keys(`${prefix}*`);
    if (keys.length) await redis.del(...keys);
    await redis.quit();
    await upstream.close();
  });

  it('holds one budget per user across two gateway instances, with 429 and Retry-After', async () => {
    const alice = { authorization: `Bearer ${await token('alice')}` };
    const statuses: number[] = [];
    let refused: Reply | undefined;
    for (let i = 0; i < 12; i++) {
      const r = await call(i % 2 ? b.url : a.url, 'GET', '/api/chats/ping', { headers: alice });
      statuses.push(r.status);
      if (r.status === 429) refused = r;
    }
    expect(statuses.filter((s) => s === 200)).toHaveLength(10);
    expect(statuses.slice(10)).toEqual([429, 429]);
    expect(refused!.json.error.code).toBe('RATE_LIMITED');
    expect(Number(refused!.headers['retry-after'])).toBeGreaterThanOrEqual(1);

    // Another user has a budget of their own; so does an anonymous client (by address).
    const bob = await call(b.url, 'GET', '/api/chats/ping', { token: await token('bob') });
    expect(bob.status).toBe(200);
    expect(bob.headers['x-ratelimit-remaining']).toBe('9');
    const anon = await call(a.url, 'GET', '/api/workflows');
    expect(anon.status).toBe(200);
  });

  it('spends a busy client\'s whole budget across both instances, taken from Redis in allotments', async () => {
    // A larger budget than the other tests': each instance takes several points at a time.
    const env = { RUNTIME_URL: upstream.url, RATE_LIMIT_PER_MIN: '200', RATE_LIMIT_WINDOW_MS: '3600000', RATE_LIMIT_PREFIX: `${prefix}-big` };
    const [c, d] = [await startTestGateway(env), await startTestGateway(env)];
    try {
      const dan = await token('dan');
      const statuses: number[] = [];
      for (let round = 0; round < 30; round++) {
        const replies = await Promise.all(Array.from({ length: 10 }, (_, i) => call(i % 2 ? d.url : c.url, 'GET', '/api/chats/ping', { token: dan })));
        statuses.push(...replies.map((r) => r.status));
      }
      expect(statuses.filter((s) => s === 200)).toHaveLength(200);
      expect(statuses.filter((s) => s === 429)).toHaveLength(100);
      expect(Number(await redis.get(`${prefix}-big:user:dan`))).toBe(200);
    } finally {
      await c.stop();
      await d.stop();
    }
  });

  it('counts WebSocket upgrades and refused tokens too', async () => {
    const carol = await token('carol');
    for (let i = 0; i < 10; i++) expect((await call(a.url, 'GET', '/api/chats/ping', { token: carol })).status).toBe(200);
    const status = await new Promise<number>((resolve) => {
      const ws = new WebSocket(b.url.replace('http', 'ws') + `/ws/a/demo-app/c/carol?access_token=${carol}`);
      ws.on('unexpected-response', (_req, res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      ws.on('open', () => {
        ws.close();
        resolve(101);
      });
      ws.on('error', () => undefined);
    });
    expect(status).toBe(429);

    // Bad tokens are counted against the address: guessing is limited too.
    const ip = await Promise.all(Array.from({ length: 12 }, () => call(a.url, 'GET', '/api/chats/ping', { token: 'guess' })));
    const codes = ip.map((r) => r.status);
    expect(codes).toContain(429);
    expect(codes.filter((c) => c === 401).length).toBeLessThanOrEqual(10);
  });
});

describe('rate limit allotments: two limiters on one Redis, as two gateway instances', () => {
  const redis = new Redis(TEST_REDIS_URL);
  const base = testPrefix('gateway-rl-prop');
  const logger = winston.createLogger({ silent: true });
  afterAll(async () => {
    const keys = await redis.keys(`${base}*`);
    if (keys.length) await redis.del(...keys);
    await redis.quit();
  });

  it('never lets a client past its limit, refuses only once every point is handed out, and leaves few unspent', async () => {
    let run = 0;
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 1, max: 80 }), fc.array(fc.record({ instance: fc.nat(1), burst: fc.integer({ min: 1, max: 12 }) }), { maxLength: 40 }), async (limit, steps) => {
        const prefix = `${base}:${run++}`;
        const limiters = [0, 1].map(() => new RateLimiter(redis, { limit, windowMs: 3_600_000, prefix }, logger));
        const handedOut = async () => Number((await redis.get(`${prefix}:user:p`)) ?? 0);
        let allowed = 0;
        let refused = false;
        for (const { instance, burst } of steps) {
          const verdicts = await Promise.all(Array.from({ length: burst }, () => limiters[instance].take('user:p')));
          for (const v of verdicts) {
            expect(v.limit).toBe(limit);
            if (v.allowed) {
              allowed++;
              expect(v.remaining).toBeGreaterThanOrEqual(0);
              expect(v.remaining).toBeLessThan(limit);
            } else {
              refused = true;
              expect(v.retryAfterS).toBeGreaterThanOrEqual(1);
            }
          }
          if (verdicts.some((v) => !v.allowed)) expect(await handedOut()).toBe(limit);
        }
        expect(allowed).toBeLessThanOrEqual(await handedOut());
        expect(await handedOut()).toBeLessThanOrEqual(limit);
        // What the other instance still holds once a client is refused: at most its last allotment.
        if (refused) expect(limit - allowed).toBeLessThanOrEqual(Math.max(1, Math.floor(limit / 8)));
      }),
      { numRuns: 60 },
    );
  });

  it('keeps at most maxClients clients in memory under a flood of new ones, and still limits each', async () => {
    const limiter = new RateLimiter(redis, { limit: 2, windowMs: 3_600_000, prefix: `${base}:flood`, maxClients: 100 }, logger);
    for (let i = 0; i < 350; i++) {
      expect((await limiter.take(`ip:10.0.${i >> 8}.${i & 255}`)).allowed).toBe(true);
      expect(limiter.clients).toBeLessThanOrEqual(100);
    }
    // The first client spent one of its 2 points and was forgotten since: Redis still counts it.
    expect((await limiter.take('ip:10.0.0.0')).allowed).toBe(true);
    expect((await limiter.take('ip:10.0.0.0')).allowed).toBe(false);
  });
});

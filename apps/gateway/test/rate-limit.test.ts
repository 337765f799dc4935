import express from 'express';
import { Redis } from 'ioredis';
import WebSocket from 'ws';
import { call, testPrefix, TEST_REDIS_URL, type Reply } from '@tessera/kit/testing';
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

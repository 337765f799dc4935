import { createServer, connect, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import express from 'express';
import { Redis } from 'ioredis';
import winston from 'winston';
import { whenReady } from '@tessera/kit';
import { call, testPrefix, TEST_REDIS_URL } from '@tessera/kit/testing';
import { startGatewayServer, type RunningGateway } from '../src/server';
import { gatewayConfig, startStandIn, token, type StandIn } from './support';

/**
 * A TCP relay in front of the real Redis that the test can freeze (commands go unanswered while
 * the connection stays up) or take away (connections dropped, port closed).
 */
async function startRelay(target: URL) {
  const sockets = new Set<Socket>();
  let frozen = false;
  const server: Server = createServer((client) => {
    const upstream = connect(Number(target.port || 6379), target.hostname);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('error', () => undefined);
      s.on('close', () => sockets.delete(s));
    }
    client.on('data', (d) => frozen || upstream.write(d));
    upstream.on('data', (d) => frozen || client.write(d));
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  // The target's user and password (the generated one, .data/secrets) reach Redis through the relay.
  const url = new URL(target.href);
  url.hostname = '127.0.0.1';
  url.port = String((server.address() as AddressInfo).port);
  return {
    url: url.href,
    freeze: () => (frozen = true),
    takeAway: async () => {
      for (const s of sockets) s.destroy();
      if (!server.listening) return;
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

describe('gateway rate limit when Redis is away', () => {
  let upstream: StandIn;
  let gw: RunningGateway;
  let relay: Awaited<ReturnType<typeof startRelay>>;
  const logged: string[] = [];
  // The gateway's warnings but its Redis connection's own (lost, restored: the kit's, once per change).
  const warnings = () => logged.filter((line) => !String(JSON.parse(line).message).startsWith('redis connection'));
  const prefix = testPrefix('gateway-rl-open');

  beforeAll(async () => {
    const app = express();
    app.get('/api/chats/ping', (_req, res) => res.json({ pong: true }));
    upstream = await startStandIn(app);
    relay = await startRelay(new URL(TEST_REDIS_URL));
    const logger = winston.createLogger({
      level: 'warn',
      format: winston.format.json(),
      transports: [new winston.transports.Stream({ stream: new Writable({ write: (line, _enc, done) => (logged.push(String(line)), done()) }) })],
    });
    // The gateway's own Redis connection goes through the relay.
    const config = gatewayConfig({ RUNTIME_URL: upstream.url, RATE_LIMIT_PER_MIN: '2', RATE_LIMIT_PREFIX: prefix, REDIS_URL: relay.url });
    gw = await startGatewayServer(config, logger);
    await whenReady(gw.s.redis);
  });

  afterAll(async () => {
    await gw.shutdown.run();
    await relay.takeAway(); // when the test failed before it did
    const direct = new Redis(TEST_REDIS_URL);
    const keys = await direct.keys(`${prefix}*`);
    if (keys.length) await direct.del(...keys);
    await direct.quit();
    await upstream.close();
  });

  const ping = async (sub: string) => call(gw.url, 'GET', '/api/chats/ping', { token: await token(sub) });

  it('limits while Redis answers, then lets requests through (and warns once) when it hangs or is gone', async () => {
    expect([(await ping('dana')).status, (await ping('dana')).status, (await ping('dana')).status]).toEqual([200, 200, 429]);
    expect(warnings()).toEqual([]);

    // Redis connected but silent: each request waits for the limiter's timeout, then passes.
    relay.freeze();
    const hung = await Promise.all([ping('erin'), ping('erin'), ping('erin')]);
    expect(hung.map((r) => r.status)).toEqual([200, 200, 200]);
    for (const r of hung) expect(r.ms).toBeLessThan(2_000);

    // Redis gone: requests pass at once.
    await relay.takeAway();
    const gone = await Promise.all([ping('fay'), ping('fay'), ping('fay')]);
    expect(gone.map((r) => r.status)).toEqual([200, 200, 200]);

    // One warning for the whole outage, not one per request.
    expect(warnings()).toHaveLength(1);
    expect(JSON.parse(warnings()[0])).toMatchObject({ level: 'warn', message: 'rate limit not enforced: redis unavailable' });
  });
});

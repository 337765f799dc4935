import { Writable } from 'node:stream';
import express from 'express';
import { Redis } from 'ioredis';
import winston from 'winston';
import { whenReady } from '@tessera/kit';
import { call, tcpRelay, testPrefix, TEST_REDIS_URL, type TcpRelay } from '@tessera/kit/testing';
import { startGatewayServer, type RunningGateway } from '../src/server';
import { gatewayConfig, startStandIn, token, type StandIn } from './support';

describe('gateway rate limit when Redis is away', () => {
  let upstream: StandIn;
  let gw: RunningGateway;
  let relay: TcpRelay;
  const logged: string[] = [];
  // The gateway's warnings but its Redis connection's own (lost, restored: the kit's, once per change).
  const warnings = () => logged.filter((line) => !String(JSON.parse(line).message).startsWith('redis connection'));
  const prefix = testPrefix('gateway-rl-open');

  beforeAll(async () => {
    const app = express();
    app.get('/api/chats/ping', (_req, res) => res.json({ pong: true }));
    upstream = await startStandIn(app);
    relay = await tcpRelay(new URL(TEST_REDIS_URL));
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
    // Redis back first: a client left reconnecting to a relay that is down keeps jest waiting.
    await relay.up();
    await whenReady(gw.s.redis);
    await gw.shutdown.run();
    await relay.down();
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
    await relay.down();
    const gone = await Promise.all([ping('fay'), ping('fay'), ping('fay')]);
    expect(gone.map((r) => r.status)).toEqual([200, 200, 200]);

    // One warning for the whole outage, not one per request.
    expect(warnings()).toHaveLength(1);
    expect(JSON.parse(warnings()[0])).toMatchObject({ level: 'warn', message: 'rate limit not enforced: redis unavailable' });
  });
});

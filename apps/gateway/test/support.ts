import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Express } from 'express';
import { Redis } from 'ioredis';
import { WebSocketServer } from 'ws';
import { createLogger, DEV_JWT_SECRET, signToken } from '@tessera/kit';
import { testPrefix, TEST_REDIS_URL } from '@tessera/kit/testing';
import { loadGatewayConfig, type GatewayConfig } from '../src/config';
import { startGateway, type RunningGateway } from '../src/app';

export const SECRET = DEV_JWT_SECRET;
export const logger = createLogger('gateway-test', process.env.TEST_LOG_LEVEL ?? 'silent');

/** A stand-in service: an express app and a WebSocket server on one port. */
export interface StandIn {
  url: string;
  port: number;
  server: Server;
  wss: WebSocketServer;
  close: () => Promise<void>;
}

/** `port`: a given one (an instance that comes back where it was), else any free port. */
export async function startStandIn(app: Express, onWs?: (wss: WebSocketServer) => void, port = 0): Promise<StandIn> {
  const server = createServer(app);
  const wss = new WebSocketServer({ server });
  onWs?.(wss);
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', () => r()));
  const bound = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${bound}`,
    port: bound,
    server,
    wss,
    close: async () => {
      if (!server.listening) return;
      for (const c of wss.clients) c.terminate();
      await new Promise<void>((r) => wss.close(() => r()));
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

export function gatewayConfig(env: Record<string, string>): GatewayConfig {
  return loadGatewayConfig({
    NODE_ENV: 'test',
    LOG_LEVEL: 'silent',
    REDIS_URL: TEST_REDIS_URL,
    JWT_SECRET: SECRET,
    RATE_LIMIT_PREFIX: testPrefix('gateway-rl'),
    OBSERVABILITY_URL: 'off',
    AGENTS_URL: 'off',
    DOCUMENTS_URL: 'off',
    BRIDGE_URL: 'off',
    SHUTDOWN_TIMEOUT_MS: '5000',
    ...env,
  });
}

export interface TestGateway extends RunningGateway {
  redis: Redis;
  stop: () => Promise<void>;
}

export async function startTestGateway(env: Record<string, string>, redis?: Redis): Promise<TestGateway> {
  const config = gatewayConfig(env);
  const own = !redis;
  const r = redis ?? new Redis(config.REDIS_URL, { maxRetriesPerRequest: 1 });
  if (own) await r.ping();
  let quit = false;
  const gw = await startGateway({ config, logger, redis: r }, 0, '127.0.0.1');
  return {
    ...gw,
    redis: r,
    stop: async () => {
      await gw.shutdown.run();
      if (own && !quit) {
        quit = true;
        await r.quit();
      }
    },
  };
}

export const token = (sub: string, claims: Record<string, unknown> = {}, expiresIn: string | number = '1h') =>
  signToken(SECRET, { sub, apps: ['demo-app'], ...claims }, { expiresIn });

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Express } from 'express';
import { WebSocketServer } from 'ws';
import { createLogger, DEV_JWT_SECRET, signToken, whenReady } from '@tessera/kit';
import { testPrefix, TEST_REDIS_URL } from '@tessera/kit/testing';
import { loadGatewayConfig, type GatewayConfig } from '../src/config';
import { startGatewayServer, type RunningGateway } from '../src/server';

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
    PORT: '0',
    HOST: '127.0.0.1',
    ...env,
  });
}

export interface TestGateway extends RunningGateway {
  stop: () => Promise<void>;
}

/**
 * The gateway as main.ts starts it. Its Redis is waited for (until then the limiter lets requests
 * through uncounted) unless `redisAway`: a test of a gateway whose Redis is not there.
 */
export async function startTestGateway(env: Record<string, string>, opts: { redisAway?: boolean } = {}): Promise<TestGateway> {
  const gw = await startGatewayServer(gatewayConfig(env), logger);
  if (!opts.redisAway) await whenReady(gw.s.redis);
  return { ...gw, stop: () => gw.shutdown.run() };
}

export const token = (sub: string, claims: Record<string, unknown> = {}, expiresIn: string | number = '1h') =>
  signToken(SECRET, { sub, apps: ['demo-app'], ...claims }, { expiresIn });

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Express } from 'express';
import { createLogger, DEV_JWT_SECRET, signToken } from '@tessera/kit';
import { TEST_REDIS_URL } from '@tessera/kit/testing';
import { loadBrokerConfig } from '../src/config';
import { startBrokerServer, type RunningBroker } from '../src/server';

export const SECRET = DEV_JWT_SECRET;
export const SERVICE_KEY = 'broker-test-service-key-0123456789';
export const logger = createLogger('broker-test', process.env.TEST_LOG_LEVEL ?? 'silent');

export async function serve(app: Express): Promise<{ url: string; server: Server; close: () => Promise<void> }> {
  const server = createServer(app);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    server,
    close: async () => {
      if (!server.listening) return;
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

export interface TestBroker extends RunningBroker {
  stop: () => Promise<void>;
}

export async function startTestBroker(env: Record<string, string>): Promise<TestBroker> {
  const config = loadBrokerConfig({
    NODE_ENV: 'test',
    LOG_LEVEL: 'silent',
    REDIS_URL: TEST_REDIS_URL,
    JWT_SECRET: SECRET,
    SERVICE_KEY,
    PUBLIC_WS_URL: 'ws://gateway.test:8080',
    PORT: '0',
    HOST: '127.0.0.1',
    ...env,
  });
  const broker = await startBrokerServer(config, logger);
  return { ...broker, stop: () => broker.shutdown.run() };
}

export const token = (sub: string, claims: Record<string, unknown> = {}, expiresIn: string | number = '1h') =>
  signToken(SECRET, { sub, apps: ['demo-app'], ...claims }, { expiresIn });

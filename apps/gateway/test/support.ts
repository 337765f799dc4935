import { createServer, request as httpRequest, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Express } from 'express';
import { Redis } from 'ioredis';
import WebSocket, { WebSocketServer } from 'ws';
import { createLogger, DEV_JWT_SECRET, signToken } from '@tessera/kit';
import { testPrefix, TEST_REDIS_URL } from '@tessera/kit/testing';
import { loadGatewayConfig, type GatewayConfig } from '../src/config';
import { startGateway, type RunningGateway } from '../src/app';

export const SECRET = DEV_JWT_SECRET;
export const logger = createLogger('gateway-test', process.env.TEST_LOG_LEVEL ?? 'silent');

/** A port nothing listens on (bound, then released). */
export async function closedPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/** A stand-in service: an express app and a WebSocket server on one port. */
export interface StandIn {
  url: string;
  port: number;
  server: Server;
  wss: WebSocketServer;
  close: () => Promise<void>;
}

export async function startStandIn(app: Express, onWs?: (wss: WebSocketServer) => void): Promise<StandIn> {
  const server = createServer(app);
  const wss = new WebSocketServer({ server });
  onWs?.(wss);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
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

export interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  text: string;
  json: any;
  ms: number;
}

/** One HTTP request on a fresh connection (no pooled sockets left behind). */
export function request(
  base: string,
  path: string,
  opts: { method?: string; headers?: Record<string, string>; body?: string | Buffer } = {},
): Promise<Reply> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const u = new URL(base);
    const req = httpRequest(
      { hostname: u.hostname, port: u.port, path, method: opts.method ?? 'GET', headers: opts.headers, agent: false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let json: any;
          try {
            json = JSON.parse(text);
          } catch {
            json = undefined;
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json, ms: performance.now() - t0 });
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(opts.body);
  });
}

export interface Envelope {
  type: string;
  data: any;
  timestamp: string;
  index?: number;
}

/** A chat socket client that records every envelope and lets a test wait for one. */
export class ChatClient {
  readonly messages: Envelope[] = [];
  readonly closed: Promise<{ code: number; reason: string }>;
  private waiters: { pred: (m: Envelope) => boolean; resolve: (m: Envelope) => void }[] = [];

  private constructor(readonly ws: WebSocket) {
    this.closed = new Promise((r) => ws.once('close', (code, reason) => r({ code, reason: reason.toString() })));
    ws.on('message', (d) => {
      const m = JSON.parse(d.toString()) as Envelope;
      this.messages.push(m);
      this.waiters = this.waiters.filter((w) => (w.pred(m) ? (w.resolve(m), false) : true));
    });
  }

  /** Opens; a refused handshake rejects with its HTTP status. */
  static connect(url: string, opts: WebSocket.ClientOptions = {}): Promise<ChatClient> {
    const ws = new WebSocket(url, opts);
    const client = new ChatClient(ws);
    return new Promise((resolve, reject) => {
      ws.once('open', () => resolve(client));
      ws.once('unexpected-response', (_req, res) => {
        res.resume();
        reject(Object.assign(new Error(`HTTP ${res.statusCode}`), { status: res.statusCode }));
      });
      ws.once('error', reject);
    });
  }

  send(m: unknown): void {
    this.ws.send(JSON.stringify(m));
  }

  waitFor(pred: (m: Envelope) => boolean, timeoutMs = 10_000): Promise<Envelope> {
    const seen = this.messages.find(pred);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`timed out; got: ${this.messages.map((m) => m.type).join(', ')}`)), timeoutMs);
      this.waiters.push({
        pred,
        resolve: (m) => {
          clearTimeout(t);
          resolve(m);
        },
      });
    });
  }
}

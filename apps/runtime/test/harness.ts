/**
 * Test harness: a real runtime (HTTP + WebSocket) on port 0 against real Redis and a fresh
 * PostgreSQL schema, with its turn worker in the same process or in a child process.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { resolve } from 'node:path';
import WebSocket from 'ws';
import { createLogger, DEV_JWT_SECRET, GracefulShutdown, listen, signToken } from '@tessera/kit';
import { freshSchema, TEST_REDIS_URL } from '@tessera/kit/testing';
import { createRuntimeApp } from '../src/app';
import { loadRuntimeConfig, type RuntimeConfig } from '../src/config';
import { createRuntimeServices, type RuntimeServices } from '../src/services';
import { startTurnWorker } from '../src/worker';
import { stopIdleChat } from '../src/turns/stop';

export const ROOT = resolve(__dirname, '../../..');
export const MIGRATIONS = resolve(__dirname, '../prisma/migrations');
export const SECRET = DEV_JWT_SECRET;
export const SERVICE_KEY = 'test-service-key-0123456789';

export interface Env {
  DATABASE_URL: string;
  BULL_PREFIX: string;
  dropSchema: () => Promise<void>;
}

/** A fresh schema and BullMQ prefix: what one test file owns. */
export async function testEnv(name: string): Promise<Env> {
  const { url, drop } = await freshSchema(MIGRATIONS, `rt_${name}`);
  return { DATABASE_URL: url, BULL_PREFIX: `test-${name}-${randomBytes(4).toString('hex')}`, dropSchema: drop };
}

export function configFor(env: Env, extra: Record<string, string> = {}): RuntimeConfig {
  return loadRuntimeConfig({
    NODE_ENV: 'test',
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
    REDIS_URL: TEST_REDIS_URL,
    DATABASE_URL: env.DATABASE_URL,
    BULL_PREFIX: env.BULL_PREFIX,
    JWT_SECRET: SECRET,
    SERVICE_KEY,
    OBSERVABILITY_EVENTS: 'false',
    PORT: '0',
    HOST: '127.0.0.1',
    ...extra,
  });
}

export interface RuntimeInstance {
  url: string;
  wsUrl: string;
  s: RuntimeServices;
  worker: Awaited<ReturnType<typeof startTurnWorker>> | null;
  close(): Promise<void>;
}

/** An HTTP/WS runtime instance; with `worker: true` it also runs turns in-process. */
export async function startRuntime(env: Env, opts: { worker?: boolean; extra?: Record<string, string> } = {}): Promise<RuntimeInstance> {
  const config = configFor(env, opts.extra);
  const logger = createLogger('runtime-test', config.LOG_LEVEL);
  const s = createRuntimeServices(config, logger, 'api');
  const shutdown = new GracefulShutdown(logger, 5_000);
  const { app, hub, attach } = createRuntimeApp(s, { isShuttingDown: () => shutdown.shuttingDown });
  const { server, url } = await listen(app, 0, '127.0.0.1');
  attach(server);
  await s.feed.onControl((m) => void stopIdleChat(s, m.session_id, m.reason).catch(() => undefined));
  const worker = opts.worker === false ? null : await startTurnWorker(s);
  shutdown
    .addServer('http', server)
    .add('ws', () => hub.close())
    .add('worker', () => worker?.close())
    .add('services', () => s.close());
  return { url, wsUrl: url.replace('http', 'ws'), s, worker, close: () => shutdown.run() };
}

/** A turn worker in its own process (`tsx apps/runtime/src/worker.ts`), as deployed. */
export function spawnWorker(env: Env, extra: Record<string, string> = {}): Promise<ChildProcess> {
  // node with tsx's loader (not the tsx CLI, which runs the script in a grandchild): a SIGKILL
  // then kills the worker itself, as a crash would.
  const child = spawn(process.execPath, ['--import', 'tsx', resolve(ROOT, 'apps/runtime/src/worker.ts')], {
    cwd: ROOT,
    env: {
      ...process.env,
      NODE_ENV: 'test',
      LOG_LEVEL: 'info',
      REDIS_URL: TEST_REDIS_URL,
      DATABASE_URL: env.DATABASE_URL,
      BULL_PREFIX: env.BULL_PREFIX,
      JWT_SECRET: SECRET,
      SERVICE_KEY,
      OBSERVABILITY_EVENTS: 'false',
      ...extra,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return new Promise((resolvePromise, reject) => {
    let out = '';
    const t = setTimeout(() => reject(new Error(`worker did not start:\n${out}`)), 20_000);
    const onData = (d: Buffer) => {
      out += d.toString();
      if (out.includes('runtime worker ready')) {
        clearTimeout(t);
        resolvePromise(child);
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(t);
      reject(new Error(`worker exited (${code}):\n${out}`));
    });
  });
}

export function token(sub: string, apps: string[] = ['app1'], extra: Record<string, unknown> = {}, expiresIn: string | number = '1h') {
  return signToken(SECRET, { sub, apps, ...extra }, { expiresIn });
}

export async function http(base: string, method: string, path: string, body?: unknown, tok?: string, headers: Record<string, string> = {}) {
  const res = await fetch(base + path, {
    method,
    headers: { ...(body !== undefined && { 'content-type': 'application/json' }), ...(tok && { authorization: `Bearer ${tok}` }), ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  let json: any;
  try {
    json = JSON.parse(text);
  } catch {
    json = text;
  }
  return { status: res.status, body: json };
}

export interface Envelope {
  type: string;
  data: any;
  timestamp: string;
  index?: number;
}

/** A plain WebSocket client that records every envelope and lets a test wait for one. */
export class TestClient {
  readonly messages: Envelope[] = [];
  readonly ws: WebSocket;
  closeCode: number | null = null;
  closeReason = '';
  private waiters: { pred: (m: Envelope) => boolean; from: number; resolve: (m: Envelope) => void }[] = [];
  readonly opened: Promise<void>;
  readonly closed: Promise<number>;

  constructor(url: string) {
    this.ws = new WebSocket(url);
    this.opened = new Promise((res, rej) => {
      this.ws.once('open', () => res());
      this.ws.once('error', rej);
    });
    this.closed = new Promise((res) =>
      this.ws.once('close', (code, reason) => {
        this.closeCode = code;
        this.closeReason = reason.toString();
        res(code);
      }),
    );
    this.ws.on('message', (d) => {
      const m = JSON.parse(d.toString()) as Envelope;
      this.messages.push(m);
      this.waiters = this.waiters.filter((w) => {
        if (w.pred(m)) {
          w.resolve(m);
          return false;
        }
        return true;
      });
    });
  }

  static async connect(url: string): Promise<TestClient> {
    const c = new TestClient(url);
    await c.opened;
    return c;
  }

  send(m: unknown) {
    this.ws.send(typeof m === 'string' ? m : JSON.stringify(m));
  }

  /** The next message (from now, or already received since `from`) matching the predicate. */
  waitFor(pred: (m: Envelope) => boolean, timeoutMs = 10_000, from = 0): Promise<Envelope> {
    const seen = this.messages.slice(from).find(pred);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolvePromise, reject) => {
      const t = setTimeout(() => reject(new Error(`timed out waiting; got: ${this.messages.map((m) => m.type).join(', ')}`)), timeoutMs);
      this.waiters.push({
        pred,
        from,
        resolve: (m) => {
          clearTimeout(t);
          resolvePromise(m);
        },
      });
    });
  }

  waitType(type: string, timeoutMs?: number, from?: number) {
    return this.waitFor((m) => m.type === type, timeoutMs, from);
  }

  timeline(): Envelope[] {
    return this.messages.filter((m) => m.index !== undefined);
  }

  close() {
    this.ws.close();
    return this.closed;
  }
}

export function wsUrl(base: string, wf: string, app: string, chat: string, user: string, tok?: string) {
  return `${base}/ws/${wf}/${app}/${chat}/${user}${tok ? `?access_token=${encodeURIComponent(tok)}` : ''}`;
}

/** Reconstruct the visible transcript from timeline envelopes: one line per finished message / event. */
export function transcript(events: Envelope[]): string[] {
  const byIndex = new Map<number, Envelope>();
  for (const e of events) if (e.index !== undefined) byIndex.set(e.index, e);
  const ordered = [...byIndex.values()].sort((a, b) => a.index! - b.index!);
  const texts = new Map<string, string>();
  const out: string[] = [];
  for (const e of ordered) {
    if (e.type === 'chat.text') {
      const prev = texts.get(e.data.message_id) ?? '';
      texts.set(e.data.message_id, prev + e.data.delta);
      if (e.data.done) out.push(`${e.data.role}:${e.data.agent}: ${texts.get(e.data.message_id)}`);
    } else if (e.type !== 'chat.usage_delta' && e.type !== 'chat.usage_summary') {
      out.push(`${e.type}`);
    }
  }
  return out;
}

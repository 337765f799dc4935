/**
 * Test harness: a real runtime (HTTP + WebSocket) on port 0 against real Redis and a fresh
 * PostgreSQL schema, with its turn worker in the same process or in a child process.
 */
import type { ChildProcess } from 'node:child_process';
import { resolve } from 'node:path';
import { createLogger, DEV_JWT_SECRET, signToken } from '@tessera/kit';
import { call, schemaAndQueues, spawnService, storageVars, type Envelope, type SchemaAndQueues, entryOf } from '@tessera/kit/testing';
import { loadRuntimeConfig, type RuntimeConfig } from '../src/config';
import type { RuntimeServices } from '../src/services';
import { startRuntimeServer } from '../src/server';
import { startTurnWorker } from '../src/turns/turn-worker';

export const ROOT = resolve(__dirname, '../../..');
export const MIGRATIONS = resolve(__dirname, '../prisma/migrations');
export const SECRET = DEV_JWT_SECRET;
export const SERVICE_KEY = 'test-service-key-0123456789';

export type Env = SchemaAndQueues;

/** A fresh schema and BullMQ prefix: what one test file owns. */
export const testEnv = (name: string): Promise<Env> => schemaAndQueues(MIGRATIONS, `rt_${name}`, `test-${name}`);

/** What every runtime process of a test file is configured with, in this process or a child. */
function runtimeVars(env: Env): Record<string, string> {
  return {
    ...storageVars(env),
    JWT_SECRET: SECRET,
    SERVICE_KEY,
    OBSERVABILITY_EVENTS: 'false',
    // Attachments in PostgreSQL: these tests run no document server (attachments*.test.ts do).
    DOCUMENTS_URL: 'off',
    // The timeline's tail in Redis, when the run asks for it (npm test's tail pass sets EVENT_TAIL=on).
    ...(process.env.EVENT_TAIL && { EVENT_TAIL: process.env.EVENT_TAIL }),
  };
}

export function configFor(env: Env, extra: Record<string, string> = {}): RuntimeConfig {
  return loadRuntimeConfig({ ...runtimeVars(env), LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent', PORT: '0', HOST: '127.0.0.1', ...extra });
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
  const config = configFor(env, { SHUTDOWN_TIMEOUT_MS: '5000', ...opts.extra });
  const rt = await startRuntimeServer(config, createLogger('runtime-test', config.LOG_LEVEL), { worker: opts.worker !== false });
  return { url: rt.url, wsUrl: rt.url.replace('http', 'ws'), s: rt.s, worker: rt.worker, close: () => rt.shutdown.run() };
}

/** A turn worker in its own process (`apps/runtime/src/worker.ts`), as deployed; SIGKILL it to crash it. */
export async function spawnWorker(env: Env, extra: Record<string, string> = {}): Promise<ChildProcess> {
  const worker = await spawnService({
    name: 'worker',
    entry: resolve(ROOT, entryOf('runtime-worker')),
    cwd: ROOT,
    // 'info': the ready line is an info log.
    env: { ...runtimeVars(env), LOG_LEVEL: 'info', ...extra },
    ready: { log: 'runtime worker ready' },
    timeoutMs: 20_000,
  });
  return worker.child;
}

export function token(sub: string, apps: string[] = ['app1'], extra: Record<string, unknown> = {}, expiresIn: string | number = '1h') {
  return signToken(SECRET, { sub, apps, ...extra }, { expiresIn });
}

/** A request with the parsed JSON (or else the text) as `body`. */
export async function http(base: string, method: string, path: string, body?: unknown, tok?: string, headers: Record<string, string> = {}) {
  const r = await call(base, method, path, { body, token: tok, headers });
  return { status: r.status, body: r.json === undefined ? r.text : r.json };
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

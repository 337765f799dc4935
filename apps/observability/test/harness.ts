/**
 * Test harness: a real observability service (HTTP + live socket + queue worker) on port 0
 * against real Redis and a fresh PostgreSQL schema, started by the same function main.ts uses.
 */
import { randomBytes } from 'node:crypto';
import { resolve } from 'node:path';
import { createLogger, DEV_JWT_SECRET, signToken } from '@tessera/kit';
import { call, schemaAndQueues, storageVars, type SchemaAndQueues } from '@tessera/kit/testing';
import { loadObservabilityConfig, type ObservabilityConfig } from '../src/config';
import { startObservabilityServer, type RunningObservability } from '../src/server';

export const ROOT = resolve(__dirname, '../../..');
export const MIGRATIONS = resolve(__dirname, '../prisma/migrations');
export const SECRET = DEV_JWT_SECRET;
export const SERVICE_KEY = 'test-service-key-0123456789';
export const KEY_APP1 = 'ingest-key-app1-0123456789';
export const KEY_APP2 = 'ingest-key-app2-0123456789';

export type Env = SchemaAndQueues;

/** A fresh schema and BullMQ prefix: what one test file owns. */
export const testEnv = (name: string): Promise<Env> => schemaAndQueues(MIGRATIONS, `obs_${name}`, `test-obs-${name}`);

/** What every observability process of a test file is configured with, here or in a child. */
export function serviceVars(env: Env): Record<string, string> {
  return { ...storageVars(env), JWT_SECRET: SECRET, SERVICE_KEY, INGEST_KEYS: `app1:${KEY_APP1},app2:${KEY_APP2}` };
}

export function configFor(env: Env, extra: Record<string, string> = {}): ObservabilityConfig {
  return loadObservabilityConfig({ ...serviceVars(env), LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent', PORT: '0', HOST: '127.0.0.1', SHUTDOWN_TIMEOUT_MS: '5000', ...extra });
}

export interface Instance {
  url: string;
  o: RunningObservability;
  close(): Promise<void>;
}

export async function startObservability(env: Env, extra: Record<string, string> = {}): Promise<Instance> {
  const config = configFor(env, extra);
  const o = await startObservabilityServer(config, createLogger('observability-test', config.LOG_LEVEL));
  return { url: o.url, o, close: () => o.shutdown.run() };
}

/** An operator of `apps` (roles claim holds "operator"). */
export function operator(apps: string[] | '*' = ['app1'], sub = 'op-1') {
  return signToken(SECRET, { sub, ...(apps !== '*' && { apps }), roles: ['operator'] }, { expiresIn: '1h' });
}

/** A signed-in end user: a valid token without the operator role. */
export function endUser(apps: string[] = ['app1']) {
  return signToken(SECRET, { sub: 'user-1', apps }, { expiresIn: '1h' });
}

export async function http(base: string, method: string, path: string, opts: { body?: unknown; token?: string; headers?: Record<string, string>; raw?: string } = {}) {
  const r = await call(base, method, path, opts);
  return { status: r.status, body: r.json === undefined ? r.text : r.json };
}

/** POST /events with an ingest key (app1's by default). */
export function ingest(base: string, body: unknown, key: string = KEY_APP1) {
  return http(base, 'POST', '/events', { body, headers: { 'x-ingest-key': key } });
}

export function asService(base: string, body: unknown) {
  return http(base, 'POST', '/events', { body, headers: { 'x-tessera-service-key': SERVICE_KEY } });
}

/**
 * One instance on a schema of its own for the tests of one file, with an operator token of app1
 * and app2: started before them (`use` receives them), closed and dropped after them.
 */
export function observabilityForThisFile(name: string, use: (obs: Instance, op: string) => void): void {
  let env: Env | undefined;
  let obs: Instance | undefined;
  beforeAll(async () => {
    env = await testEnv(name);
    obs = await startObservability(env);
    use(obs, await operator(['app1', 'app2']));
  });
  afterAll(async () => {
    await obs?.close();
    await env?.dropSchema();
  });
}

export const sid = (name: string) => `${name}-${randomBytes(4).toString('hex')}`;

/** Shared with every service's tests (kit/testing). */
export { until } from '@tessera/kit/testing';

/**
 * Test harness: real bridge instances (the function main.ts uses, or child processes) on real
 * Redis, each test file under its own key prefix and port range, with the real `opencode serve`
 * or a stand-in agent server.
 */
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Transform } from 'node:stream';
import winston from 'winston';
import { createLogger, DEV_JWT_SECRET, signToken, type Logger } from '@tessera/kit';
import { call, closedPort, deleteTestKeys, spawnService, TEST_REDIS_URL, TestSocket, type ServiceProcess, entryOf } from '@tessera/kit/testing';
import { loadBridgeConfig, type BridgeConfig } from '../src/config';
import { startBridgeServer, type RunningBridge } from '../src/server';

export const ROOT = resolve(__dirname, '../../..');
export const OPENCODE = resolve(ROOT, 'node_modules/.bin/opencode');
export const STAND_IN = { OPENCODE_COMMAND: process.execPath, OPENCODE_ARGS: `${resolve(__dirname, 'fixtures/stand-in-agent.mjs')} --hostname {host} --port {port}` };
export const SERVICE_KEY = 'test-service-key-0123456789';
export const APP = 'test-app';

/** A platform token as the gateway's clients hold one (the bridge checks it with the development secret). */
export function tokenOf(sub: string, opts: { apps?: string[]; roles?: string[]; secret?: string } = {}): Promise<string> {
  return signToken(opts.secret ?? DEV_JWT_SECRET, { sub, apps: opts.apps ?? [APP], ...(opts.roles && { roles: opts.roles }) });
}
let defaultUser: Promise<string> | undefined;
/** The user every bootstrap of a test is made by unless it says otherwise. */
export const userToken = () => (defaultUser ??= tokenOf('test-user'));
let defaultOperator: Promise<string> | undefined;
export const operatorToken = () => (defaultOperator ??= tokenOf('test-operator', { roles: ['operator'] }));

/** What every bridge of a test file is configured with, in this process or a child. */
export function serviceVars(prefix: string, basePort: number, extra: Record<string, string> = {}): Record<string, string> {
  return {
    NODE_ENV: 'test',
    REDIS_URL: TEST_REDIS_URL,
    SERVICE_KEY,
    BRIDGE_REDIS_PREFIX: prefix,
    OBSERVABILITY_URL: 'off',
    OPENCODE_COMMAND: OPENCODE,
    OPENCODE_BASE_PORT: String(basePort),
    OPENCODE_MAX_PORT: String(basePort + 19),
    OPENCODE_WORK_ROOT: join(tmpdir(), `bridge-test-${prefix.replace(/\W/g, '-')}`),
    // Quotas have their own test; elsewhere one test user starts many servers.
    OPENCODE_MAX_SERVERS_PER_USER: '100',
    OPENCODE_MAX_SERVERS_PER_APP: '100',
    ...extra,
  };
}

export function configFor(prefix: string, basePort: number, extra: Record<string, string> = {}): BridgeConfig {
  return loadBridgeConfig({ LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent', PORT: '0', HOST: '127.0.0.1', SHUTDOWN_TIMEOUT_MS: '8000', ...serviceVars(prefix, basePort, extra) });
}

export interface Instance {
  url: string;
  b: RunningBridge;
  close(): Promise<void>;
}

export async function startBridge(prefix: string, basePort: number, extra: Record<string, string> = {}, logger?: Logger): Promise<Instance> {
  const config = configFor(prefix, basePort, extra);
  const b = await startBridgeServer(config, logger ?? createLogger('bridge-test', config.LOG_LEVEL));
  return { url: b.url, b, close: () => b.shutdown.run() };
}

/** A logger whose every formatted line (JSON, as production writes it) is kept. */
export function capturingLogger(level = 'debug'): { logger: Logger; lines: string[] } {
  const lines: string[] = [];
  const sink = new Transform({
    objectMode: true,
    transform(info: Record<symbol | string, unknown>, _enc, cb) {
      lines.push(String(info[Symbol.for('message')]));
      cb();
    },
  });
  const logger = createLogger('bridge-test', level);
  logger.clear();
  logger.add(new winston.transports.Stream({ stream: sink, level }));
  return { logger, lines };
}

/** A bridge in its own process (`src/main.ts`), as deployed. */
export async function spawnBridge(prefix: string, basePort: number, extra: Record<string, string> = {}): Promise<ServiceProcess & { url: string }> {
  const port = await closedPort();
  const url = `http://127.0.0.1:${port}`;
  const p = await spawnService({
    name: 'bridge',
    entry: resolve(ROOT, entryOf('bridge')),
    cwd: ROOT,
    env: { ...serviceVars(prefix, basePort, extra), LOG_LEVEL: 'info', PORT: String(port), HOST: '127.0.0.1' },
    ready: { url: `${url}/health` },
    timeoutMs: 30_000,
  });
  return { ...p, url };
}

export async function http(base: string, method: string, path: string, opts: { body?: unknown; token?: string; headers?: Record<string, string> } = {}) {
  const r = await call(base, method, path, opts);
  return { status: r.status, body: r.json === undefined ? r.text : r.json, text: r.text };
}

export const pair = (name: string) => ({ scadaUrl: `https://scada-${name}.example.com/`, accessToken: `Bearer at-${name}-${Math.random().toString(36).slice(2, 10)}` });

/** Bootstraps as the test user (or with `token`, or with `headers` alone when token is null). */
export async function bootstrap(base: string, body: Record<string, unknown>, opts: { token?: string | null; headers?: Record<string, string> } = {}) {
  const token = opts.token === undefined ? await userToken() : (opts.token ?? undefined);
  return http(base, 'POST', '/api/session/bootstrap', { body, token, headers: opts.headers });
}

/** The servers list as an operator of the test app sees it. */
export async function servers(base: string) {
  return http(base, 'GET', '/api/session/servers', { token: await operatorToken() });
}

export function socketOf(base: string, sessionId: string, token?: string): TestSocket {
  const q = token ? `?sessionToken=${encodeURIComponent(token)}` : '';
  return new TestSocket(`${base.replace(/^http/, 'ws')}/api/session/${sessionId}/ws${q}`);
}

/** Whether a process runs (not a zombie), from /proc. */
export function running(pid: number): boolean {
  try {
    return !/^\S+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

/** Shared with every service's tests (kit/testing). */
export { until } from '@tessera/kit/testing';

export async function removeWorkRoot(prefix: string): Promise<void> {
  await rm(join(tmpdir(), `bridge-test-${prefix.replace(/\W/g, '-')}`), { recursive: true, force: true });
}

/** What a test file leaves: its Redis keys and its agent servers' work root. */
export async function forget(prefix: string): Promise<void> {
  await deleteTestKeys(`{${prefix}}:*`);
  await removeWorkRoot(prefix);
}

/** Every `/api/session/{id}/*` route, with a body it accepts. */
export const sessionRoutes = (id: string): [string, string, unknown?][] => [
  ['GET', `/api/session/${id}/info`],
  ['PUT', `/api/session/${id}/info`, { tenantId: 't' }],
  ['POST', `/api/session/${id}/events`, { type: 'x' }],
  ['POST', `/api/session/${id}/events/request`, { type: 'x', timeoutMs: 1000 }],
  ['GET', `/api/session/${id}/events/request/r1/status`],
  ['POST', `/api/session/${id}/events/request/r1/response`, { response: 1 }],
  ['DELETE', `/api/session/${id}`],
];

export { mkdtemp };

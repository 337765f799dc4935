/**
 * Real service processes for end-to-end tests: the runtime (HTTP+WS and its turn worker) on a
 * fresh PostgreSQL schema and its own BullMQ prefix, and the broker, each started the way
 * `npm start` does (`tsx apps/<app>/src/<entry>.ts`).
 */
import { randomBytes } from 'node:crypto';
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { closedPort, freshSchema, spawnService, TEST_REDIS_URL, testPrefix, type ServiceProcess, entryOf } from '@tessera/kit/testing';
import { SECRET, startTestGateway, type TestGateway } from './support';

export const ROOT = resolve(__dirname, '../../..');

/** A service process listening on a port of its own. */
export interface HttpService extends ServiceProcess {
  url: string;
  port: number;
}

/**
 * Starts a service entry (relative to the repository root) and waits until its /health answers.
 * Every service here runs in test mode on this port of 127.0.0.1, with the test Redis and the
 * tests' JWT secret, logging warnings; `env` adds to that or overrides it.
 */
export async function spawnHttpService(name: string, entry: string, env: Record<string, string>, port: number): Promise<HttpService> {
  const url = `http://127.0.0.1:${port}`;
  const common = { NODE_ENV: 'test', LOG_LEVEL: 'warn', REDIS_URL: TEST_REDIS_URL, JWT_SECRET: SECRET, HOST: '127.0.0.1', PORT: String(port) };
  const proc = await spawnService({ name, entry: join(ROOT, entry), cwd: ROOT, env: { ...common, ...env }, ready: { url: `${url}/health` } });
  return { ...proc, url, port };
}

/** The gateway in its own process, as `npm start` runs it: every upstream off unless `env` names it, its own rate-limit keys. */
export async function spawnGateway(env: Record<string, string>): Promise<HttpService> {
  const off = { RUNTIME_URL: 'off', BROKER_URL: 'off', OBSERVABILITY_URL: 'off', AGENTS_URL: 'off', DOCUMENTS_URL: 'off', BRIDGE_URL: 'off' };
  return spawnHttpService('gateway', entryOf('gateway'), { ...off, RATE_LIMIT_PREFIX: testPrefix('gateway-rl'), ...env }, await closedPort());
}

/** Observability in its own process on a fresh schema, consuming the runtime's events on `bullPrefix`; `stop` also drops the schema. */
export async function spawnObservability(name: string, bullPrefix: string, serviceKey: string): Promise<HttpService & { stop: () => Promise<void> }> {
  const [schema, port] = await Promise.all([freshSchema(join(ROOT, 'apps/observability/prisma/migrations'), name), closedPort()]);
  const obs = await spawnHttpService('observability', entryOf('observability'), { DATABASE_URL: schema.url, BULL_PREFIX: bullPrefix, SERVICE_KEY: serviceKey, SHUTDOWN_TIMEOUT_MS: '3000' }, port);
  return { ...obs, stop: () => obs.stop().finally(() => schema.drop()) };
}

export interface RuntimeStack {
  url: string;
  port: number;
  databaseUrl: string;
  schema: string;
  api: HttpService;
  worker: ServiceProcess;
  /** Starts one more API instance on the same database, Redis, queues and workflows (stopped with the rest). */
  anotherApi: (port?: number) => Promise<HttpService>;
  /** Stops every process and drops the schema. */
  stop: () => Promise<void>;
}

/**
 * The runtime with the example workflows plus this project's fixtures (`test/fixtures/workflows`),
 * copied into one WORKFLOWS_DIR.
 */
export async function startRuntime(
  env: { JWT_SECRET: string; SERVICE_KEY: string; LOG_LEVEL?: string; /** Added to both processes' env (e.g. OBSERVABILITY_EVENTS, BULL_PREFIX). */ extra?: Record<string, string> },
  wantPort?: number,
): Promise<RuntimeStack> {
  const [{ url: databaseUrl, schema, drop }, port] = await Promise.all([freshSchema(join(ROOT, 'apps/runtime/prisma/migrations'), 'gw'), wantPort ?? closedPort()]);
  const workflows = mkdtempSync(join(tmpdir(), 'tessera-workflows-'));
  cpSync(join(ROOT, 'apps/runtime/workflows'), workflows, { recursive: true });
  cpSync(join(__dirname, 'fixtures/workflows'), workflows, { recursive: true });
  const common = {
    NODE_ENV: 'test',
    LOG_LEVEL: env.LOG_LEVEL ?? 'warn',
    REDIS_URL: TEST_REDIS_URL,
    DATABASE_URL: databaseUrl,
    BULL_PREFIX: `test-gw-${randomBytes(4).toString('hex')}`,
    JWT_SECRET: env.JWT_SECRET,
    SERVICE_KEY: env.SERVICE_KEY,
    AUTH_ENABLED: 'true',
    OBSERVABILITY_EVENTS: 'false',
    // Attachments in PostgreSQL: these tests run no document server (attachments*.test.ts do).
    DOCUMENTS_URL: 'off',
    WORKFLOWS_DIR: workflows,
    HOST: '127.0.0.1',
    SHUTDOWN_TIMEOUT_MS: '3000',
    ...env.extra,
  };
  const started = await Promise.allSettled([
    spawnHttpService('runtime', entryOf('runtime'), { ...common, PORT: String(port) }, port),
    spawnService({ name: 'runtime-worker', entry: join(ROOT, entryOf('runtime-worker')), cwd: ROOT, env: { ...common, LOG_LEVEL: 'info' }, ready: { log: 'runtime worker ready' } }),
  ]);
  if (started.some((s) => s.status === 'rejected')) {
    await Promise.all(started.map((s) => (s.status === 'fulfilled' ? s.value.stop() : undefined)));
    rmSync(workflows, { recursive: true, force: true });
    await drop();
    throw (started.find((s) => s.status === 'rejected') as PromiseRejectedResult).reason;
  }
  const [api, worker] = started.map((s) => (s as PromiseFulfilledResult<ServiceProcess>).value) as [HttpService, ServiceProcess];
  const more: HttpService[] = [];
  return {
    url: api.url,
    port,
    databaseUrl,
    schema,
    api,
    worker,
    anotherApi: async (wantMore) => {
      const p = wantMore ?? (await closedPort());
      const instance = await spawnHttpService(`runtime-${more.length + 2}`, entryOf('runtime'), { ...common, PORT: String(p) }, p);
      more.push(instance);
      return instance;
    },
    stop: async () => {
      await Promise.all([api.stop(), worker.stop(), ...more.map((m) => m.stop())]);
      rmSync(workflows, { recursive: true, force: true });
      await drop();
    },
  };
}

export async function startBrokerProcess(env: Record<string, string>, port: number): Promise<HttpService> {
  return spawnHttpService('broker', entryOf('broker'), env, port);
}

/**
 * The runtime with a second API instance on the same database, Redis and queues, both behind one
 * test gateway: a request, a resubscribe or a reconnect may land on either. `name` names the
 * BullMQ prefix; `runtime` adds to both runtime processes' env, `gateway` to the gateway's.
 */
export interface TwoInstanceStack {
  runtime: RuntimeStack;
  second: HttpService;
  gw: TestGateway;
  /** Stops the gateway, then the runtime's processes. */
  stop: () => Promise<void>;
}

export async function startTwoInstanceStack(name: string, SERVICE_KEY: string, env: { runtime?: Record<string, string>; gateway?: Record<string, string> } = {}): Promise<TwoInstanceStack> {
  const runtime = await startRuntime({ JWT_SECRET: SECRET, SERVICE_KEY, extra: { BULL_PREFIX: `test-${name}-${randomBytes(4).toString('hex')}`, ...env.runtime } });
  try {
    const second = await runtime.anotherApi();
    const gw = await startTestGateway({ RUNTIME_URL: `${runtime.url}, ${second.url}`, BROKER_URL: 'off', ...env.gateway });
    return {
      runtime,
      second,
      gw,
      stop: async () => {
        await gw.stop();
        await runtime.stop();
      },
    };
  } catch (e) {
    await runtime.stop();
    throw e;
  }
}

/**
 * Real service processes for end-to-end tests: the runtime (HTTP+WS and its turn worker) on a
 * fresh PostgreSQL schema and its own BullMQ prefix, and the broker, each started the way
 * `npm start` does (`tsx apps/<app>/src/<entry>.ts`).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { freshSchema, TEST_REDIS_URL } from '@tessera/kit/testing';
import { closedPort, request } from './support';

export const ROOT = resolve(__dirname, '../../..');

export interface ServiceProcess {
  name: string;
  child: ChildProcess;
  url: string;
  port: number;
  /** What the process printed (for failure messages). */
  output: () => string;
  stop: () => Promise<void>;
}

export async function spawnService(name: string, entry: string, env: Record<string, string>, opts: { port?: number; readyLog?: string; timeoutMs?: number } = {}): Promise<ServiceProcess> {
  // node + tsx's loader, not the tsx CLI: a signal reaches the service itself, not a wrapper.
  const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, entry)], { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const onData = (d: Buffer) => {
    out = (out + d.toString()).slice(-20_000);
  };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const port = opts.port ?? 0;
  const proc: ServiceProcess = {
    name,
    child,
    port,
    url: `http://127.0.0.1:${port}`,
    output: () => out,
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 8_000);
      await exited;
      clearTimeout(t);
    },
  };
  const deadline = Date.now() + (opts.timeoutMs ?? 30_000);
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`${name} exited (${child.exitCode}):\n${out}`);
    if (opts.readyLog && out.includes(opts.readyLog)) return proc;
    if (!opts.readyLog && port) {
      const ok = await request(proc.url, '/health').then((r) => r.status === 200, () => false);
      if (ok) return proc;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  await proc.stop();
  throw new Error(`${name} did not start in time:\n${out}`);
}

export interface RuntimeStack {
  url: string;
  port: number;
  databaseUrl: string;
  schema: string;
  api: ServiceProcess;
  worker: ServiceProcess;
  /** Stops both processes and drops the schema. */
  stop: () => Promise<void>;
}

/**
 * The runtime with the example workflows plus this project's fixtures (`test/fixtures/workflows`),
 * copied into one WORKFLOWS_DIR.
 */
export async function startRuntime(env: { JWT_SECRET: string; SERVICE_KEY: string; LOG_LEVEL?: string }, wantPort?: number): Promise<RuntimeStack> {
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
    WORKFLOWS_DIR: workflows,
    HOST: '127.0.0.1',
    SHUTDOWN_TIMEOUT_MS: '3000',
  };
  const started = await Promise.allSettled([
    spawnService('runtime', 'apps/runtime/src/main.ts', { ...common, PORT: String(port) }, { port }),
    spawnService('runtime-worker', 'apps/runtime/src/worker.ts', { ...common, LOG_LEVEL: 'info' }, { readyLog: 'runtime worker ready' }),
  ]);
  if (started.some((s) => s.status === 'rejected')) {
    await Promise.all(started.map((s) => (s.status === 'fulfilled' ? s.value.stop() : undefined)));
    rmSync(workflows, { recursive: true, force: true });
    await drop();
    throw (started.find((s) => s.status === 'rejected') as PromiseRejectedResult).reason;
  }
  const [api, worker] = started.map((s) => (s as PromiseFulfilledResult<ServiceProcess>).value);
  return {
    url: api.url,
    port,
    databaseUrl,
    schema,
    api,
    worker,
    stop: async () => {
      await Promise.all([api.stop(), worker.stop()]);
      rmSync(workflows, { recursive: true, force: true });
      await drop();
    },
  };
}

export async function startBrokerProcess(env: Record<string, string>, port: number): Promise<ServiceProcess> {
  return spawnService('broker', 'apps/broker/src/main.ts', { NODE_ENV: 'test', LOG_LEVEL: 'warn', REDIS_URL: TEST_REDIS_URL, HOST: '127.0.0.1', PORT: String(port), ...env }, { port });
}

/**
 * The real runtime as child processes (HTTP+WS and its turn worker, `tsx apps/runtime/src/…`),
 * on a fresh PostgreSQL schema and BullMQ prefix of its own.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join, resolve } from 'node:path';
import { freshSchema, TEST_REDIS_URL } from '@tessera/kit/testing';
import { call, closedPort } from './support';

const ROOT = resolve(__dirname, '../../..');

function start(entry: string, env: Record<string, string>, ready: () => Promise<boolean> | boolean, log: { out: string }): Promise<ChildProcess> {
  // node + tsx's loader, not the tsx CLI: a signal reaches the service itself, not a wrapper.
  const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, entry)], { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const collect = (d: Buffer) => (log.out = (log.out + d.toString()).slice(-20_000));
  child.stdout!.on('data', collect);
  child.stderr!.on('data', collect);
  return (async () => {
    const until = Date.now() + 30_000;
    while (Date.now() < until) {
      if (child.exitCode !== null) throw new Error(`${entry} exited (${child.exitCode}):\n${log.out}`);
      if (await ready()) return child;
      await new Promise((r) => setTimeout(r, 100));
    }
    child.kill('SIGKILL');
    throw new Error(`${entry} did not start:\n${log.out}`);
  })();
}

function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((r) => {
    const t = setTimeout(() => child.kill('SIGKILL'), 8_000);
    child.once('exit', () => {
      clearTimeout(t);
      r();
    });
    child.kill('SIGTERM');
  });
}

export interface RuntimeProcesses {
  url: string;
  databaseUrl: string;
  schema: string;
  stopApi: () => Promise<void>;
  stop: () => Promise<void>;
}

export async function startRuntime(env: { JWT_SECRET: string; SERVICE_KEY: string }): Promise<RuntimeProcesses> {
  const [{ url: databaseUrl, schema, drop }, port] = await Promise.all([freshSchema(join(ROOT, 'apps/runtime/prisma/migrations'), 'br'), closedPort()]);
  const common = {
    NODE_ENV: 'test',
    LOG_LEVEL: 'warn',
    REDIS_URL: TEST_REDIS_URL,
    DATABASE_URL: databaseUrl,
    BULL_PREFIX: `test-br-${randomBytes(4).toString('hex')}`,
    JWT_SECRET: env.JWT_SECRET,
    SERVICE_KEY: env.SERVICE_KEY,
    OBSERVABILITY_EVENTS: 'false',
    HOST: '127.0.0.1',
  };
  const url = `http://127.0.0.1:${port}`;
  const apiLog = { out: '' };
  const workerLog = { out: '' };
  const started = await Promise.allSettled([
    start('apps/runtime/src/main.ts', { ...common, PORT: String(port) }, () => call(url, 'GET', '/health').then((r) => r.status === 200, () => false), apiLog),
    start('apps/runtime/src/worker.ts', { ...common, LOG_LEVEL: 'info' }, () => workerLog.out.includes('runtime worker ready'), workerLog),
  ]);
  const children = started.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
  if (children.length < 2) {
    await Promise.all(children.map(stop));
    await drop();
    throw (started.find((s) => s.status === 'rejected') as PromiseRejectedResult).reason;
  }
  const [api, worker] = children;
  return {
    url,
    databaseUrl,
    schema,
    stopApi: () => stop(api),
    stop: async () => {
      await Promise.all([stop(api), stop(worker)]);
      await drop();
    },
  };
}

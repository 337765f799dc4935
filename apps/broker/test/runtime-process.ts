/**
 * The real runtime as child processes (HTTP+WS and its turn worker, `tsx apps/runtime/src/…`),
 * on a fresh PostgreSQL schema and BullMQ prefix of its own.
 */
import { randomBytes } from 'node:crypto';
import { join, resolve } from 'node:path';
import { closedPort, freshSchema, spawnService, TEST_REDIS_URL, entryOf } from '@tessera/kit/testing';

const ROOT = resolve(__dirname, '../../..');

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
    // Attachments in PostgreSQL: these tests run no document server (attachments*.test.ts do).
    DOCUMENTS_URL: 'off',
    HOST: '127.0.0.1',
  };
  const url = `http://127.0.0.1:${port}`;
  const started = await Promise.allSettled([
    spawnService({ name: 'runtime', entry: join(ROOT, entryOf('runtime')), cwd: ROOT, env: { ...common, PORT: String(port) }, ready: { url: `${url}/health` } }),
    spawnService({ name: 'runtime-worker', entry: join(ROOT, entryOf('runtime-worker')), cwd: ROOT, env: { ...common, LOG_LEVEL: 'info' }, ready: { log: 'runtime worker ready' } }),
  ]);
  const procs = started.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
  if (procs.length < 2) {
    await Promise.all(procs.map((p) => p.stop()));
    await drop();
    throw (started.find((s) => s.status === 'rejected') as PromiseRejectedResult).reason;
  }
  const [api, worker] = procs;
  return {
    url,
    databaseUrl,
    schema,
    stopApi: () => api.stop(),
    stop: async () => {
      await Promise.all([api.stop(), worker.stop()]);
      await drop();
    },
  };
}

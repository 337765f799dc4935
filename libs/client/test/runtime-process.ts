/**
 * The real runtime for these tests, in a child process the way `npm start` runs it (tsx, embedded
 * turn worker) on a fresh PostgreSQL schema and its own BullMQ prefix. A child process rather than
 * apps/runtime/test/harness.ts: the client lib may not import an app, even from its tests.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { get } from 'node:http';
import { createServer, type AddressInfo } from 'node:net';
import { join, resolve } from 'node:path';
import pg from 'pg';

const ROOT = resolve(__dirname, '../../..');
const DATABASE_URL = process.env.DATABASE_URL ?? 'postgresql://tessera:tessera@127.0.0.1:5432/tessera';
export const JWT_SECRET = 'client-test-secret-0123456789abcdef0123456789';

export interface RuntimeProcess {
  url: string;
  wsUrl: string;
  /**
   * Kills the process (SIGKILL: a crash; SIGTERM: a deploy), runs `whileDown`, and starts a new one
   * on the same port, database and queue.
   */
  restart(signal?: NodeJS.Signals, whileDown?: () => unknown): Promise<void>;
  stop(): Promise<void>;
}

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

async function withPg<T>(fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: DATABASE_URL });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

/** node:http rather than fetch: jsdom test environments have no global fetch. */
function healthy(url: string): Promise<boolean> {
  return new Promise((resolve) => {
    get(url, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    }).on('error', () => resolve(false));
  });
}

export async function startRuntimeProcess(): Promise<RuntimeProcess> {
  const schema = `client_${randomBytes(5).toString('hex')}`;
  const migrations = join(ROOT, 'apps/runtime/prisma/migrations');
  await withPg(async (c) => {
    await c.query(`CREATE SCHEMA "${schema}"`);
    await c.query(`SET search_path TO "${schema}"`);
    for (const dir of readdirSync(migrations).filter((d) => /^\d/.test(d)).sort()) {
      await c.query(readFileSync(join(migrations, dir, 'migration.sql'), 'utf8'));
    }
  });
  const dbUrl = new URL(DATABASE_URL);
  dbUrl.searchParams.set('schema', schema);
  const port = await freePort();
  const env = {
    ...process.env,
    NODE_ENV: 'test',
    LOG_LEVEL: 'warn',
    PORT: String(port),
    HOST: '127.0.0.1',
    REDIS_URL: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379',
    DATABASE_URL: dbUrl.toString(),
    BULL_PREFIX: `test-client-${randomBytes(4).toString('hex')}`,
    JWT_SECRET,
    SERVICE_KEY: 'client-test-service-key-0123456789',
    AUTH_ENABLED: 'true',
    EMBEDDED_WORKER: 'true',
    OBSERVABILITY_EVENTS: 'false',
    DOCUMENTS_URL: 'off',
    SHUTDOWN_TIMEOUT_MS: '3000',
  };
  const url = `http://127.0.0.1:${port}`;
  // Node with tsx's loader rather than the tsx CLI, whose grandchild would outlive a SIGKILL.
  const spawnChild = () => spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'apps/runtime/src/main.ts')], { cwd: ROOT, env, stdio: ['ignore', 'inherit', 'inherit'] });
  let child: ChildProcess = spawnChild();

  const kill = async (signal: NodeJS.Signals) => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill(signal);
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([exited, new Promise((r) => (timer = setTimeout(r, 8000)))]);
    clearTimeout(timer);
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await exited;
    }
  };
  const stop = async () => {
    await kill('SIGTERM');
    await withPg((c) => c.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`));
  };
  const serving = async () => {
    const deadline = Date.now() + 40_000;
    for (;;) {
      if (child.exitCode !== null) {
        await stop();
        throw new Error(`runtime exited with ${child.exitCode} before it served`);
      }
      if (await healthy(`${url}/health`)) return;
      if (Date.now() > deadline) {
        await stop();
        throw new Error('runtime did not serve /health within 40 s');
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  await serving();
  const restart = async (signal: NodeJS.Signals = 'SIGKILL', whileDown?: () => unknown) => {
    await kill(signal);
    await whileDown?.();
    child = spawnChild();
    await serving();
  };
  return { url, wsUrl: url.replace('http', 'ws'), restart, stop };
}

/**
 * The real runtime for these tests, run the way `npm start` runs it (tools/scripts/services.ts):
 * an API process (apps/runtime/src/main.ts, HTTP and sockets, no embedded worker) and a separate
 * turn worker (apps/runtime/src/worker.ts), both `node --import tsx`, on one fresh PostgreSQL
 * schema and one BullMQ prefix. Workflows: the runtime's own plus the client tests' (./workflows).
 * Child processes rather than apps/runtime/test/harness.ts or @tessera/kit/testing: the client
 * lib may depend on the contracts alone, even from its tests.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { get } from 'node:http';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import pg from 'pg';

const ROOT = resolve(__dirname, '../../..');
/** This checkout's Redis / PostgreSQL when the environment names none: with the password `npm test` generated into .data/secrets/. */
function localUrl(url: string, secret: string): string {
  try {
    const u = new URL(url);
    u.password = readFileSync(join(ROOT, '.data/secrets', `${secret}.password`), 'utf8').trim();
    return u.toString();
  } catch {
    return url;
  }
}
const DATABASE_URL = process.env.DATABASE_URL || localUrl('postgresql://tessera@127.0.0.1:5432/tessera', 'postgres');
const REDIS_URL = process.env.REDIS_URL || localUrl('redis://127.0.0.1:6379', 'redis');
export const JWT_SECRET = 'client-test-secret-0123456789abcdef0123456789';
const START_MS = 60_000;

export interface RuntimeProcess {
  url: string;
  wsUrl: string;
  /**
   * Kills the API process (SIGKILL: a crash; SIGTERM: a deploy), runs `whileDown`, and starts a new
   * one on the same port, database and queue. The turn worker runs on throughout: a turn streaming
   * at the kill goes on being written. The signal is sent before the first await, so a caller in
   * an event listener kills the API at that very event.
   */
  restart(signal?: NodeJS.Signals, whileDown?: () => unknown): Promise<void>;
  stop(): Promise<void>;
  /** With `{ databaseRelay: true }`: takes PostgreSQL out of the API process's reach (every connection cut, the port closed) and brings it back. */
  database?: { down(): Promise<void>; up(): Promise<void> };
}

export interface RuntimeOptions {
  /** The API process reaches PostgreSQL through a TCP relay in this process, which the test can take down (the worker reaches it straight). */
  databaseRelay?: boolean;
}

/** A TCP relay to `target` that can be taken down (connections cut, port closed) and brought back on the same port. */
async function tcpRelay(target: URL) {
  const sockets = new Set<Socket>();
  let server: Server | null = null;
  let port = 0;
  const up = async () => {
    const s = createServer((client) => {
      const upstream = connect(Number(target.port || 5432), target.hostname);
      for (const end of [client, upstream]) {
        sockets.add(end);
        end.on('error', () => undefined);
        end.on('close', () => sockets.delete(end));
      }
      client.pipe(upstream).pipe(client);
    });
    await new Promise<void>((r) => s.listen(port, '127.0.0.1', () => r()));
    port = (s.address() as AddressInfo).port;
    server = s;
  };
  const down = async () => {
    const s = server;
    server = null;
    for (const end of sockets) end.destroy();
    if (s) await new Promise<void>((r) => s.close(() => r()));
  };
  await up();
  return { port, up, down };
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

/** One of the runtime's processes: started, awaited until ready, killed. */
class Child {
  private proc: ChildProcess | null = null;
  /** The end of its stdout (info logs, not shown): quoted when it fails to start. */
  private out = '';

  constructor(
    private readonly name: string,
    private readonly entry: string,
    private readonly env: NodeJS.ProcessEnv,
    private readonly ready: () => Promise<boolean>,
  ) {}

  async start(): Promise<void> {
    this.out = '';
    // Node with tsx's loader rather than the tsx CLI, whose grandchild would outlive a SIGKILL.
    // Warnings and errors (stderr) show in the test's output; info lines are only kept.
    const p = spawn(process.execPath, ['--import', 'tsx', join(ROOT, this.entry)], { cwd: ROOT, env: this.env, stdio: ['ignore', 'pipe', 'inherit'] });
    p.stdout!.on('data', (d: Buffer) => (this.out = (this.out + d.toString()).slice(-8_000)));
    this.proc = p;
    const deadline = Date.now() + START_MS;
    for (;;) {
      if (p.exitCode !== null || p.signalCode !== null) throw new Error(`${this.name} exited (${p.exitCode ?? p.signalCode}) before it was ready:\n${this.out}`);
      if (await this.ready()) return;
      if (Date.now() > deadline) throw new Error(`${this.name} was not ready within ${START_MS / 1000} s:\n${this.out}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  logged(line: string): boolean {
    return this.out.includes(line);
  }

  /** Sends `signal` at once (before any await); SIGKILL follows when the process takes more than 8 s. */
  async kill(signal: NodeJS.Signals): Promise<void> {
    const p = this.proc;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    const exited = new Promise((r) => p.once('exit', r));
    p.kill(signal);
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([exited, new Promise((r) => (timer = setTimeout(r, 8000)))]);
    clearTimeout(timer);
    if (p.exitCode === null && p.signalCode === null) {
      p.kill('SIGKILL');
      await exited;
    }
  }
}

/** The runtime of one test file: started before its tests (`use` receives it), stopped after them. */
export function runtimeForThisFile(use: (rt: RuntimeProcess) => void, opts: RuntimeOptions = {}): void {
  let rt: RuntimeProcess | undefined;
  beforeAll(async () => {
    rt = await startRuntimeProcess(opts);
    use(rt);
  });
  afterAll(async () => {
    await rt?.stop();
  });
}

export async function startRuntimeProcess(opts: RuntimeOptions = {}): Promise<RuntimeProcess> {
  const schema = `client_${randomBytes(5).toString('hex')}`;
  const migrations = join(ROOT, 'apps/runtime/prisma/migrations');
  await withPg(async (c) => {
    await c.query(`CREATE SCHEMA "${schema}"`);
    await c.query(`SET search_path TO "${schema}"`);
    for (const dir of readdirSync(migrations).filter((d) => /^\d/.test(d)).sort()) {
      await c.query(readFileSync(join(migrations, dir, 'migration.sql'), 'utf8'));
    }
  });
  // One folder of workflows (the runtime reads one): copies, so both processes load the same files.
  const workflows = mkdtempSync(join(tmpdir(), 'tessera-client-workflows-'));
  cpSync(join(ROOT, 'apps/runtime/workflows'), workflows, { recursive: true });
  cpSync(join(__dirname, 'workflows'), workflows, { recursive: true });

  const dbUrl = new URL(DATABASE_URL);
  dbUrl.searchParams.set('schema', schema);
  const relay = opts.databaseRelay ? await tcpRelay(dbUrl) : null;
  const apiDbUrl = new URL(dbUrl.href);
  if (relay) {
    apiDbUrl.hostname = '127.0.0.1';
    apiDbUrl.port = String(relay.port);
  }
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const common = {
    ...process.env,
    NODE_ENV: 'test',
    LOG_LEVEL: 'warn',
    REDIS_URL,
    DATABASE_URL: dbUrl.toString(),
    BULL_PREFIX: `test-client-${randomBytes(4).toString('hex')}`,
    WORKFLOWS_DIR: workflows,
    JWT_SECRET,
    SERVICE_KEY: 'client-test-service-key-0123456789',
    AUTH_ENABLED: 'true',
    OBSERVABILITY_EVENTS: 'false',
    DOCUMENTS_URL: 'off',
    AGENTS_URL: 'off',
    SHUTDOWN_TIMEOUT_MS: '3000',
  };
  // EMBEDDED_WORKER=false (as `npm start` runs it): turns run in the worker process only.
  const api = new Child('runtime', 'apps/runtime/src/main.ts', { ...common, DATABASE_URL: apiDbUrl.toString(), EMBEDDED_WORKER: 'false', PORT: String(port), HOST: '127.0.0.1' }, () => healthy(`${url}/health`));
  // Info level: its "ready" line is how the test knows it consumes the queue (it serves no HTTP).
  const worker: Child = new Child('runtime-worker', 'apps/runtime/src/worker.ts', { ...common, LOG_LEVEL: 'info' }, async () => worker.logged('runtime worker ready'));

  const cleanUp = async () => {
    await Promise.all([api.kill('SIGTERM'), worker.kill('SIGTERM')]);
    await relay?.down();
    await withPg((c) => c.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`));
    rmSync(workflows, { recursive: true, force: true });
  };
  const started = await Promise.allSettled([api.start(), worker.start()]);
  const failed = started.find((s) => s.status === 'rejected');
  if (failed) {
    await cleanUp();
    throw failed.reason;
  }
  const restart = async (signal: NodeJS.Signals = 'SIGKILL', whileDown?: () => unknown) => {
    await api.kill(signal);
    await whileDown?.();
    await api.start();
  };
  return { url, wsUrl: url.replace('http', 'ws'), restart, stop: cleanUp, ...(relay && { database: { up: relay.up, down: relay.down } }) };
}

/**
 * Test plumbing shared by the services' integration tests: real Redis and PostgreSQL, free
 * ports, an HTTP client, service child processes, a chat socket client. Imported as
 * `@tessera/kit/testing` and kept out of the kit's index, so production code never loads it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, existsSync } from 'node:fs';
import { createServer, request as httpRequest, type Agent, type ClientRequest, type IncomingHttpHeaders, type IncomingMessage, type OutgoingHttpHeaders } from 'node:http';
import { connect, createServer as createTcpServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import pg from 'pg';
import WebSocket from 'ws';
import { pgConnectionString } from './db';
import { createLogger } from './logger';
import { createRedis, primaries, whenReady } from './redis';
export { DEMO_PRICE_OVERRIDES, entryOf, SERVICES } from './stack';

/**
 * A URL of this checkout's Redis or PostgreSQL with its password, which `npm start` / `npm test` /
 * `npm run infra` generate into .data/secrets/ (tools/scripts/lib.sh): a test or benchmark run on
 * its own, without REDIS_URL / DATABASE_URL, reaches the servers they started.
 */
export function localUrl(url: string, secret: 'redis' | 'postgres'): string {
  let password: string;
  try {
    password = readFileSync(join(__dirname, '../../../.data/secrets', `${secret}.password`), 'utf8').trim();
  } catch {
    return url;
  }
  const u = new URL(url);
  u.password = password;
  return u.toString();
}

/** Where tests find Redis and PostgreSQL (`npm test` makes sure both run and passes their URLs). */
export const TEST_REDIS_URL = process.env.REDIS_URL || localUrl('redis://127.0.0.1:6379', 'redis');
export const TEST_DATABASE_URL = process.env.DATABASE_URL || localUrl('postgresql://tessera@127.0.0.1:5432/tessera', 'postgres');

/**
 * A fresh PostgreSQL schema for one test file with the service's migrations applied, the same
 * SQL files `prisma migrate deploy` applies. Returns a DATABASE_URL naming it and a drop().
 */
export async function freshSchema(migrationsDir: string, prefix = 't'): Promise<{ url: string; schema: string; drop: () => Promise<void> }> {
  const schema = `${prefix}_${randomBytes(5).toString('hex')}`;
  const client = new pg.Client({ connectionString: pgConnectionString(TEST_DATABASE_URL) });
  await client.connect();
  try {
    await client.query(`CREATE SCHEMA "${schema}"`);
    await client.query(`SET search_path TO "${schema}"`);
    if (existsSync(migrationsDir)) {
      for (const dir of readdirSync(migrationsDir).filter((d) => /^\d/.test(d)).sort()) {
        await client.query(readFileSync(join(migrationsDir, dir, 'migration.sql'), 'utf8'));
      }
    }
  } finally {
    await client.end();
  }
  const u = new URL(TEST_DATABASE_URL);
  u.searchParams.set('schema', schema);
  return {
    url: u.toString(),
    schema,
    drop: async () => {
      const c = new pg.Client({ connectionString: pgConnectionString(TEST_DATABASE_URL) });
      await c.connect();
      await c.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`).finally(() => c.end());
    },
  };
}

/** What one test file of a service with a database and queues owns: a fresh schema and a BullMQ prefix. */
export interface SchemaAndQueues {
  DATABASE_URL: string;
  BULL_PREFIX: string;
  dropSchema: () => Promise<void>;
}

/** A fresh schema with the service's migrations (`schemaPrefix_…`) and a BullMQ prefix (`bullPrefix-…`) of one test file. */
export async function schemaAndQueues(migrationsDir: string, schemaPrefix: string, bullPrefix: string): Promise<SchemaAndQueues> {
  const { url, drop } = await freshSchema(migrationsDir, schemaPrefix);
  return { DATABASE_URL: url, BULL_PREFIX: `${bullPrefix}-${randomBytes(4).toString('hex')}`, dropSchema: drop };
}

/** What a service of a test file, in the test process or a child, is pointed at: test mode, the test Redis, its schema and queues. */
export function storageVars(env: SchemaAndQueues): Record<string, string> {
  return { NODE_ENV: 'test', REDIS_URL: TEST_REDIS_URL, DATABASE_URL: env.DATABASE_URL, BULL_PREFIX: env.BULL_PREFIX };
}

/** A Redis key prefix unique to one test file, so parallel test files never share keys. */
export function testPrefix(name: string): string {
  return `test:${name}:${randomBytes(4).toString('hex')}`;
}

/** A port nothing listens on (bound, then released): a service that is down. */
export async function closedPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/* eslint-disable @typescript-eslint/no-explicit-any -- tests index the JSON they get back freely */
export interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  text: string;
  /** The body parsed as JSON, undefined when it is not JSON. */
  json: any;
  ms: number;
}

export interface CallOptions {
  /** Sent as `Authorization: Bearer <token>`. */
  token?: string;
  /** A value sent as JSON, with its content-type and length. */
  body?: unknown;
  /** Bytes sent exactly as given, no content-type added (for limits, uploads, malformed bodies). */
  raw?: string | Buffer;
  /** Added last, so they override the ones above. */
  headers?: Record<string, string>;
  /** A pool to send it through (a benchmark's keep-alive load); a fresh connection by default. */
  agent?: Agent;
  /** Fails the call when the connection is idle this long. */
  timeoutMs?: number;
}

/**
 * A request to `path` on the server of `base`, on a fresh connection unless `agent` is given (so
 * no pooled socket outlives a test), with `Authorization: Bearer <token>` when there is a token.
 */
export function openRequest(base: string, method: string, path: string, opts: { token?: string; headers?: OutgoingHttpHeaders; agent?: Agent } = {}): ClientRequest {
  const u = new URL(base);
  const headers = { ...(opts.token && { authorization: `Bearer ${opts.token}` }), ...opts.headers };
  return httpRequest({ hostname: u.hostname, port: u.port, path, method, agent: opts.agent ?? false, headers });
}

/** A response read to its end: status, headers, text, the text as JSON (undefined when it is not), ms since `t0`. */
export function readReply(res: IncomingMessage, t0: number): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    res.on('data', (c: Buffer) => chunks.push(c));
    res.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      let json: any;
      try {
        json = JSON.parse(text);
      } catch {
        json = undefined;
      }
      resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json, ms: performance.now() - t0 });
    });
    res.on('error', reject);
  });
}

/** One HTTP request, on a fresh connection unless `opts.agent` is given. */
export function call(base: string, method: string, path: string, opts: CallOptions = {}): Promise<Reply> {
  const t0 = performance.now();
  const payload = opts.raw ?? (opts.body === undefined ? undefined : Buffer.from(JSON.stringify(opts.body)));
  const headers = { ...(opts.raw === undefined && payload && { 'content-type': 'application/json', 'content-length': String(payload.length) }), ...opts.headers };
  return new Promise((resolve, reject) => {
    const req = openRequest(base, method, path, { token: opts.token, headers, agent: opts.agent });
    req.on('response', (res) => readReply(res, t0).then(resolve, reject));
    if (opts.timeoutMs !== undefined) req.setTimeout(opts.timeoutMs, () => req.destroy(new Error(`${method} ${base}${path} timed out`)));
    req.on('error', reject);
    req.end(payload);
  });
}

/** A chat envelope as a socket client receives it. */
export interface Envelope {
  type: string;
  data: any;
  timestamp: string;
  index?: number;
  /** Other protocols' messages (observability's `session`, `event`, …). */
  [field: string]: any;
}
/* eslint-enable @typescript-eslint/no-explicit-any */

/** A service running as a child process. */
export interface ServiceProcess {
  name: string;
  child: ChildProcess;
  /** The last of what the process printed, for failure messages. */
  output: () => string;
  /** Sends the signal and waits for the exit; SIGKILL follows if it takes more than 8 s. */
  stop: (signal?: NodeJS.Signals) => Promise<void>;
}

export interface SpawnOptions {
  name: string;
  /** The TypeScript entry, absolute or relative to `cwd`. */
  entry: string;
  /** Added to this process's environment. */
  env?: Record<string, string>;
  /** Where `tsx` and the workspace resolve from; the current directory by default. */
  cwd?: string;
  /** Started once this URL answers 200, or once the output holds this line. */
  ready: { url: string } | { log: string };
  timeoutMs?: number;
}

/**
 * Starts `node --import tsx <entry>` and resolves once it is ready. Node with tsx's loader, not
 * the tsx CLI: the CLI runs the script in a grandchild, so a signal (a crash test's SIGKILL)
 * would reach the wrapper and leave the service running.
 */
export async function spawnService(opts: SpawnOptions): Promise<ServiceProcess> {
  const { name, ready } = opts;
  const child = spawn(process.execPath, ['--import', 'tsx', opts.entry], { cwd: opts.cwd, env: { ...process.env, ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const collect = (d: Buffer) => (out = (out + d.toString()).slice(-20_000));
  child.stdout!.on('data', collect);
  child.stderr!.on('data', collect);
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  // 'close' comes after the exit once the output is read to its end: the last lines explain a crash.
  const drained = new Promise<void>((r) => child.once('close', () => r()));
  const proc: ServiceProcess = {
    name,
    child,
    output: () => out,
    stop: async (signal = 'SIGTERM') => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill(signal);
      const t = setTimeout(() => child.kill('SIGKILL'), 8_000);
      await exited;
      clearTimeout(t);
    },
  };
  const answers = async (url: string) => {
    const u = new URL(url);
    return call(u.origin, 'GET', u.pathname + u.search).then((r) => r.status === 200, () => false);
  };
  const deadline = Date.now() + (opts.timeoutMs ?? 30_000);
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) {
      await drained;
      throw new Error(`${name} exited (${child.exitCode ?? child.signalCode}):\n${out}`);
    }
    if ('log' in ready ? out.includes(ready.log) : await answers(ready.url)) return proc;
    await new Promise((r) => setTimeout(r, 100));
  }
  await proc.stop();
  throw new Error(`${name} did not start in time:\n${out}`);
}

/** A chat socket client that records every envelope and lets a test wait for one. */
export class TestSocket {
  readonly ws: WebSocket;
  readonly messages: Envelope[] = [];
  /** Resolves once open; a refused handshake rejects with its HTTP `status`. */
  readonly opened: Promise<void>;
  /** Resolves with the close code; the reason is then in `closeReason`. */
  readonly closed: Promise<number>;
  closeCode: number | null = null;
  closeReason = '';
  private waiters: { pred: (m: Envelope) => boolean; resolve: (m: Envelope) => void }[] = [];

  /** Starts connecting; `connect` also waits for the open. */
  constructor(url: string, opts: WebSocket.ClientOptions = {}) {
    const ws = (this.ws = new WebSocket(url, opts));
    this.opened = new Promise((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
      ws.once('unexpected-response', (_req, res) => {
        res.resume();
        reject(Object.assign(new Error(`HTTP ${res.statusCode}`), { status: res.statusCode }));
        ws.terminate(); // so that `closed` settles too
      });
    });
    // A test that only awaits `closed` has no use for the open's failure.
    this.opened.catch(() => undefined);
    this.closed = new Promise((resolve) =>
      ws.once('close', (code, reason) => {
        this.closeCode = code;
        this.closeReason = reason.toString();
        resolve(code);
      }),
    );
    ws.on('message', (d) => {
      const m = JSON.parse(d.toString()) as Envelope;
      this.messages.push(m);
      this.waiters = this.waiters.filter((w) => (w.pred(m) ? (w.resolve(m), false) : true));
    });
  }

  static async connect(url: string, opts: WebSocket.ClientOptions = {}): Promise<TestSocket> {
    const s = new TestSocket(url, opts);
    await s.opened;
    return s;
  }

  /** Sends a string as is, anything else as JSON. */
  send(m: unknown): void {
    this.ws.send(typeof m === 'string' ? m : JSON.stringify(m));
  }

  /** The first message matching `pred` received since index `from`, or the next one to arrive. */
  waitFor(pred: (m: Envelope) => boolean, timeoutMs = 10_000, from = 0): Promise<Envelope> {
    const seen = this.messages.slice(from).find(pred);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`timed out waiting; got: ${this.messages.map((m) => m.type).join(', ')}`)), timeoutMs);
      this.waiters.push({
        pred,
        resolve: (m) => {
          clearTimeout(t);
          resolve(m);
        },
      });
    });
  }

  waitType(type: string, timeoutMs?: number, from?: number): Promise<Envelope> {
    return this.waitFor((m) => m.type === type, timeoutMs, from);
  }

  /** The envelopes that are timeline events (they carry an index). */
  timeline(): Envelope[] {
    return this.messages.filter((m) => m.index !== undefined);
  }

  close(): Promise<number> {
    this.ws.close();
    return this.closed;
  }
}

/**
 * The HTTP answer to a WebSocket upgrade request for `target` (sent as is, so any path or
 * encoding a client could send): `status` 101 when the handshake was accepted, else the refusal.
 */
export function rawUpgrade(base: string, target: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string }> {
  const u = new URL(base);
  return new Promise((resolve, reject) => {
    const req = httpRequest({
      host: u.hostname,
      port: u.port,
      path: target,
      headers: { connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-version': '13', 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==', ...headers },
    });
    req.on('upgrade', (res, socket) => {
      socket.destroy();
      resolve({ status: res.statusCode ?? 0, body: '' });
    });
    req.on('response', (res) => {
      let body = '';
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** A masked client text frame carrying any bytes (invalid UTF-8 included), to write under a ws client. */
export function maskedTextFrame(payload: Buffer): Buffer {
  const mask = Buffer.from([9, 8, 7, 6]);
  const len = payload.length;
  const head =
    len < 126
      ? Buffer.from([0x81, 0x80 | len])
      : len < 65536
        ? Buffer.from([0x81, 0x80 | 126, len >> 8, len & 0xff])
        : Buffer.concat([Buffer.from([0x81, 0x80 | 127, 0, 0, 0, 0]), Buffer.from([(len >>> 24) & 0xff, (len >> 16) & 0xff, (len >> 8) & 0xff, len & 0xff])]);
  return Buffer.concat([head, mask, Buffer.from(payload.map((b, i) => b ^ mask[i % 4]))]);
}

/** Write raw bytes under a ws client (for frames a conforming client refuses to send). */
export function writeUnder(ws: WebSocket, bytes: Buffer): void {
  (ws as unknown as { _socket: { write(b: Buffer): void } })._socket.write(bytes);
}

/** Polls `fn` every 25 ms until it returns something truthy, and returns that; throws after `timeoutMs`. */
export async function until<T>(fn: () => Promise<T | undefined | null | false> | T | undefined | null | false, timeoutMs = 10_000, what = 'condition'): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/**
 * Deletes the keys matching `pattern` on the Redis of `url`, or on every primary of a cluster
 * (SCAN answers for one node only); how many. One key a command: on a cluster, keys of one node may
 * still be in different slots.
 */
export async function deleteKeys(url: string, pattern: string): Promise<number> {
  const redis = createRedis(url, createLogger('test-keys', 'silent'), 'test-keys', { maxRetriesPerRequest: 1 });
  let n = 0;
  try {
    await whenReady(redis);
    for (const node of primaries(redis)) {
      let cursor = '0';
      do {
        const [next, keys] = await node.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
        cursor = next;
        if (!keys.length) continue;
        for (const [err, x] of (await keys.reduce((p, k) => p.unlink(k), node.pipeline()).exec()) ?? []) if (!err) n += Number(x);
      } while (cursor !== '0');
    }
  } finally {
    await redis.quit().catch(() => redis.disconnect());
  }
  return n;
}

/** What a test file left under its own prefix, on the test Redis (or cluster). */
export async function deleteTestKeys(pattern: string): Promise<void> {
  await deleteKeys(TEST_REDIS_URL, pattern);
}

/** A TCP relay to a Redis or PostgreSQL that a test can break in the ways a network does. */
export interface TcpRelay {
  /** The target's URL (user, password, path, query kept) with the relay's host and port. */
  url: string;
  /** Every connection cut and the port closed: connects are refused. */
  down(): Promise<void>;
  /** Listening again, on the same port, passing traffic (a freeze ends). */
  up(): Promise<void>;
  /** Connections stay up, and nothing more passes either way (a server that hangs). */
  freeze(): void;
  /** The next client write containing `marker` reaches the target, and its answer cuts the connection instead of passing (the command ran; its caller never heard). */
  cutAfter(marker: string): void;
}

/** A relay in this process between a client under test and `target` (its default port: Redis's, else PostgreSQL's by protocol). */
export async function tcpRelay(target: URL): Promise<TcpRelay> {
  const sockets = new Set<Socket>();
  const port = Number(target.port) || (target.protocol.startsWith('redis') ? 6379 : 5432);
  let server: Server | null = null;
  let listenPort = 0;
  let frozen = false;
  let cutMarker: string | null = null;
  const up = async () => {
    frozen = false;
    if (server) return;
    const s = createTcpServer((client) => {
      const upstream = connect(port, target.hostname);
      for (const end of [client, upstream]) {
        sockets.add(end);
        end.on('error', () => undefined);
        end.on('close', () => sockets.delete(end));
      }
      let cutting = false;
      client.on('data', (d) => {
        if (frozen) return;
        if (cutMarker !== null && d.includes(cutMarker)) [cutMarker, cutting] = [null, true];
        upstream.write(d);
      });
      upstream.on('data', (d) => {
        if (cutting) client.destroy();
        else if (!frozen) client.write(d);
      });
      client.on('close', () => upstream.destroy());
      upstream.on('close', () => client.destroy());
    });
    await new Promise<void>((r) => s.listen(listenPort, '127.0.0.1', () => r()));
    listenPort = (s.address() as AddressInfo).port;
    server = s;
  };
  await up();
  const url = new URL(target.href);
  url.hostname = '127.0.0.1';
  url.port = String(listenPort);
  return {
    url: url.href,
    up,
    down: async () => {
      const s = server;
      server = null;
      for (const end of sockets) end.destroy();
      if (s) await new Promise<void>((r) => s.close(() => r()));
    },
    freeze: () => void (frozen = true),
    cutAfter: (marker) => void (cutMarker = marker),
  };
}

/**
 * Test harness: a real document server on port 0 against a fresh PostgreSQL schema and a fresh
 * blob directory (or an S3 bucket), started by the same function main.ts uses, or as its own
 * process (memory is measured on a process of its own).
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createLogger, DEV_JWT_SECRET, signToken } from '@tessera/kit';
import { call, freshSchema, openRequest, readReply, spawnService, TEST_REDIS_URL, type ServiceProcess, entryOf } from '@tessera/kit/testing';
import { loadDocumentServerConfig, type DocumentServerConfig } from '../src/config';
import { startDocumentServer, type RunningDocumentServer } from '../src/server';

export const ROOT = resolve(__dirname, '../../..');
export const MIGRATIONS = resolve(__dirname, '../prisma/migrations');
export const SECRET = DEV_JWT_SECRET;
export const SERVICE_KEY = 'test-service-key-0123456789';
export const MB = 1024 * 1024;

export interface Env {
  DATABASE_URL: string;
  BLOB_DIR: string;
  drop: () => Promise<void>;
}

/** A fresh schema and blob directory: what one test file owns. */
export async function testEnv(name: string): Promise<Env> {
  const { url, drop } = await freshSchema(MIGRATIONS, `docs_${name}`);
  const dir = mkdtempSync(join(tmpdir(), `docs-${name}-`));
  return {
    DATABASE_URL: url,
    BLOB_DIR: dir,
    drop: async () => {
      await drop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** What every document server of a test file is configured with, here or in a child. */
export function serviceVars(env: Env): Record<string, string> {
  return { NODE_ENV: 'test', REDIS_URL: TEST_REDIS_URL, DATABASE_URL: env.DATABASE_URL, BLOB_DIR: env.BLOB_DIR, JWT_SECRET: SECRET, SERVICE_KEY };
}

export function configFor(env: Env, extra: Record<string, string> = {}): DocumentServerConfig {
  return loadDocumentServerConfig({ ...serviceVars(env), LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent', PORT: '0', HOST: '127.0.0.1', SHUTDOWN_TIMEOUT_MS: '5000', ...extra });
}

export interface Instance {
  url: string;
  d: RunningDocumentServer;
  close(): Promise<void>;
}

export async function startDocuments(env: Env, extra: Record<string, string> = {}): Promise<Instance> {
  const config = configFor(env, extra);
  const d = await startDocumentServer(config, createLogger('documents-test', config.LOG_LEVEL));
  return { url: d.url, d, close: () => d.shutdown.run() };
}

/** `apps/document-server/src/main.ts` in a process of its own, as deployed. */
export async function spawnDocuments(env: Env, port: number, extra: Record<string, string> = {}): Promise<ServiceProcess & { url: string }> {
  const url = `http://127.0.0.1:${port}`;
  const p = await spawnService({
    name: 'document-server',
    entry: resolve(ROOT, entryOf('document-server')),
    cwd: ROOT,
    env: { ...serviceVars(env), LOG_LEVEL: 'warn', PORT: String(port), HOST: '127.0.0.1', ...extra },
    ready: { url: `${url}/health` },
    timeoutMs: 30_000,
  });
  return Object.assign(p, { url });
}

/** A signed-in user of `apps`; `operator` adds the role that sees every document of those apps. */
export function token(sub: string, apps: string[] | '*' = ['app1'], operator = false) {
  return signToken(SECRET, { sub, ...(apps !== '*' && { apps }), ...(operator && { roles: ['operator'] }) }, { expiresIn: '1h' });
}

export const serviceHeaders = { 'x-tessera-service-key': SERVICE_KEY };

export async function http(base: string, method: string, path: string, opts: { body?: unknown; token?: string; headers?: Record<string, string>; raw?: string | Buffer } = {}) {
  return call(base, method, path, opts);
}

export interface UploadOptions {
  token?: string;
  headers?: Record<string, string>;
  /** Text fields, sent before the file unless `fieldsAfter`. */
  fields?: Record<string, string | string[]>;
  fieldsAfter?: boolean;
  filename?: string;
  /** The file: these bytes, or `size` bytes generated chunk by chunk (never held whole). */
  content?: Buffer | string;
  size?: number;
  /** Seed of generated content: the same seed and size give the same bytes. */
  seed?: number;
  /** Destroy the connection after this many file bytes. */
  abortAfter?: number;
  /** Called after each chunk written (to sample memory while a large file is on its way). */
  onProgress?: (sent: number) => void;
}

export interface UploadResult {
  status: number;
  json: any;
  /** SHA-256 of the file bytes sent. */
  sha256: string;
  ms: number;
}

const CHUNK = 1024 * 1024;

/** Generated file bytes, one chunk at a time: a random block varied by its position. */
export function* generated(size: number, seed = 1): Generator<Buffer> {
  const block = createHash('sha512').update(String(seed)).digest();
  const base = Buffer.alloc(CHUNK);
  for (let i = 0; i < CHUNK; i += block.length) block.copy(base, i);
  for (let off = 0, n = 0; off < size; off += CHUNK, n++) {
    const chunk = Buffer.from(base.subarray(0, Math.min(CHUNK, size - off)));
    chunk.writeUInt32BE(n, 0);
    yield chunk;
  }
}

/** A multipart upload streamed to `POST /documents`, written with back-pressure respected. */
export function upload(base: string, opts: UploadOptions = {}, path = '/documents'): Promise<UploadResult> {
  const boundary = `----tessera${randomBytes(8).toString('hex')}`;
  const field = (k: string, v: string) => `--${boundary}\r\nContent-Disposition: form-data; name="${k}"\r\n\r\n${v}\r\n`;
  const fieldText = Object.entries(opts.fields ?? {})
    .flatMap(([k, v]) => (Array.isArray(v) ? v.map((x) => field(k, x)) : [field(k, v)]))
    .join('');
  const filename = (opts.filename ?? 'file.bin').replace(/"/g, '%22');
  const fileHead = `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="${filename}"\r\nContent-Type: application/octet-stream\r\n\r\n`;
  const content = typeof opts.content === 'string' ? Buffer.from(opts.content) : opts.content;
  const size = content ? content.length : (opts.size ?? 0);
  const before = Buffer.from((opts.fieldsAfter ? '' : fieldText) + fileHead);
  const after = Buffer.from(`\r\n${opts.fieldsAfter ? fieldText : ''}--${boundary}--\r\n`);
  const hash = createHash('sha256');
  const t0 = performance.now();
  return new Promise((resolvePromise, reject) => {
    const req = openRequest(base, 'POST', path, {
      token: opts.token,
      headers: { 'content-type': `multipart/form-data; boundary=${boundary}`, 'content-length': String(before.length + size + after.length), ...opts.headers },
    });
    req.on('response', (res) =>
      readReply(res, t0).then((r) => resolvePromise({ status: r.status, json: r.json === undefined ? r.text : r.json, sha256: hash.digest('hex'), ms: r.ms }), reject),
    );
    let settled = false;
    req.on('error', (e) => {
      // The server may answer (a 413) and close before the body is all sent: the answer counts.
      if (!settled) setTimeout(() => reject(e), 50);
    });
    req.on('response', () => (settled = true));
    const write = (b: Buffer) => (req.write(b) ? Promise.resolve() : new Promise<void>((r) => req.once('drain', () => r())));
    (async () => {
      await write(before);
      let sent = 0;
      for (const chunk of content ? [content] : generated(size, opts.seed)) {
        if (settled || req.destroyed) return;
        const part = opts.abortAfter !== undefined ? chunk.subarray(0, Math.max(0, opts.abortAfter - sent)) : chunk;
        hash.update(part);
        await write(part);
        sent += part.length;
        opts.onProgress?.(sent);
        if (opts.abortAfter !== undefined && sent >= opts.abortAfter) {
          await new Promise((r) => setTimeout(r, 100));
          req.destroy();
          return resolvePromise({ status: 0, json: undefined, sha256: hash.digest('hex'), ms: performance.now() - t0 });
        }
      }
      req.end(after);
    })().catch(reject);
  });
}

/** Downloads a document's bytes, hashing them as they arrive. */
export function download(base: string, path: string, opts: { token?: string; headers?: Record<string, string> } = {}): Promise<{ status: number; headers: Record<string, any>; size: number; sha256: string; body: Buffer | null; ms: number }> {
  const t0 = performance.now();
  return new Promise((resolvePromise, reject) => {
    const req = openRequest(base, 'GET', path, opts);
    req.on('response', (res) => {
      const hash = createHash('sha256');
      let size = 0;
      const keep: Buffer[] = [];
      res.on('data', (c: Buffer) => {
        hash.update(c);
        size += c.length;
        if (size <= 1024 * 1024) keep.push(c);
      });
      res.on('end', () => resolvePromise({ status: res.statusCode ?? 0, headers: res.headers, size, sha256: hash.digest('hex'), body: size <= 1024 * 1024 ? Buffer.concat(keep) : null, ms: performance.now() - t0 }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

/** Every file under a directory (recursively), as paths relative to it. */
export function filesUnder(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string, rel: string) => {
    for (const name of readdirSync(d)) {
      const p = join(d, name);
      if (statSync(p).isDirectory()) walk(p, join(rel, name));
      else out.push(join(rel, name));
    }
  };
  walk(dir, '');
  return out.sort();
}

/** Resident memory of a process in bytes (Linux). */
export function rssOf(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const m = /VmRSS:\s+(\d+) kB/.exec(status);
  return m ? Number(m[1]) * 1024 : 0;
}

export const sha256 = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

/** Shared with every service's tests (kit/testing). */
export { until } from '@tessera/kit/testing';

/**
 * Document server benchmark (issue 9): upload and download MB/s of 1 MB and 100 MB files next to
 * a bare `fs.createReadStream` pipe over HTTP measured in the same run, and the server's memory
 * while a 100 MB file goes in. Figures are printed, never asserted.
 *
 *   npx tsx tools/bench/documents.ts [--quick]
 *
 * The document server runs as deployed (apps/document-server/src/main.ts, one node process, tsx's
 * loader, auth on, LOG_LEVEL=warn, BLOB_STORE=fs) on a fresh PostgreSQL schema and blob directory
 * (removed at the end). Its upload is multipart (a file part after an `app_id` field), hashed,
 * sniffed, written to a temporary file, renamed under its SHA-256 and recorded in PostgreSQL.
 * Baseline: a bare node HTTP server in its own process that pipes the request body into
 * `fs.createWriteStream` (upload) or `fs.createReadStream` into the response (download) — the
 * same bytes from the same files over the same loopback, nothing else. One transfer at a time;
 * 1 MB: N transfers (50, --quick 20), 100 MB: 3 (--quick 1); MB/s = bytes / wall time.
 * RSS: /proc/<pid>/status VmRSS of the server, sampled every 20 ms, during its first 100 MB upload
 * (after one 1 MB upload): idle before vs peak.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createReadStream, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request, type IncomingMessage } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { signToken } from '@tessera/kit';
import { freshSchema, entryOf } from '../../libs/kit/src/testing';
import { cleanup, freePort, onCleanup, ROOT, rssOf, runMain, sleep, spawnService, stopChild } from './lib/proc';
import { fmt, markdown } from './lib/stats';

const QUICK = process.argv.includes('--quick');
const MB = 1024 * 1024;
const SECRET = `bench-secret-${randomBytes(16).toString('hex')}`;
const say = (s: string) => process.stdout.write(s + '\n');

/** A bare file server: POST /upload → createWriteStream, GET /file?path= → createReadStream. */
const BARE = `
const http = require('node:http'); const fs = require('node:fs'); const path = require('node:path');
const dir = process.env.DIR; let n = 0;
http.createServer((req, res) => {
  if (req.method === 'POST') {
    const out = fs.createWriteStream(path.join(dir, 'up-' + (n++ % 4)));
    req.pipe(out).on('finish', () => res.end('{}'));
  } else {
    const file = new URL(req.url, 'http://x').searchParams.get('path');
    res.setHeader('content-length', fs.statSync(file).size);
    fs.createReadStream(file).pipe(res);
  }
}).listen(Number(process.env.PORT), '127.0.0.1', () => console.log('bare ready'));
`;

function send(url: string, headers: Record<string, string>, parts: (Buffer | string)[]): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'POST', headers, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    (async () => {
      for (const p of parts) {
        if (typeof p !== 'string') {
          if (!req.write(p)) await new Promise((r) => req.once('drain', r));
          continue;
        }
        for await (const chunk of createReadStream(p)) if (!req.write(chunk)) await new Promise((r) => req.once('drain', r));
      }
      req.end();
    })().catch(reject);
  });
}

function fetchAll(url: string, headers: Record<string, string> = {}): Promise<number> {
  return new Promise((resolve, reject) => {
    request(url, { headers, agent: false }, (res: IncomingMessage) => {
      let n = 0;
      res.on('data', (c: Buffer) => (n += c.length));
      res.on('end', () => (res.statusCode === 200 ? resolve(n) : reject(new Error(`GET ${url}: ${res.statusCode}`))));
    })
      .on('error', reject)
      .end();
  });
}

async function main() {
  const work = mkdtempSync(join(tmpdir(), 'bench-docs-'));
  onCleanup(() => rmSync(work, { recursive: true, force: true }));
  const files = { '1 MB': join(work, 'f1'), '100 MB': join(work, 'f100') };
  writeFileSync(files['1 MB'], randomBytes(MB));
  const block = randomBytes(MB);
  writeFileSync(files['100 MB'], Buffer.concat(Array.from({ length: 100 }, (_, i) => Buffer.from(block.map((b) => b ^ i)))));
  const sizes = { '1 MB': MB, '100 MB': 100 * MB };
  const runs = { '1 MB': QUICK ? 20 : 50, '100 MB': QUICK ? 1 : 3 };

  const schema = await freshSchema(join(ROOT, 'apps/document-server/prisma/migrations'), 'bench_docs');
  onCleanup(() => schema.drop());
  const blobDir = join(work, 'blobs');
  const port = await freePort();
  const server = await spawnService('document-server', entryOf('document-server'), { NODE_ENV: 'production', LOG_LEVEL: 'warn', PORT: String(port), HOST: '127.0.0.1', DATABASE_URL: schema.url, BLOB_DIR: blobDir, JWT_SECRET: SECRET, SERVICE_KEY: `bench-service-key-${randomBytes(8).toString('hex')}` }, { port });
  onCleanup(() => server.stop());
  const barePort = await freePort();
  const bare = spawn(process.execPath, ['-e', BARE], { env: { ...process.env, DIR: work, PORT: String(barePort) }, stdio: ['ignore', 'pipe', 'inherit'] });
  onCleanup(() => stopChild(bare));
  await new Promise<void>((r) => bare.stdout!.on('data', (d: Buffer) => d.toString().includes('bare ready') && r()));

  const token = await signToken(SECRET, { sub: 'bench', apps: ['bench'] }, { expiresIn: '1h' });
  const auth = { authorization: `Bearer ${token}` };
  const docsUrl = `http://127.0.0.1:${port}`;
  const bareUrl = `http://127.0.0.1:${barePort}`;
  const ids: Record<string, string> = {};

  const uploadDoc = async (label: keyof typeof files) => {
    const b = `----bench${randomBytes(6).toString('hex')}`;
    const head = Buffer.from(`--${b}\r\nContent-Disposition: form-data; name="app_id"\r\n\r\nbench\r\n--${b}\r\nContent-Disposition: form-data; name="file"; filename="${label}.bin"\r\n\r\n`);
    const tail = Buffer.from(`\r\n--${b}--\r\n`);
    let id = '';
    await new Promise<void>((resolve, reject) => {
      const req = request(`${docsUrl}/documents`, { method: 'POST', agent: false, headers: { ...auth, 'content-type': `multipart/form-data; boundary=${b}`, 'content-length': String(head.length + sizes[label] + tail.length) } }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => (res.statusCode === 201 ? ((id = JSON.parse(Buffer.concat(chunks).toString()).id), resolve()) : reject(new Error(`upload: ${res.statusCode} ${Buffer.concat(chunks)}`))));
      });
      req.on('error', reject);
      req.write(head);
      const rs = createReadStream(files[label]);
      rs.pipe(req, { end: false });
      rs.on('end', () => req.end(tail));
    });
    ids[label] = id;
  };

  const timed = async (n: number, fn: () => Promise<unknown>) => {
    const t0 = performance.now();
    for (let i = 0; i < n; i++) await fn();
    return (performance.now() - t0) / 1000;
  };

  // Memory while the first 100 MB file goes in, after a 1 MB warm-up: idle, then the peak.
  await uploadDoc('1 MB');
  await sleep(1_000);
  const idle = rssOf(server.pid);
  let peak = idle;
  const t = setInterval(() => (peak = Math.max(peak, rssOf(server.pid))), 20);
  await uploadDoc('100 MB');
  clearInterval(t);
  peak = Math.max(peak, rssOf(server.pid));

  // Warm-up: code paths, connections, the page cache of both files.
  for (const label of ['1 MB', '100 MB'] as const) {
    await uploadDoc(label);
    await fetchAll(`${docsUrl}/documents/${ids[label]}`, auth);
    await send(`${bareUrl}/upload`, {}, [files[label]]);
  }

  const rows: string[][] = [];
  for (const label of ['1 MB', '100 MB'] as const) {
    const n = runs[label];
    const total = (sizes[label] * n) / MB;
    const docUp = await timed(n, () => uploadDoc(label));
    const bareUp = await timed(n, () => send(`${bareUrl}/upload`, { 'content-length': String(sizes[label]) }, [files[label]]));
    const docDown = await timed(n, () => fetchAll(`${docsUrl}/documents/${ids[label]}`, auth));
    const bareDown = await timed(n, () => fetchAll(`${bareUrl}/file?path=${encodeURIComponent(files[label])}`));
    rows.push([`${label} upload`, String(n), fmt(total / docUp), fmt(total / bareUp), `${fmt(((total / docUp) / (total / bareUp)) * 100, 0)} %`]);
    rows.push([`${label} download`, String(n), fmt(total / docDown), fmt(total / bareDown), `${fmt(((total / docDown) / (total / bareDown)) * 100, 0)} %`]);
  }

  say('');
  say(markdown(['transfer', 'runs', 'document server MB/s', 'bare fs pipe MB/s', 'ratio'], rows));
  say('');
  say(`document server RSS while uploading 100 MB: idle ${fmt(idle / MB)} MB, peak ${fmt(peak / MB)} MB (+${fmt((peak - idle) / MB)} MB; target under +100 MB)`);
  await cleanup();
}

runMain(main, { deadlineMs: 10 * 60_000 });

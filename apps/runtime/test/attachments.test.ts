/**
 * `POST /api/chat/upload` with DOCUMENTS_URL set: the file streams through the runtime into a
 * real document server (its own process, schema and blob directory), tagged with the chat; the
 * reply and the `chat.attachment_uploaded` event keep their shape; refusals leave nothing.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { call, closedPort, freshSchema, spawnService, TestSocket, type ServiceProcess, entryOf } from '@tessera/kit/testing';
import { chatTag } from '../src/attachments/chat-attachments';
import { http, ROOT, SECRET, SERVICE_KEY, startRuntime, testEnv, token, wsUrl, type Env, type RuntimeInstance } from './harness';

const MB = 1024 * 1024;
let env: Env;
let rt: RuntimeInstance;
let docs: ServiceProcess & { url: string };
let blobDir: string;
let dropDocs: () => Promise<void>;

beforeAll(async () => {
  env = await testEnv('attachments');
  const schema = await freshSchema(resolve(ROOT, 'apps/document-server/prisma/migrations'), 'rt_docs');
  dropDocs = schema.drop;
  blobDir = mkdtempSync(join(tmpdir(), 'rt-docs-'));
  const port = await closedPort();
  const url = `http://127.0.0.1:${port}`;
  const p = await spawnService({
    name: 'document-server',
    entry: resolve(ROOT, entryOf('document-server')),
    cwd: ROOT,
    env: { NODE_ENV: 'test', LOG_LEVEL: 'warn', PORT: String(port), HOST: '127.0.0.1', DATABASE_URL: schema.url, BLOB_DIR: blobDir, JWT_SECRET: SECRET, SERVICE_KEY },
    ready: { url: `${url}/health` },
  });
  docs = Object.assign(p, { url });
  rt = await startRuntime(env, { extra: { DOCUMENTS_URL: url, UPLOAD_MAX_BYTES: String(150 * MB) } });
});
afterAll(async () => {
  await rt?.close();
  await docs?.stop();
  await env?.dropSchema();
  await dropDocs?.();
  rmSync(blobDir, { recursive: true, force: true });
});

async function startChat(user: string) {
  const tok = await token(user);
  const r = await http(rt.url, 'POST', '/api/chats/app1/assistant/start', { user_id: user }, tok);
  return { tok, chatId: r.body.chat_id as string };
}

const asService = { 'x-tessera-service-key': SERVICE_KEY };
const docsOf = async (chatId: string) => (await call(docs.url, 'GET', `/documents?tag=${chatTag(chatId)}`, { headers: asService })).json.documents as any[];
const tmpBlobs = () => readdirSync(join(blobDir, 'tmp'));

/** A multipart upload streamed from generated chunks (never held whole), fields before or after the file. */
function streamUpload(base: string, tok: string, o: { fields: Record<string, string>; fieldsFirst: boolean; size: number; filename?: string; abortAfter?: number; after?: Record<string, string> }) {
  const b = `----rt${randomBytes(6).toString('hex')}`;
  const encode = (f: Record<string, string>) =>
    Object.entries(f)
      .map(([k, v]) => `--${b}\r\nContent-Disposition: form-data; name="${k}"\r\n\r\n${v}\r\n`)
      .join('');
  const fields = encode(o.fields);
  const head = Buffer.from(`${o.fieldsFirst ? fields : ''}--${b}\r\nContent-Disposition: form-data; name="file"; filename="${o.filename ?? 'big.bin'}"\r\nContent-Type: application/pdf\r\n\r\n`);
  const tail = Buffer.from(`\r\n${o.fieldsFirst ? '' : fields}${encode(o.after ?? {})}--${b}--\r\n`);
  const hash = createHash('sha256');
  const block = randomBytes(MB);
  return new Promise<{ status: number; json: any; sha256: string }>((done, fail) => {
    const u = new URL(base);
    const req = httpRequest(
      { hostname: u.hostname, port: u.port, path: '/api/chat/upload', method: 'POST', agent: false, headers: { authorization: `Bearer ${tok}`, 'content-type': `multipart/form-data; boundary=${b}`, 'content-length': String(head.length + o.size + tail.length) } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => done({ status: res.statusCode!, json: JSON.parse(Buffer.concat(chunks).toString() || 'null'), sha256: hash.digest('hex') }));
      },
    );
    let answered = false;
    req.on('response', () => (answered = true));
    req.on('error', (e) => !answered && setTimeout(() => fail(e), 50));
    const write = (c: Buffer) => (req.write(c) ? Promise.resolve() : new Promise<void>((r) => req.once('drain', () => r())));
    (async () => {
      await write(head);
      for (let sent = 0, n = 0; sent < o.size; n++) {
        if (answered) return;
        const chunk = Buffer.from(block.subarray(0, Math.min(MB, o.size - sent)));
        chunk.writeUInt32BE(n, 0);
        hash.update(chunk);
        await write(chunk);
        sent += chunk.length;
        if (o.abortAfter !== undefined && sent >= o.abortAfter) {
          req.destroy();
          return done({ status: 0, json: null, sha256: '' });
        }
      }
      req.end(tail);
    })().catch(fail);
  });
}

test('an upload lands in the document server tagged with the chat; the reply and the event keep their shape', async () => {
  const { tok, chatId } = await startChat('dave');
  const c = await TestSocket.connect(wsUrl(rt.wsUrl, 'assistant', 'app1', chatId, 'dave', tok));
  await c.waitFor((m) => m.type === 'chat_meta');
  const form = new FormData();
  // Fields first: the file streams straight through.
  form.set('appId', 'app1');
  form.set('userId', 'dave');
  form.set('chatId', chatId);
  form.set('file', new Blob([Buffer.from('%PDF-1.4\nhello attachment')], { type: 'text/plain' }), 'report.pdf');
  form.set('intent', 'context');
  const res = await fetch(`${rt.url}/api/chat/upload`, { method: 'POST', body: form, headers: { authorization: `Bearer ${tok}` } });
  expect(res.status).toBe(201);
  const body = (await res.json()) as any;
  // The content type is the document server's sniffing of the bytes, not the client's label.
  expect(body).toEqual({ attachment_id: expect.stringMatching(/^[0-9a-f-]{36}$/), chat_id: chatId, filename: 'report.pdf', size: 25, content_type: 'application/pdf', intent: 'context', bundle_path: null });
  const ev = await c.waitFor((m) => m.type === 'chat.attachment_uploaded');
  expect(ev.data).toMatchObject({ attachment_id: body.attachment_id, filename: 'report.pdf', size: 25, uploaded_by: 'dave', intent: 'context' });
  await c.close();

  const meta = await call(docs.url, 'GET', `/documents/${body.attachment_id}/metadata`, { headers: asService });
  expect(meta.json).toMatchObject({ id: body.attachment_id, app_id: 'app1', uploaded_by: 'dave', tags: [chatTag(chatId)], size: 25 });
  expect((await call(docs.url, 'GET', `/documents/${body.attachment_id}`, { headers: asService })).text).toBe('%PDF-1.4\nhello attachment');
  // The uploader reads it from the document server with their own token; nothing went to bytea.
  expect((await call(docs.url, 'GET', `/documents/${body.attachment_id}/metadata`, { token: tok })).status).toBe(200);
  expect(await rt.s.db.prisma.attachment.count({ where: { chatId } })).toBe(0);

  // What an agent reads: the chat's attachments with their document ids, and their bytes.
  const list = await rt.s.attachments.list({ id: chatId, appId: 'app1' });
  expect(list).toEqual([expect.objectContaining({ attachment_id: body.attachment_id, document_id: body.attachment_id, filename: 'report.pdf', content_type: 'application/pdf' })]);
  const opened = await rt.s.attachments.open({ id: chatId, appId: 'app1' }, body.attachment_id);
  const chunks: Buffer[] = [];
  for await (const ch of opened!.body) chunks.push(ch as Buffer);
  expect(Buffer.concat(chunks).toString()).toBe('%PDF-1.4\nhello attachment');
  // Another chat cannot open it.
  const other = await startChat('dave');
  expect(await rt.s.attachments.open({ id: other.chatId, appId: 'app1' }, body.attachment_id)).toBeNull();
});

test('the file before the fields (FormData order of the old clients) is spooled to disk, then stored the same way', async () => {
  const { tok, chatId } = await startChat('erin');
  const form = new FormData();
  form.set('file', new Blob([Buffer.from('file first')]), 'notes.txt');
  form.set('appId', 'app1');
  form.set('userId', 'erin');
  form.set('chatId', chatId);
  const res = await fetch(`${rt.url}/api/chat/upload`, { method: 'POST', body: form, headers: { authorization: `Bearer ${tok}` } });
  expect(res.status).toBe(201);
  expect(await res.json()).toMatchObject({ filename: 'notes.txt', size: 10, content_type: 'text/plain', intent: null });
  expect((await docsOf(chatId)).map((d) => d.filename)).toEqual(['notes.txt']);
  expect(readdirSync(tmpdir()).filter((d) => d.startsWith('tessera-upload-'))).toEqual([]);
});

test('100 MB streams through the runtime without being held: its heap and buffers grow far less than the file', async () => {
  const { tok, chatId } = await startChat('fay');
  global.gc?.();
  const before = process.memoryUsage();
  let peak = 0;
  const t = setInterval(() => {
    const m = process.memoryUsage();
    peak = Math.max(peak, m.heapUsed + m.arrayBuffers - before.heapUsed - before.arrayBuffers);
  }, 20);
  const r = await streamUpload(rt.url, tok, { fields: { appId: 'app1', userId: 'fay', chatId }, fieldsFirst: true, size: 100 * MB });
  clearInterval(t);
  expect(r.status).toBe(201);
  const [doc] = await docsOf(chatId);
  expect(doc).toMatchObject({ size: 100 * MB, sha256: r.sha256 });
  console.log(`runtime relay of 100 MB: peak heap+buffers +${Math.round(peak / MB)} MB (client and runtime share this process)`);
  expect(peak).toBeLessThan(60 * MB);
});

test('refusals leave nothing in the document server: over the limit, another user, a bad late field, an abort', async () => {
  const small = await startRuntime(env, { extra: { DOCUMENTS_URL: docs.url, UPLOAD_MAX_BYTES: String(2 * MB) } });
  try {
    const { tok, chatId } = await startChat('gus');
    const fields = { appId: 'app1', userId: 'gus', chatId };
    for (const fieldsFirst of [true, false]) {
      const big = await streamUpload(small.url, tok, { fields, fieldsFirst, size: 3 * MB });
      expect(big.status).toBe(413);
    }
    const mallory = await token('mallory');
    const stolen = await streamUpload(small.url, mallory, { fields: { ...fields, userId: 'mallory' }, fieldsFirst: true, size: 1000 });
    expect(stolen.status).toBe(404);
    const badIntent = await streamUpload(small.url, tok, { fields: { ...fields, intent: 'x'.repeat(65) }, fieldsFirst: false, size: 1000 });
    expect(badIntent.status).toBe(400);
    expect(badIntent.json.error.message).toContain('form.intent');
    // A bad intent after the file while the chat's fields came first: stored, then taken back.
    const late = await streamUpload(small.url, tok, { fields, after: { intent: 'x'.repeat(65) }, fieldsFirst: true, size: 1000, filename: 'late.bin' });
    expect(late.status).toBe(400);
    expect(late.json.error.message).toContain('form.intent');
    await streamUpload(small.url, tok, { fields, fieldsFirst: true, size: 2 * MB, abortAfter: MB });
    await new Promise((r) => setTimeout(r, 500));
    expect(await docsOf(chatId)).toEqual([]);
    expect(tmpBlobs()).toEqual([]);
    const noFile = await http(small.url, 'POST', '/api/chat/upload', undefined, tok);
    expect(noFile.status).toBe(400);
  } finally {
    await small.close();
  }
});

test('the document server down is a 503 the client may retry, never a crash', async () => {
  const down = await startRuntime(env, { extra: { DOCUMENTS_URL: `http://127.0.0.1:${await closedPort()}` } });
  try {
    const { tok, chatId } = await startChat('hal');
    const r = await streamUpload(down.url, tok, { fields: { appId: 'app1', userId: 'hal', chatId }, fieldsFirst: true, size: 1000 });
    expect(r.status).toBe(503);
    expect((await http(down.url, 'GET', '/health')).status).toBe(200);
  } finally {
    await down.close();
  }
});

/**
 * Document 001 §3 and §4.2 (document server) as a client written from the document uses it,
 * through the real gateway: the document's routes under the gateway's `/api` (the README's
 * gateway table), its request bodies verbatim, the fields it names in replies, and a bearer token
 * naming one app as the only addition (the README's note next to §3). Plain `fetch` and
 * `FormData`, nothing of Tessera's. The gateway and the document server are processes started as
 * `npm start` starts them (their main.ts).
 */
import { resolve } from 'node:path';
import { closedPort, spawnService, testPrefix, TEST_REDIS_URL, type ServiceProcess, entryOf } from '@tessera/kit/testing';
import { ROOT, SECRET, SERVICE_KEY, spawnDocuments, testEnv, token as signUser, type Env } from './harness';

const APP = 'conformance-001';
const prefix = testPrefix('docs-conformance');

let env: Env;
let gateway: ServiceProcess & { url: string };
let docs: ServiceProcess & { url: string };
let token: string;

beforeAll(async () => {
  env = await testEnv('conf001');
  const [gwPort, docPort] = [await closedPort(), await closedPort()];
  const gwUrl = `http://127.0.0.1:${gwPort}`;
  const started = await Promise.allSettled([
    spawnDocuments(env, docPort),
    spawnService({
      name: 'gateway',
      entry: resolve(ROOT, entryOf('gateway')),
      cwd: ROOT,
      env: {
        NODE_ENV: 'test',
        LOG_LEVEL: 'warn',
        REDIS_URL: TEST_REDIS_URL,
        JWT_SECRET: SECRET,
        SERVICE_KEY,
        HOST: '127.0.0.1',
        PORT: String(gwPort),
        DOCUMENTS_URL: `http://127.0.0.1:${docPort}`,
        RUNTIME_URL: 'off',
        BROKER_URL: 'off',
        OBSERVABILITY_URL: 'off',
        AGENTS_URL: 'off',
        BRIDGE_URL: 'off',
        RATE_LIMIT_PREFIX: `${prefix}:rl`,
      },
      ready: { url: `${gwUrl}/health` },
      timeoutMs: 30_000,
    }).then((p) => ({ ...p, url: gwUrl })),
  ]);
  const [d, g] = started.map((s) => (s.status === 'fulfilled' ? s.value : null));
  docs = d!;
  gateway = g!;
  const failed = started.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (failed) throw failed.reason;
  // A signed-in user of one app, not an operator: the token is the client's one addition to the document.
  token = await signUser('reader-1', [APP]);
}, 90_000);
afterAll(async () => {
  await gateway?.stop();
  await docs?.stop();
  await env?.drop();
});

/** The document's server at the gateway's `/api`: JSON in and out, the bearer token on every request. */
async function api(method: string, path: string, body?: unknown): Promise<{ status: number; json: any; text: string; headers: Headers }> {
  const res = await fetch(`${gateway.url}/api${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body !== undefined && { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  let json: any;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, json, text, headers: res.headers };
}

/** `POST /documents`: the file with tags and a description, as a browser's FormData sends them; no app_id. */
async function uploadDocument(content: string, filename: string, tags: string[], description: string) {
  const form = new FormData();
  form.append('file', new Blob([content], { type: 'text/plain' }), filename);
  form.append('tags', tags.join(','));
  form.append('description', description);
  const res = await fetch(`${gateway.url}/api/documents`, { method: 'POST', headers: { authorization: `Bearer ${token}` }, body: form });
  return { status: res.status, json: (await res.json()) as any };
}

const ok = (status: number) => status >= 200 && status < 300;
const isTime = (s: unknown) => typeof s === 'string' && !Number.isNaN(Date.parse(s));

test('§3: upload with the document\'s fields, list, get, metadata, tags with counts, PATCH, delete', async () => {
  // Upload: the app is the token's; content_type (§4.2) is in the reply.
  const first = await uploadDocument('An AI review of the config.\n', 'review.txt', ['ai', 'review', 'config'], 'First notes');
  expect(first.status).toBe(201);
  expect(first.json).toMatchObject({ id: expect.any(String), filename: 'review.txt', content_type: 'text/plain', tags: ['ai', 'review', 'config'], description: 'First notes' });
  expect(isTime(first.json.updated_at)).toBe(true);
  const second = await uploadDocument('Another AI review.\n', 'second.txt', ['ai', 'review'], 'Second notes');
  const third = await uploadDocument('Only AI here.\n', 'third.txt', ['ai'], 'Third notes');
  expect([second.status, third.status]).toEqual([201, 201]);

  // GET /documents (the document shows no reply body; Tessera's is a page: `documents`, newest first).
  const list = await api('GET', '/documents');
  expect(list.status).toBe(200);
  expect(list.json.documents.map((d: any) => d.id).sort()).toEqual([first.json.id, second.json.id, third.json.id].sort());
  const times = list.json.documents.map((d: any) => Date.parse(d.created_at));
  expect(times).toEqual([...times].sort((a, b) => b - a));

  // GET /documents/{id}: the bytes; GET /documents/{id}/metadata: the document.
  const file = await api('GET', `/documents/${first.json.id}`);
  expect(file.status).toBe(200);
  expect(file.text).toBe('An AI review of the config.\n');
  expect(file.headers.get('content-type')).toMatch(/^text\/plain/);
  const meta = await api('GET', `/documents/${first.json.id}/metadata`);
  expect(meta.status).toBe(200);
  expect(meta.json).toEqual(first.json);

  // §3.1 GET /documents/tags: every tag with its count, sorted by count (descending).
  const tags = await api('GET', '/documents/tags');
  expect(tags.status).toBe(200);
  expect(tags.json).toEqual({
    tags: [
      { name: 'ai', count: 3 },
      { name: 'review', count: 2 },
      { name: 'config', count: 1 },
    ],
  });

  // §3.2 PATCH /documents/{id} with the document's body: the full document back, updated_at moved.
  await new Promise((r) => setTimeout(r, 5));
  const patched = await api('PATCH', `/documents/${first.json.id}`, { tags: ['ai', 'review', 'updated'], description: 'Updated description' });
  expect(patched.status).toBe(200);
  expect(patched.json).toEqual({ ...first.json, tags: ['ai', 'review', 'updated'], description: 'Updated description', updated_at: expect.any(String) });
  expect(Date.parse(patched.json.updated_at)).toBeGreaterThan(Date.parse(first.json.updated_at));
  // Only the fields given change.
  const described = await api('PATCH', `/documents/${first.json.id}`, { description: 'Only the description' });
  expect(described.json).toMatchObject({ tags: ['ai', 'review', 'updated'], description: 'Only the description' });
  const tagged = await api('PATCH', `/documents/${first.json.id}`, { tags: ['ai'] });
  expect(tagged.json).toMatchObject({ tags: ['ai'], description: 'Only the description' });
  // Tag format: alphanumeric and hyphens.
  const badTag = await api('PATCH', `/documents/${first.json.id}`, { tags: ['not a tag!'] });
  expect(badTag.status).toBe(400);
  expect(badTag.json.error.message).toContain('tags');
  expect((await api('GET', '/documents/tags')).json.tags).toEqual([
    { name: 'ai', count: 3 },
    { name: 'review', count: 1 },
  ]);

  // DELETE /documents/{id}: gone from the list, the file, the metadata and the counts.
  const deleted = await api('DELETE', `/documents/${third.json.id}`);
  expect(ok(deleted.status)).toBe(true);
  expect(deleted.json).toMatchObject({ success: true });
  expect((await api('GET', `/documents/${third.json.id}`)).status).toBe(404);
  expect((await api('GET', `/documents/${third.json.id}/metadata`)).status).toBe(404);
  expect((await api('GET', '/documents')).json.documents.map((d: any) => d.id).sort()).toEqual([second.json.id, first.json.id].sort());
  expect((await api('GET', '/documents/tags')).json.tags).toEqual([
    { name: 'ai', count: 2 },
    { name: 'review', count: 1 },
  ]);
});

test('the platform\'s additions a document client meets: a token is needed, another app\'s document is not found', async () => {
  const mine = await uploadDocument('private', 'mine.txt', ['secret'], 'Mine');
  const res = await fetch(`${gateway.url}/api/documents`);
  expect(res.status).toBe(401);
  const other = await signUser('reader-2', ['another-app']);
  const foreign = await fetch(`${gateway.url}/api/documents/${mine.json.id}/metadata`, { headers: { authorization: `Bearer ${other}` } });
  expect(foreign.status).toBe(404);
});

/**
 * Large files through a document server in a process of its own (its memory measured from
 * /proc), aborted uploads, and two instances sharing one blob directory.
 */
import { closedPort } from '@tessera/kit/testing';
import { download, filesUnder, http, MB, rssOf, serviceHeaders, spawnDocuments, startDocuments, testEnv, token, until, upload, type Env } from './harness';

let env: Env;
let server: Awaited<ReturnType<typeof spawnDocuments>>;
let tok: string;

beforeAll(async () => {
  env = await testEnv('transfer');
  server = await spawnDocuments(env, await closedPort());
  tok = await token('alice', ['app1']);
});
afterAll(async () => {
  await server?.stop();
  await env?.drop();
});

/** Peak RSS of the server above its idle RSS while `work` runs, sampled every 20 ms. */
async function peakAboveIdle(work: () => Promise<unknown>): Promise<{ idle: number; peak: number }> {
  const pid = server.child.pid!;
  const idle = rssOf(pid);
  let peak = idle;
  const t = setInterval(() => (peak = Math.max(peak, rssOf(pid))), 20);
  try {
    await work();
  } finally {
    clearInterval(t);
  }
  peak = Math.max(peak, rssOf(pid));
  return { idle, peak };
}

test('a 100 MB file goes in and out streamed: same bytes, and the server holds well under 100 MB more than idle', async () => {
  // Warm-up: the first upload and download load the code paths (and grow the heap) once.
  const warm = await upload(server.url, { token: tok, size: 2 * MB, seed: 7, fields: { app_id: 'app1' } });
  await download(server.url, `/documents/${warm.json.id}`, { token: tok });

  let up!: Awaited<ReturnType<typeof upload>>;
  const inMem = await peakAboveIdle(async () => (up = await upload(server.url, { token: tok, size: 100 * MB, seed: 1, fields: { app_id: 'app1', tags: 'big' } })));
  expect(up.status).toBe(201);
  expect(up.json).toMatchObject({ size: 100 * MB, sha256: up.sha256, content_type: 'application/octet-stream' });

  let down!: Awaited<ReturnType<typeof download>>;
  const outMem = await peakAboveIdle(async () => (down = await download(server.url, `/documents/${up.json.id}`, { token: tok })));
  expect(down.status).toBe(200);
  expect(down.headers['content-length']).toBe(String(100 * MB));
  expect(down.size).toBe(100 * MB);
  expect(down.sha256).toBe(up.sha256);

  const mb = (n: number) => Math.round((n / MB) * 10) / 10;
  console.log(
    `100 MB upload: ${Math.round((100 / up.ms) * 1000)} MB/s, server RSS idle ${mb(inMem.idle)} MB, peak +${mb(inMem.peak - inMem.idle)} MB; download: ${Math.round((100 / down.ms) * 1000)} MB/s, peak +${mb(outMem.peak - outMem.idle)} MB`,
  );
  expect(inMem.peak - inMem.idle).toBeLessThan(50 * MB);
  expect(outMem.peak - outMem.idle).toBeLessThan(50 * MB);

  // A range from the middle of the big file.
  const mid = await download(server.url, `/documents/${up.json.id}`, { token: tok, headers: { range: `bytes=${50 * MB}-${50 * MB + 9}` } });
  expect(mid.status).toBe(206);
  expect(mid.size).toBe(10);
});

test('an upload aborted half way leaves neither a row nor a blob', async () => {
  const before = filesUnder(env.BLOB_DIR);
  const count = async () => (await http(server.url, 'GET', '/documents?limit=200', { headers: serviceHeaders })).json.documents.length;
  const rows = await count();
  const r = await upload(server.url, { token: tok, size: 20 * MB, seed: 3, abortAfter: 5 * MB, fields: { app_id: 'app1' } });
  expect(r.status).toBe(0);
  // The temporary file goes once the server sees the connection close.
  await until(() => filesUnder(env.BLOB_DIR).join() === before.join(), 5_000, 'the temporary blob to go');
  expect(await count()).toBe(rows);
  // Aborted before the file part even began: nothing either.
  await upload(server.url, { token: tok, size: 1 * MB, abortAfter: 0, fields: { app_id: 'app1' } });
  await new Promise((res) => setTimeout(res, 300));
  expect(filesUnder(env.BLOB_DIR)).toEqual(before);
  expect(await count()).toBe(rows);
  expect((await http(server.url, 'GET', '/health')).status).toBe(200);
});

test('two instances on one directory and database share blobs: uploaded through one, read and deduplicated through the other', async () => {
  const [a, b] = [await startDocuments(env), await startDocuments(env)];
  try {
    const blobs = () => filesUnder(env.BLOB_DIR).filter((f) => f.startsWith('blobs')).length;
    const start = blobs();
    const up = await upload(a.url, { token: tok, size: 3 * MB, seed: 11, fields: { app_id: 'app1' } });
    const via = await download(b.url, `/documents/${up.json.id}`, { token: tok });
    expect(via.sha256).toBe(up.sha256);
    const again = await upload(b.url, { token: tok, size: 3 * MB, seed: 11, fields: { app_id: 'app1' } });
    expect(again.json.sha256).toBe(up.json.sha256);
    expect(blobs()).toBe(start + 1);
    // Deleted through each: the blob goes with the second.
    await http(a.url, 'DELETE', `/documents/${again.json.id}`, { token: tok });
    expect(blobs()).toBe(start + 1);
    await http(b.url, 'DELETE', `/documents/${up.json.id}`, { token: tok });
    expect(blobs()).toBe(start);
  } finally {
    await Promise.all([a.close(), b.close()]);
  }
});

test('the same bytes uploaded at once through two instances, while their last copy is deleted, end stored and readable', async () => {
  const [a, b] = [await startDocuments(env), await startDocuments(env)];
  try {
    const first = await upload(a.url, { token: tok, size: 1 * MB, seed: 21, fields: { app_id: 'app1' } });
    const [del, x, y] = await Promise.all([
      http(b.url, 'DELETE', `/documents/${first.json.id}`, { token: tok }),
      upload(a.url, { token: tok, size: 1 * MB, seed: 21, fields: { app_id: 'app1' } }),
      upload(b.url, { token: tok, size: 1 * MB, seed: 21, fields: { app_id: 'app1' } }),
    ]);
    expect([del.status, x.status, y.status]).toEqual([200, 201, 201]);
    for (const d of [x, y]) expect((await download(a.url, `/documents/${d.json.id}`, { token: tok })).sha256).toBe(first.sha256);
  } finally {
    await Promise.all([a.close(), b.close()]);
  }
});

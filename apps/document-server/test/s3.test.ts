/**
 * The S3 blob store against s3rver (a local S3-compatible server from npm): the same 100 MB
 * round trip as the directory store, with the server in its own process and its memory
 * measured; deduplication, deletion and aborts seen in the bucket; two instances sharing it.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { closedPort, spawnService, type ServiceProcess } from '@tessera/kit/testing';
import { download, http, MB, ROOT, rssOf, spawnDocuments, startDocuments, testEnv, token, until, upload, type Env } from './harness';

const BUCKET = 'tessera-docs';
let env: Env;
let s3: ServiceProcess;
let s3Dir: string;
let endpoint: string;
let vars: Record<string, string>;
let tok: string;
let client: S3Client;

beforeAll(async () => {
  env = await testEnv('s3');
  s3Dir = mkdtempSync(join(tmpdir(), 's3rver-'));
  const port = await closedPort();
  s3 = await spawnService({ name: 's3rver', entry: join(ROOT, 'apps/document-server/test/s3rver-process.ts'), cwd: ROOT, env: { PORT: String(port), DIR: s3Dir, BUCKET }, ready: { log: 's3rver ready' } });
  endpoint = `http://127.0.0.1:${port}`;
  vars = { BLOB_STORE: 's3', S3_BUCKET: BUCKET, S3_ENDPOINT: endpoint, S3_ACCESS_KEY_ID: 'S3RVER', S3_SECRET_ACCESS_KEY: 'S3RVER', S3_PREFIX: 'test' };
  client = new S3Client({ region: 'us-east-1', endpoint, forcePathStyle: true, credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' } });
  tok = await token('alice', ['app1']);
});
afterAll(async () => {
  client?.destroy();
  await s3?.stop();
  rmSync(s3Dir, { recursive: true, force: true });
  await env?.drop();
});

async function keys(prefix: string): Promise<string[]> {
  const r = await client.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: prefix }));
  return (r.Contents ?? []).map((o) => o.Key!).sort();
}

test('a 100 MB round trip through the S3 store: same bytes, one object under its hash, memory well under 100 MB above idle', async () => {
  const server = await spawnDocuments(env, await closedPort(), vars);
  try {
    const warm = await upload(server.url, { token: tok, size: 9 * MB, seed: 5, fields: { app_id: 'app1' } });
    expect(warm.status).toBe(201);
    const pid = server.child.pid!;
    const idle = rssOf(pid);
    let peak = idle;
    const t = setInterval(() => (peak = Math.max(peak, rssOf(pid))), 20);
    const up = await upload(server.url, { token: tok, size: 100 * MB, seed: 1, fields: { app_id: 'app1' } });
    const down = await download(server.url, `/documents/${up.json.id}`, { token: tok });
    clearInterval(t);
    expect(up.status).toBe(201);
    expect(down.size).toBe(100 * MB);
    expect(down.sha256).toBe(up.sha256);
    console.log(`S3 (s3rver) 100 MB: upload ${Math.round((100 / up.ms) * 1000)} MB/s, download ${Math.round((100 / down.ms) * 1000)} MB/s, server RSS idle ${Math.round(idle / MB)} MB, peak +${Math.round((peak - idle) / MB)} MB`);
    // Two 5 MB parts in flight plus the one filling, and garbage not yet collected: ~35-55 MB measured.
    expect(peak - idle).toBeLessThan(70 * MB);
    expect(await keys('test/blobs/')).toEqual(expect.arrayContaining([`test/blobs/${up.sha256}`, `test/blobs/${warm.sha256}`]));
    expect(await keys('test/tmp/')).toEqual([]);
    const part = await download(server.url, `/documents/${up.json.id}`, { token: tok, headers: { range: 'bytes=10-19' } });
    expect([part.status, part.size]).toEqual([206, 10]);
  } finally {
    await server.stop();
  }
});

test('two instances on one bucket share blobs; the same bytes are one object; the last delete removes it; an abort leaves nothing', async () => {
  const [a, b] = [await startDocuments(env, vars), await startDocuments(env, vars)];
  try {
    const up = await upload(a.url, { token: tok, content: 'shared through S3', fields: { app_id: 'app1' } });
    expect((await http(b.url, 'GET', `/documents/${up.json.id}`, { token: tok })).text).toBe('shared through S3');
    const again = await upload(b.url, { token: tok, content: 'shared through S3', fields: { app_id: 'app1' } });
    const blob = `test/blobs/${up.json.sha256}`;
    expect((await keys('test/blobs/')).filter((k) => k === blob)).toHaveLength(1);
    await http(b.url, 'DELETE', `/documents/${up.json.id}`, { token: tok });
    expect(await keys('test/blobs/')).toContain(blob);
    await http(a.url, 'DELETE', `/documents/${again.json.id}`, { token: tok });
    expect(await keys('test/blobs/')).not.toContain(blob);

    const blobsBefore = await keys('test/blobs/');
    await upload(a.url, { token: tok, size: 20 * MB, seed: 8, abortAfter: 12 * MB, fields: { app_id: 'app1' } });
    await until(async () => (await keys('test/tmp/')).length === 0, 10_000, 'the temporary object to go');
    expect(await keys('test/blobs/')).toEqual(blobsBefore);
    const big = await upload(a.url, { token: tok, size: 20 * MB, seed: 8, fields: { app_id: 'app1' } });
    expect(big.status).toBe(201);
    expect((await download(b.url, `/documents/${big.json.id}`, { token: tok })).sha256).toBe(big.sha256);
    expect((await http(a.url, 'GET', '/ready')).json.checks.blobs.status).toBe('ok');
  } finally {
    await Promise.all([a.close(), b.close()]);
  }
});

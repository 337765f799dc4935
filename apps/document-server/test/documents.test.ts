/**
 * The document server over HTTP: the exact shapes of every route, tags and their counts, filters
 * and pages, limits, and who reaches what. A real server on a fresh schema and blob directory.
 */
import { parse } from 'content-disposition';
import fc from 'fast-check';
import { filesUnder, http, serviceHeaders, sha256, startDocuments, testEnv, token, upload, type Env, type Instance } from './harness';

let env: Env;
let ds: Instance;
let alice: string;
let op: string;

beforeAll(async () => {
  env = await testEnv('api');
  ds = await startDocuments(env, { DOCUMENT_MAX_BYTES: String(64 * 1024) });
  alice = await token('alice', ['app1']);
  op = await token('olga', ['app1'], true);
});
afterAll(async () => {
  await ds?.close();
  await env?.drop();
});

const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;
const put = (content: string, fields: Record<string, string | string[]>, tok = alice, filename = 'notes.txt') => upload(ds.url, { token: tok, content, filename, fields: { app_id: 'app1', ...fields } });

test('POST /documents answers 201 with the document; metadata and bytes read back', async () => {
  const up = await put('hello documents\n', { tags: 'ai,review', description: 'first notes' });
  expect(up.status).toBe(201);
  expect(up.json).toEqual({
    id: expect.stringMatching(/^[0-9a-f-]{36}$/),
    filename: 'notes.txt',
    content_type: 'text/plain',
    size: 16,
    sha256: sha256('hello documents\n'),
    tags: ['ai', 'review'],
    description: 'first notes',
    created_at: expect.stringMatching(ISO),
    updated_at: up.json.created_at,
    uploaded_by: 'alice',
    app_id: 'app1',
  });
  const meta = await http(ds.url, 'GET', `/documents/${up.json.id}/metadata`, { token: alice });
  expect(meta.json).toEqual(up.json);
  const file = await http(ds.url, 'GET', `/documents/${up.json.id}`, { token: alice });
  expect(file.status).toBe(200);
  expect(file.text).toBe('hello documents\n');
  expect(file.headers['content-type']).toBe('text/plain; charset=utf-8');
  expect(parse(file.headers['content-disposition']!)).toEqual({ type: 'attachment', parameters: { filename: 'notes.txt' } });
  expect(file.headers.etag).toBe(`"${up.json.sha256}"`);
});

test('tags come as a JSON array, repeated fields or a metadata JSON field; content type is sniffed, not taken from the client', async () => {
  const png = Buffer.concat([Buffer.from('89504e470d0a1a0a0000000d49484452', 'hex'), Buffer.alloc(32)]);
  const a = await upload(ds.url, { token: alice, content: png, filename: 'pic.txt', fields: { app_id: 'app1', tags: '["img","x"]' } });
  expect(a.json).toMatchObject({ content_type: 'image/png', tags: ['img', 'x'], filename: 'pic.txt' });
  const b = await put('<html><script>alert(1)</script>', { tags: ['one', 'two', 'one'] }, alice, 'page.html');
  expect(b.json).toMatchObject({ content_type: 'text/plain', tags: ['one', 'two'] });
  const c = await put('meta', { metadata: JSON.stringify({ tags: ['m'], description: 'from metadata' }) });
  expect(c.json).toMatchObject({ tags: ['m'], description: 'from metadata' });
  const both = await put('meta', { tags: 'x', metadata: JSON.stringify({ tags: ['m'] }) });
  expect(both.status).toBe(400);
  expect(both.json.error.message).toContain('tags');
});

test('GET /documents/tags counts, most used first then by name, and follows PATCH and DELETE', async () => {
  const e = await testEnv('tags');
  const d = await startDocuments(e);
  try {
    const mk = (tags: string) => upload(d.url, { token: alice, content: `doc ${tags} ${Math.random()}`, fields: { app_id: 'app1', tags } });
    const docs = [await mk('ai,review'), await mk('ai,config'), await mk('ai,review'), await mk('beta')];
    const tags = async () => (await http(d.url, 'GET', '/documents/tags', { token: alice })).json;
    expect(await tags()).toEqual({ tags: [{ name: 'ai', count: 3 }, { name: 'review', count: 2 }, { name: 'beta', count: 1 }, { name: 'config', count: 1 }] });

    const before = docs[0].json;
    const patched = await http(d.url, 'PATCH', `/documents/${before.id}`, { token: alice, body: { tags: ['config', 'zeta'] } });
    expect(patched.status).toBe(200);
    expect(patched.json).toEqual({ ...before, tags: ['config', 'zeta'], updated_at: expect.stringMatching(ISO) });
    expect(Date.parse(patched.json.updated_at)).toBeGreaterThan(Date.parse(before.updated_at));
    expect(await tags()).toEqual({ tags: [{ name: 'ai', count: 2 }, { name: 'config', count: 2 }, { name: 'beta', count: 1 }, { name: 'review', count: 1 }, { name: 'zeta', count: 1 }] });

    // Only the description: the tags stay; null clears it.
    const desc = await http(d.url, 'PATCH', `/documents/${before.id}`, { token: alice, body: { description: 'now described' } });
    expect(desc.json).toMatchObject({ tags: ['config', 'zeta'], description: 'now described' });
    expect((await http(d.url, 'PATCH', `/documents/${before.id}`, { token: alice, body: { description: null } })).json.description).toBeNull();

    const del = await http(d.url, 'DELETE', `/documents/${docs[1].json.id}`, { token: alice });
    expect(del.json).toEqual({ success: true, id: docs[1].json.id, message: expect.any(String) });
    expect(await tags()).toEqual({ tags: [{ name: 'ai', count: 1 }, { name: 'beta', count: 1 }, { name: 'config', count: 1 }, { name: 'review', count: 1 }, { name: 'zeta', count: 1 }] });
    expect((await http(d.url, 'GET', `/documents/${docs[1].json.id}/metadata`, { token: alice })).status).toBe(404);
  } finally {
    await d.close();
    await e.drop();
  }
});

test('GET /documents filters by tags, content type and text, newest first, in cursor pages', async () => {
  const e = await testEnv('list');
  const d = await startDocuments(e);
  try {
    const ids: string[] = [];
    for (let i = 0; i < 7; i++) {
      const r = await upload(d.url, { token: alice, content: `report number ${i}`, filename: `report-${i}.txt`, fields: { app_id: 'app1', tags: i % 2 ? 'odd,all' : 'even,all', description: i === 3 ? 'The Quarterly summary' : 'plain' } });
      ids.push(r.json.id);
    }
    await upload(d.url, { token: alice, content: Buffer.from('%PDF-1.4\n'), filename: 'paper.pdf', fields: { app_id: 'app1' } });
    const list = async (q: string) => (await http(d.url, 'GET', `/documents?${q}`, { token: alice })).json;

    const odd = await list('tag=odd');
    expect(odd.documents.map((x: any) => x.id)).toEqual([ids[5], ids[3], ids[1]]);
    expect(odd.next_cursor).toBeNull();
    expect((await list('tag=odd&tag=all')).documents).toHaveLength(3);
    expect((await list('tags=odd,even')).documents).toHaveLength(0);
    expect((await list('q=quarterly')).documents.map((x: any) => x.id)).toEqual([ids[3]]);
    expect((await list('q=report-6')).documents.map((x: any) => x.id)).toEqual([ids[6]]);
    expect((await list('q=%25')).documents).toHaveLength(0);
    expect((await list('content_type=application/pdf')).documents.map((x: any) => x.filename)).toEqual(['paper.pdf']);
    expect((await list('content_type=text/*')).documents).toHaveLength(7);

    const seen: string[] = [];
    let cursor: string | null = '';
    while (cursor !== null) {
      const page: any = await list(`tag=all&limit=3${cursor ? `&cursor=${cursor}` : ''}`);
      seen.push(...page.documents.map((x: any) => x.id));
      cursor = page.next_cursor;
    }
    expect(seen).toEqual([...ids].reverse());

    const bad = await http(d.url, 'GET', '/documents?cursor=nonsense', { token: alice });
    expect(bad.status).toBe(400);
    expect((await http(d.url, 'GET', '/documents?tag=no%20spaces', { token: alice })).status).toBe(400);
  } finally {
    await d.close();
    await e.drop();
  }
});

test('limits: a file over the limit is 413 and leaves nothing; 21 tags, a bad tag, a 51-character tag are 400', async () => {
  const before = filesUnder(env.BLOB_DIR);
  const big = await upload(ds.url, { token: alice, size: 200 * 1024, fields: { app_id: 'app1' } });
  expect(big.status).toBe(413);
  expect(big.json.error.code).toBe('PAYLOAD_TOO_LARGE');
  // Declared small enough to be read, then larger than the limit inside: stopped while streaming.
  const streamed = await upload(ds.url, { token: alice, size: 64 * 1024 + 1, fields: { app_id: 'app1' } });
  expect(streamed.status).toBe(413);
  expect(filesUnder(env.BLOB_DIR)).toEqual(before);
  const atLimit = await upload(ds.url, { token: alice, size: 64 * 1024, seed: 99, fields: { app_id: 'app1' } });
  expect(atLimit.status).toBe(201);

  const tags21 = Array.from({ length: 21 }, (_, i) => `t${i}`).join(',');
  for (const [tags, path] of [[tags21, 'form.tags'], ['ok,not ok', 'form.tags.1'], ['x'.repeat(51), 'form.tags.0'], ['dots.are.out', 'form.tags.0']]) {
    const r = await put('tags', { tags });
    expect(r.status).toBe(400);
    expect(r.json.error.details.issues[0].path).toBe(path);
  }
  expect((await put('tags', { tags: Array.from({ length: 20 }, (_, i) => `t${i}`).join(',') })).status).toBe(201);
  const doc = (await put('patch me', {})).json;
  for (const body of [{ tags: tags21.split(',') }, { tags: ['bad tag'] }, { description: 'x\u0000' }, { filename: 'nope' }]) {
    const r = await http(ds.url, 'PATCH', `/documents/${doc.id}`, { token: alice, body });
    expect(r.status).toBe(400);
  }
  expect(filesUnder(env.BLOB_DIR).filter((f) => f.startsWith('tmp'))).toEqual([]);
});

test('form mistakes are 400s naming the field, never 5xx', async () => {
  const several = await token('sam', ['app1', 'app2']);
  expect((await upload(ds.url, { token: several, content: 'x', fields: {} })).json.error.details.issues[0].path).toBe('form.app_id');
  expect((await put('x', { colour: 'red' })).json.error.message).toContain('colour');
  expect((await put('x', { metadata: '{nope' })).json.error.message).toContain('metadata');
  expect((await put('x', { metadata: '{"tags":["a"],"extra":1}' })).status).toBe(400);
  const noFile = await http(ds.url, 'POST', '/documents', { token: alice, raw: '--b\r\nContent-Disposition: form-data; name="app_id"\r\n\r\napp1\r\n--b--\r\n', headers: { 'content-type': 'multipart/form-data; boundary=b' } });
  expect(noFile.status).toBe(400);
  expect(noFile.json.error.message).toContain('file');
  for (const [raw, type] of [['x', 'multipart/form-data'], ['{}', 'application/json'], ['--b\r\nContent-Disposition: form-data; name="file"; filename="a"\r\n\r\nhal', 'multipart/form-data; boundary=b']]) {
    const r = await http(ds.url, 'POST', '/documents', { token: alice, raw, headers: { 'content-type': type } });
    expect(r.status).toBe(400);
  }
  expect((await http(ds.url, 'GET', '/documents/not-a-uuid', { token: alice })).status).toBe(400);
  expect((await http(ds.url, 'GET', '/documents/..%2f..%2fetc%2fpasswd', { token: alice })).status).toBe(400);
  expect((await http(ds.url, 'GET', '/health')).status).toBe(200);
});

test('the app comes from a token naming one; app_id is needed only to choose among several (issue 18, item 4)', async () => {
  // Document 001 §3's upload: the file with tags and a description, no app_id.
  const one = await upload(ds.url, { token: alice, content: 'no app named', filename: 'plain.txt', fields: { tags: 'ai', description: 'from the document' } });
  expect(one.status).toBe(201);
  expect(one.json).toMatchObject({ app_id: 'app1', uploaded_by: 'alice', tags: ['ai'], description: 'from the document' });
  expect((await http(ds.url, 'GET', `/documents/${one.json.id}/metadata`, { token: alice })).json.app_id).toBe('app1');

  // Several apps, any app (no apps claim) or the service key: app_id chooses, and its absence is a 400 naming it.
  const several = await token('sam', ['app1', 'app2']);
  const any = await token('ann', '*');
  for (const who of [{ token: several }, { token: any }, { headers: serviceHeaders }]) {
    const r = await upload(ds.url, { ...who, content: 'which app?', fields: { tags: 'ai' } });
    expect(r.status).toBe(400);
    expect(r.json.error.details.issues).toEqual([expect.objectContaining({ path: 'form.app_id' })]);
  }
  expect(filesUnder(env.BLOB_DIR).filter((f) => f.startsWith('tmp'))).toEqual([]);
  const chosen = await upload(ds.url, { token: several, content: 'app2 chosen', fields: { app_id: 'app2' } });
  expect(chosen.json).toMatchObject({ app_id: 'app2', uploaded_by: 'sam' });
  // Naming the token's own app still works; naming another is still a 403.
  expect((await upload(ds.url, { token: alice, content: 'named', fields: { app_id: 'app1' } })).json.app_id).toBe('app1');
  expect((await upload(ds.url, { token: alice, content: 'other', fields: { app_id: 'app2' } })).status).toBe(403);
});

test('the same bytes uploaded twice are stored once; the blob goes with the last document holding it', async () => {
  const blobs = () => filesUnder(env.BLOB_DIR).filter((f) => f.startsWith('blobs'));
  const start = blobs().length;
  const a = await put('identical bytes', { tags: 'a' }, alice, 'a.txt');
  const b = await put('identical bytes', {}, await token('bob', ['app1']), 'b.txt');
  expect(a.json.id).not.toBe(b.json.id);
  expect(a.json.sha256).toBe(b.json.sha256);
  expect(blobs().length).toBe(start + 1);
  expect(blobs()).toContain(`blobs/${a.json.sha256.slice(0, 2)}/${a.json.sha256}`);
  await http(ds.url, 'DELETE', `/documents/${a.json.id}`, { token: alice });
  expect(blobs().length).toBe(start + 1);
  expect((await http(ds.url, 'GET', `/documents/${b.json.id}`, { token: op })).text).toBe('identical bytes');
  await http(ds.url, 'DELETE', `/documents/${b.json.id}`, { token: op });
  expect(blobs().length).toBe(start);
});

const cursorOf = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
const UUID = '0b6f3c2e-8d1a-4e5b-9c7d-2a1f0e3d4c5b';

test('a cursor whose numbers PostgreSQL cannot hold is a 400 naming cursor, never a 500', async () => {
  const list = (q: string) => http(ds.url, 'GET', `/documents?${q}`, { token: alice });
  for (const v of [[1e20, UUID], [-1e20, UUID], [8.64e15 + 1, UUID], [-62_135_596_800_001, UUID], [253_402_300_800_000, UUID], [1.5, UUID], [2 ** 53, UUID], [0, '------------------------------------'], [0, 'zzzzzzzz-zzzz-zzzz-zzzz-zzzzzzzzzzzz']]) {
    const r = await list(`cursor=${cursorOf(v)}`);
    expect([r.status, r.json.error.message]).toEqual([400, expect.stringMatching(/^invalid query: cursor: /)]);
    expect(r.json.error.details.issues[0].path).toBe('query.cursor');
  }
  expect((await list(`cursor=${cursorOf([1e20, UUID])}`)).json.error.message).toContain('its time');
  expect((await list(`cursor=${cursorOf([0, '------------------------------------'])}`)).json.error.message).toContain('its id');
  // The ends of the range are pages (empty or not), not errors.
  for (const t of [-62_135_596_800_000, 0, 253_402_300_799_999]) expect((await list(`cursor=${cursorOf([t, UUID])}`)).status).toBe(200);
  for (const limit of ['0', '201', '1e20', '-1', '1.5', 'NaN', 'Infinity', '9'.repeat(400)]) {
    const r = await list(`limit=${limit}`);
    expect([r.status, r.json.error.message]).toEqual([400, expect.stringContaining('limit')]);
  }
});

test('property: whatever the list query holds, never a 5xx, always the error shape, and the process lives', async () => {
  const pct = (s: string) => [...Buffer.from(s)].map((b) => (/[A-Za-z0-9_.~-]/.test(String.fromCharCode(b)) ? String.fromCharCode(b) : `%${b.toString(16).padStart(2, '0')}`)).join('');
  const big = fc.constantFrom(1e20, -1e20, 8.64e15, 8.64e15 + 1, -8.64e15 - 1, 2 ** 53, 2 ** 63, 1e308, -0, 0.5, Number.MAX_SAFE_INTEGER, 253_402_300_800_000, -62_135_596_800_001);
  const number = fc.oneof(big, fc.integer(), fc.double(), fc.bigInt().map((b) => Number(b)));
  const id = fc.oneof(fc.uuid(), fc.constantFrom(UUID, '-'.repeat(36), '0'.repeat(36), ''), fc.string({ maxLength: 40 }));
  const cursorPart = fc.oneof(
    { weight: 4, arbitrary: fc.tuple(number, id).map(cursorOf) },
    fc.jsonValue({ maxDepth: 2 }).map(cursorOf),
    fc.tuple(number, id).map((t) => cursorOf(t).slice(1)),
    fc.string({ maxLength: 80 }).map(pct),
    fc.constantFrom('', 'x'.repeat(600), '%00', '%ZZ', cursorOf([1e20, UUID]), Buffer.from('[1e400,"x"]').toString('base64url'), Buffer.from('[99999999999999999999999999,"' + UUID + '"]').toString('base64url')),
  );
  const scalar = fc.oneof(number.map(String), fc.string({ maxLength: 40 }).map(pct), fc.constantFrom('', '1e20', '-1', 'NaN', 'Infinity', '9'.repeat(400), 'image/*', 'app1', '%00', '%ED%A0%80'));
  const pair = fc.oneof(
    { weight: 3, arbitrary: cursorPart.map((v) => ['cursor', v] as const) },
    { weight: 3, arbitrary: fc.tuple(fc.constantFrom('limit', 'offset', 'limit[]', 'cursor[]', 'cursor[a]'), scalar) },
    { weight: 2, arbitrary: fc.tuple(fc.constantFrom('app_id', 'tag', 'tags', 'content_type', 'q', 'uploaded_by', 'tag[]', 'tag[0]', 'q[a]', '__proto__[x]', 'created_at', 'since'), scalar) },
  );
  await fc.assert(
    fc.asyncProperty(fc.array(pair, { maxLength: 5 }), async (pairs) => {
      const r = await http(ds.url, 'GET', `/documents?${pairs.map(([k, v]) => `${k}=${v}`).join('&')}`, { token: alice });
      expect(r.status).toBeLessThan(500);
      if (r.status === 200) expect(Array.isArray(r.json.documents)).toBe(true);
      else expect(r.json).toMatchObject({ error: { code: expect.any(String), message: expect.any(String) } });
    }),
    { numRuns: Number(process.env.FUZZ_RUNS ?? 300) },
  );
  expect((await http(ds.url, 'GET', '/health')).status).toBe(200);
});

test('odd and hostile filenames are labels: no path, no header injection, both filename forms', async () => {
  const cases: [string, string][] = [
    ['../../etc/passwd', 'passwd'],
    ['C:\\Users\\me\\report.pdf', 'report.pdf'],
    ['..', 'upload'],
    // Browsers send a quote as %22 inside the quoted parameter; it stays a label.
    ['résumé "final".txt', 'résumé %22final%22.txt'],
    ['a%0d%0aSet-Cookie: x=1.txt', 'a%0d%0aSet-Cookie: x=1.txt'],
  ];
  for (const [sent, stored] of cases) {
    const up = await put('name test', {}, alice, sent);
    expect(up.json.filename).toBe(stored);
    const file = await http(ds.url, 'GET', `/documents/${up.json.id}`, { token: alice });
    const cd = file.headers['content-disposition'] as string;
    expect(cd).not.toMatch(/[\r\n]/);
    const parsed = parse(cd);
    expect(parsed.type).toBe('attachment');
    expect(parsed.parameters.filename).toBe(stored);
    expect(cd.replace(/filename\*=[^;]*/, '')).not.toContain('/');
    expect(file.headers['set-cookie']).toBeUndefined();
  }
  const utf = await put('x', {}, alice, 'résumé.txt');
  const cd = (await http(ds.url, 'GET', `/documents/${utf.json.id}`, { token: alice })).headers['content-disposition'];
  expect(cd).toBe(`attachment; filename="r?sum?.txt"; filename*=UTF-8''r%C3%A9sum%C3%A9.txt`);
  // Control characters: raw ones break the part header (400); encoded ones (RFC 5987) become "_".
  const rawPost = (param: string) =>
    http(ds.url, 'POST', '/documents', {
      token: alice,
      raw: Buffer.from(`--b\r\nContent-Disposition: form-data; name="app_id"\r\n\r\napp1\r\n--b\r\nContent-Disposition: form-data; name="file"; ${param}\r\n\r\nzz\r\n--b--\r\n`),
      headers: { 'content-type': 'multipart/form-data; boundary=b' },
    });
  expect((await rawPost('filename="a\u0007b.txt"')).status).toBe(400);
  const encoded = await rawPost("filename*=UTF-8''a%0D%0Ab%07c%00.txt");
  expect(encoded.status).toBe(201);
  expect(encoded.json.filename).toBe('a__b_c\ufffd.txt');
});

test('bidi controls and invisible format characters are dropped from filenames: the true extension shows, in the reply, the metadata and Content-Disposition', async () => {
  const cases: [string, string][] = [
    ['\u202Egnp.exe', 'gnp.exe'],
    ['invoice\u202Efdp.exe', 'invoicefdp.exe'],
    ['photo\u2066\u2067\u2068gpj.scr\u2069', 'photogpj.scr'],
    ['\u202A\u202B\u202C\u202D\u200E\u200F\u061Creport.pdf', 'report.pdf'],
    ['a\u200B\u200C\u200D\u2060\uFEFF\u00AD.png\u3164\u115F.exe', 'a.png.exe'],
    ['tag\u{E0041}\u{E0042}s.txt', 'tags.txt'],
    ['\u202E', 'upload'],
  ];
  for (const [sent, stored] of cases) {
    const up = await put('bidi test', {}, alice, sent);
    expect(up.status).toBe(201);
    expect(up.json.filename).toBe(stored);
    expect((await http(ds.url, 'GET', `/documents/${up.json.id}/metadata`, { token: alice })).json.filename).toBe(stored);
    const cd = (await http(ds.url, 'GET', `/documents/${up.json.id}`, { token: alice })).headers['content-disposition'] as string;
    expect(parse(cd).parameters.filename).toBe(stored);
    expect(decodeURIComponent(cd)).not.toMatch(/[\p{Cf}]/u);
  }
  // RFC 5987 `filename*` carries the override percent-encoded: it is dropped all the same.
  const raw = await http(ds.url, 'POST', '/documents', {
    token: alice,
    raw: Buffer.from(`--b\r\nContent-Disposition: form-data; name="app_id"\r\n\r\napp1\r\n--b\r\nContent-Disposition: form-data; name="file"; filename*=UTF-8''%E2%80%AEgnp.exe\r\n\r\nzz\r\n--b--\r\n`),
    headers: { 'content-type': 'multipart/form-data; boundary=b' },
  });
  expect(raw.status).toBe(201);
  expect(raw.json.filename).toBe('gnp.exe');
});

test('Range answers 206 with the bytes asked for; an ETag the client holds answers 304', async () => {
  const text = 'abcdefghijklmnopqrstuvwxyz';
  const up = await put(text, {});
  const get = (headers: Record<string, string>) => http(ds.url, 'GET', `/documents/${up.json.id}`, { token: alice, headers });
  const part = await get({ range: 'bytes=2-5' });
  expect(part.status).toBe(206);
  expect(part.text).toBe('cdef');
  expect(part.headers['content-range']).toBe('bytes 2-5/26');
  expect(part.headers['content-length']).toBe('4');
  expect((await get({ range: 'bytes=-3' })).text).toBe('xyz');
  expect((await get({ range: 'bytes=20-' })).text).toBe('uvwxyz');
  const outside = await get({ range: 'bytes=100-200' });
  expect(outside.status).toBe(416);
  expect(outside.headers['content-range']).toBe('bytes */26');
  expect((await get({ range: 'chars=1-2' })).status).toBe(200);
  expect((await get({ range: 'bytes=0-1', 'if-range': '"stale"' })).status).toBe(200);
  expect((await get({ range: 'bytes=0-1', 'if-range': `"${up.json.sha256}"` })).status).toBe(206);

  const etag = (await get({})).headers.etag as string;
  const same = await get({ 'if-none-match': etag });
  expect(same.status).toBe(304);
  expect(same.text).toBe('');
  expect((await get({ 'if-none-match': `"other", W/${etag}` })).status).toBe(304);
  expect((await get({ 'if-none-match': '"other"' })).status).toBe(200);
});

test('another app is refused on every route; a user reaches their own uploads, an operator all of the app', async () => {
  const mine = (await put('app1 secret', { tags: 'secret' })).json;
  const app2 = await token('carol', ['app2']);
  const app2op = await token('oscar', ['app2'], true);
  const bob = await token('bob', ['app1']);
  for (const tok of [app2, app2op, bob]) {
    expect((await http(ds.url, 'GET', `/documents/${mine.id}`, { token: tok })).status).toBe(404);
    expect((await http(ds.url, 'GET', `/documents/${mine.id}/metadata`, { token: tok })).status).toBe(404);
    expect((await http(ds.url, 'PATCH', `/documents/${mine.id}`, { token: tok, body: { tags: ['stolen'] } })).status).toBe(404);
    expect((await http(ds.url, 'DELETE', `/documents/${mine.id}`, { token: tok })).status).toBe(404);
    expect((await http(ds.url, 'GET', '/documents?tag=secret', { token: tok })).json.documents).toEqual([]);
    expect((await http(ds.url, 'GET', '/documents/tags', { token: tok })).json.tags.map((t: any) => t.name)).not.toContain('secret');
  }
  for (const tok of [app2, app2op]) {
    expect((await http(ds.url, 'GET', '/documents?app_id=app1', { token: tok })).status).toBe(403);
    expect((await http(ds.url, 'GET', '/documents/tags?app_id=app1', { token: tok })).status).toBe(403);
    expect((await upload(ds.url, { token: tok, content: 'x', fields: { app_id: 'app1' } })).status).toBe(403);
    // Refused also when app_id comes after the file.
    expect((await upload(ds.url, { token: tok, content: 'x', fields: { app_id: 'app1' }, fieldsAfter: true })).status).toBe(403);
  }
  expect((await upload(ds.url, { token: alice, content: 'x', fields: { app_id: 'app1', uploaded_by: 'mallory' } })).status).toBe(403);
  // The operator of app1 and the service key reach it; no token at all, a bad key: 401.
  expect((await http(ds.url, 'GET', `/documents/${mine.id}/metadata`, { token: op })).status).toBe(200);
  expect((await http(ds.url, 'GET', '/documents?tag=secret', { token: op })).json.documents).toHaveLength(1);
  expect((await http(ds.url, 'GET', `/documents/${mine.id}/metadata`, { headers: serviceHeaders })).status).toBe(200);
  expect((await http(ds.url, 'GET', `/documents/${mine.id}/metadata`)).status).toBe(401);
  expect((await http(ds.url, 'GET', '/documents', { headers: { 'x-tessera-service-key': 'wrong-key-0123456789' } })).status).toBe(401);
  // A service uploads for a user of any app.
  const svc = await upload(ds.url, { headers: serviceHeaders, content: 'from the runtime', fields: { app_id: 'app2', uploaded_by: 'carol' } });
  expect(svc.json).toMatchObject({ app_id: 'app2', uploaded_by: 'carol' });
  expect((await http(ds.url, 'GET', `/documents/${svc.json.id}/metadata`, { token: app2 })).status).toBe(200);
});

test('/openapi.json documents every route', async () => {
  const doc = (await http(ds.url, 'GET', '/openapi.json')).json;
  expect(Object.keys(doc.paths).sort()).toEqual(['/documents', '/documents/tags', '/documents/{id}', '/documents/{id}/metadata', '/health', '/ready']);
  expect((await http(ds.url, 'GET', '/ready')).json.checks).toMatchObject({ database: { status: 'ok' }, blobs: { status: 'ok' } });
});

/**
 * Property-based: every HTTP route of the runtime's OpenAPI document, with hostile bodies, path
 * segments and headers, against the real app built as main.ts builds it (HTTP process, no
 * embedded worker). Whatever a client sends: never a 5xx, always the error shape, the process
 * still answers /health.
 */
import fc from 'fast-check';
import { ErrorBody } from '@tessera/contracts';
import { call, type Reply } from '@tessera/kit/testing';
import { openapi } from '../src/app';
import { SERVICE_KEY, startRuntime, testEnv, token, type Env, type RuntimeInstance } from './harness';

const RUNS = Number(process.env.FUZZ_RUNS ?? 200);
let env: Env;
let rt: RuntimeInstance;
let tok: string;
let otherTok: string;
let chatId: string;
const unhandled: unknown[] = [];
const onUnhandled = (e: unknown) => unhandled.push(e);

beforeAll(async () => {
  process.on('unhandledRejection', onUnhandled);
  env = await testEnv('fuzzhttp');
  // No agent manager here (AGENTS_URL=off: the app has no agents): one that is down is a truthful 503, not hostile input's doing.
  rt = await startRuntime(env, { worker: false, extra: { AGENTS_URL: 'off' } });
  [tok, otherTok] = await Promise.all([token('fuzz'), token('someone-else')]);
  const r = await call(rt.url, 'POST', '/api/chats/app1/assistant/start', { token: tok, body: { user_id: 'fuzz' } });
  chatId = r.json.chat_id;
});
afterAll(async () => {
  process.off('unhandledRejection', onUnhandled);
  await rt?.close();
  await env?.dropSchema();
});

/* ------------------------------------------------------------------ what a hostile client sends */

const HOSTILE_TEXT = ['a\u0000b', '\ud800', 'x\udfff', '\u202e\u0000', '', ' ', '../../etc/passwd', '%00', '\r\nX-Injected: 1', '😀'.repeat(50), 'x'.repeat(40_000)];
const text = fc.oneof(fc.constantFrom(...HOSTILE_TEXT), fc.string(), fc.string({ unit: 'binary', maxLength: 40 }), fc.tuple(fc.string(), fc.constantFrom('\u0000', '\ud800', '\udc00')).map(([a, b]) => a + b + a));
const scalar = fc.oneof(text, fc.integer(), fc.double(), fc.constantFrom(1e308, -1e308, 2 ** 64, -0, true, false, null));
const deep = (levels: number, leaf: unknown = 1): unknown => {
  let v: unknown = leaf;
  for (let i = 0; i < levels; i++) v = i % 2 ? [v] : { a: v };
  return v;
};
const json: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 3, arbitrary: scalar },
  { weight: 3, arbitrary: fc.dictionary(text, fc.oneof(scalar, fc.array(text, { maxLength: 3 })), { minKeys: 1, maxKeys: 4 }) },
  { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 4 }) },
  { weight: 1, arbitrary: fc.integer({ min: 20, max: 3_000 }).map((n) => deep(n)) },
  { weight: 1, arbitrary: fc.tuple(fc.constantFrom(...HOSTILE_TEXT), fc.integer({ min: 0, max: 40 })).map(([s, n]) => ({ [s]: s, nested: deep(n, s) })) },
);

/** Percent-encodes the UTF-8 bytes (a lone surrogate becomes EF BF BD; encodeURIComponent would throw). */
const pct = (s: string) => [...Buffer.from(s)].map((b) => (/[A-Za-z0-9_.~-]/.test(String.fromCharCode(b)) ? String.fromCharCode(b) : `%${b.toString(16).padStart(2, '0')}`)).join('');
const BAD_SEGMENTS = ['%ZZ', '%E0%A4%A', '%', '%%', '%00', '%2F', '%2e%2e', '..', '%C0%AF', '%ED%A0%80', '%FF%FE', 'a%20b', '%u0041', 'x'.repeat(3_000)];
const segment = (valid: string) => fc.oneof({ weight: 8, arbitrary: fc.constant(valid) }, fc.constantFrom(...BAD_SEGMENTS), text.map((s) => pct(s.slice(0, 200))));

const CONTENT_TYPES = ['application/json', 'application/json; charset=utf-8', 'application/json; charset=utf-16', 'text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data', 'multipart/form-data; boundary=fz', 'application/xml', '*/*', 'garbage'];
const RAW_BODIES = ['{"a":', '1e999', '[' .repeat(100_000), '{"__proto__":{"polluted":1}}', '{"constructor":{"prototype":{"x":1}}}', '\u0000', '\xff\xfe{}', 'null', '"string"', '{"a":1}{"b":2}'];
const PRINTABLE = fc.stringMatching(/^[\x20-\x7e]{0,60}$/);

type Schema = { $ref?: string; properties?: Record<string, Schema>; required?: string[] };
const resolve = (s: Schema | undefined): Schema | undefined =>
  s?.$ref ? ((openapi as any).components.schemas[s.$ref.split('/').pop()!] as Schema) : s;

/** Plausible values by field name, so that some requests get past validation to the code behind it. */
const plausible = (): Record<string, unknown> => ({
  user_id: 'fuzz', userId: 'fuzz', app_id: 'app1', appId: 'app1', chat_id: chatId, chatId, workflow_name: 'assistant',
  message: 'hello', client_request_id: 'req-1', client_message_id: 'msg-1', event_id: 'no-such-event', context: { page: 'x' },
  initial_context: { tier: 'pro' }, ui_context: { theme: 'dark' }, response_data: { ok: true }, force_new: false, intent: 'context',
});

/** The plausible fields of a route with some replaced (often just one: what gets past the others' checks). */
function mutated(fields: string[], value: fc.Arbitrary<unknown>): fc.Arbitrary<Record<string, unknown>> {
  const good = plausible();
  const base = Object.fromEntries(fields.filter((f) => good[f] !== undefined).map((f) => [f, good[f]]));
  const one = fc.tuple(fc.constantFrom(...(fields.length ? fields : ['x'])), fc.oneof(text, value)).map(([f, v]) => ({ ...base, [f]: v }));
  const some = fc.tuple(...fields.map(() => fc.oneof({ weight: 2, arbitrary: fc.constant<unknown>(undefined) }, value)), fc.dictionary(text, json, { maxKeys: 2 })).map((vals) => {
    const body: Record<string, unknown> = { ...base, ...(vals.pop() as Record<string, unknown>) };
    fields.forEach((f, i) => vals[i] !== undefined && (body[f] = vals[i]));
    return body;
  });
  const drop = fc.subarray(fields).map((gone) => Object.fromEntries(Object.entries(base).filter(([k]) => !gone.includes(k))));
  return fc.oneof({ weight: 4, arbitrary: one }, { weight: 2, arbitrary: some }, { weight: 1, arbitrary: drop }, { weight: 1, arbitrary: fc.constant(base) });
}

/** A JSON body: the route's fields with hostile values, or any JSON at all, or bytes with any content type. */
function jsonBody(schema: Schema | undefined): fc.Arbitrary<{ raw: string | Buffer; type: string }> {
  const fields = Object.keys(schema?.properties ?? {});
  const deepField = fc.tuple(fc.constantFrom(...(fields.length ? fields : ['x'])), fc.integer({ min: 60, max: 50_000 })).map(([f, n]) => `{"${f}":${'{"a":'.repeat(n)}1${'}'.repeat(n)}}`);
  return fc.oneof(
    { weight: 6, arbitrary: mutated(fields, json).map((b) => ({ raw: JSON.stringify(b), type: 'application/json' })) },
    { weight: 1, arbitrary: json.map((v) => ({ raw: JSON.stringify(v) ?? 'null', type: 'application/json' })) },
    { weight: 1, arbitrary: deepField.map((raw) => ({ raw, type: 'application/json' })) },
    { weight: 1, arbitrary: fc.tuple(fc.constantFrom(...RAW_BODIES), fc.constantFrom(...CONTENT_TYPES)).map(([raw, type]) => ({ raw, type })) },
    { weight: 1, arbitrary: fc.tuple(fc.uint8Array({ maxLength: 300 }), fc.constantFrom(...CONTENT_TYPES)).map(([b, type]) => ({ raw: Buffer.from(b), type })) },
  );
}

/** A multipart body: hostile field values and filename bytes, sometimes cut short or with the wrong boundary. */
function multipartBody(schema: Schema | undefined): fc.Arbitrary<{ raw: string | Buffer; type: string }> {
  const fields = Object.keys(schema?.properties ?? {}).filter((f) => f !== 'file');
  const printable = (v: unknown) => (typeof v === 'string' ? v : JSON.stringify(v) ?? '');
  return fc
    .record({
      values: mutated(fields, text),
      filename: fc.oneof({ weight: 2, arbitrary: fc.constant('notes.txt') }, text, fc.uint8Array({ maxLength: 20 }).map((b) => Buffer.from(b).toString('latin1'))),
      content: fc.uint8Array({ maxLength: 500 }),
      cut: fc.oneof({ weight: 3, arbitrary: fc.constant(1) }, fc.double({ min: 0, max: 1, noNaN: true })),
      boundary: fc.constantFrom('fz', 'fz', 'fz', 'other', ''),
      withFile: fc.oneof({ weight: 3, arbitrary: fc.constant(true) }, fc.constant(false)),
    })
    .map(({ values, filename, content, cut, boundary, withFile }) => {
      const parts = Object.entries(values).map(([f, v]) => Buffer.from(`--fz\r\nContent-Disposition: form-data; name="${f}"\r\n\r\n${printable(v)}\r\n`));
      if (withFile) parts.push(Buffer.from(`--fz\r\nContent-Disposition: form-data; name="file"; filename="${filename}"\r\nContent-Type: text/plain\r\n\r\n`), Buffer.from(content), Buffer.from('\r\n'));
      const whole = Buffer.concat([...parts, Buffer.from('--fz--\r\n')]);
      return { raw: whole.subarray(0, Math.floor(whole.length * cut)), type: boundary ? `multipart/form-data; boundary=${boundary}` : 'multipart/form-data' };
    });
}

/* ------------------------------------------------------------------ the properties */

const ops = Object.entries((openapi as any).paths as Record<string, Record<string, any>>).flatMap(([path, item]) =>
  Object.entries(item).map(([method, op]) => ({ method: method.toUpperCase(), path, op })),
);

/** Not a 5xx, and an error (4xx) in the one error shape. */
function expectClientOutcome(r: Reply, what: string) {
  if (r.status >= 500 || (r.status >= 400 && !ErrorBody.safeParse(r.json).success))
    throw new Error(`${what} → ${r.status} ${r.text.slice(0, 300)}`);
}

it('the document lists every route this suite covers', () => {
  expect(ops.length).toBeGreaterThanOrEqual(13);
});

describe.each(ops)('$method $path', ({ method, path, op }) => {
  it(`answers hostile requests without a 5xx, in the error shape (${RUNS} runs)`, async () => {
    const names = [...path.matchAll(/\{(\w+)\}/g)].map((m) => m[1]);
    const good = plausible();
    const media = Object.keys(op.requestBody?.content ?? {})[0];
    const schema = resolve(op.requestBody?.content?.[media]?.schema);
    const body = !op.requestBody ? fc.constant(undefined) : media === 'multipart/form-data' ? multipartBody(schema) : jsonBody(schema);
    const statuses = new Map<number, number>();
    await fc.assert(
      fc.asyncProperty(
        fc.record({
          segments: fc.tuple(...names.map((n) => segment(String(good[n])))),
          query: fc.oneof({ weight: 4, arbitrary: fc.constant('') }, fc.constantFrom('?%ZZ=1', '?a=%E0%A4%A', '?access_token=%00', '?__proto__[x]=1&a=1&a=2'), PRINTABLE.map((s) => `?q=${pct(s)}`)),
          body,
          auth: fc.constantFrom<string | undefined>(tok, tok, tok, tok, tok, tok, tok, otherTok, undefined, 'Bearer not.a.jwt', 'Basic Zm9vOmJhcg==', `Bearer ${'x'.repeat(5_000)}`),
          requestId: fc.oneof(fc.constant(undefined), PRINTABLE),
        }),
        async ({ segments, query, body: b, auth, requestId }) => {
          let target = path;
          names.forEach((n, i) => (target = target.replace(`{${n}}`, segments[i])));
          target += query;
          const headers: Record<string, string> = {};
          // Internal routes answer other Tessera services, which prove themselves with the service key.
          if (auth === tok && path.startsWith('/api/internal/')) headers['x-tessera-service-key'] = SERVICE_KEY;
          else if (auth) headers.authorization = auth.startsWith('Bearer') || auth.startsWith('Basic') ? auth : `Bearer ${auth}`;
          if (requestId !== undefined) headers['x-request-id'] = requestId;
          if (b) headers['content-type'] = b.type;
          const r = await call(rt.url, method, target, { raw: b?.raw, headers });
          statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
          expectClientOutcome(r, `${method} ${target.slice(0, 200)} ${String(b?.raw ?? '').slice(0, 200)}`);
        },
      ),
      { numRuns: RUNS },
    );
    if (process.env.FUZZ_DEBUG) console.log(method, path, JSON.stringify([...statuses].sort()));
    // The suite must reach past the token and the path: some requests are answered by the route itself.
    const past = [...statuses].filter(([s]) => s !== 401).reduce((n, [, c]) => n + c, 0);
    expect(past).toBeGreaterThan(RUNS / 4);
    expect(unhandled).toEqual([]);
    expect((await call(rt.url, 'GET', '/health')).status).toBe(200);
  });
});

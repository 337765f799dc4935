/**
 * Property-based: hostile events, batches, queries and bodies against the real service. Whatever
 * a client sends: never a 5xx, a 4xx in the error shape, a batch answered event by event, and
 * the process still answers /health.
 */
import fc from 'fast-check';
import { ErrorBody } from '@tessera/contracts';
import { call, TestSocket } from '@tessera/kit/testing';
import { KEY_APP1, operator, startObservability, testEnv, type Env, type Instance } from './harness';

const RUNS = Number(process.env.FUZZ_RUNS ?? 150);
let env: Env;
let obs: Instance;
let op: string;

beforeAll(async () => {
  env = await testEnv('fuzz');
  // The socket property sends faster than an operator may (20 a second): not what it tests.
  obs = await startObservability(env, { WS_MESSAGES_PER_SECOND: '100000', WS_MESSAGE_BURST: '100000' });
  op = await operator(['app1']);
});
afterAll(async () => {
  await obs?.close();
  await env?.dropSchema();
});

const HOSTILE = ['a\u0000b', '\ud800', 'x\udfff', '', ' ', '%00', '\r\nX: 1', '😀'.repeat(50), 'x'.repeat(5_000), '-1', '1e999', '2026-13-45T99:99:99Z', '0000-01-01T00:00:00Z'];
const text = fc.oneof(fc.constantFrom(...HOSTILE), fc.string({ maxLength: 30 }), fc.tuple(fc.string({ maxLength: 10 }), fc.constantFrom('\u0000', '\ud800', '\udc00')).map(([a, b]) => a + b));
const deep = (n: number, leaf: unknown) => {
  let v = leaf;
  for (let i = 0; i < n; i++) v = i % 2 ? [v] : { k: v };
  return v;
};
const value: fc.Arbitrary<unknown> = fc.oneof(
  text,
  fc.integer(),
  fc.double(),
  fc.constantFrom(1e308, -1e308, 2 ** 64, -8.64e15, 8.64e15, null, true, [], {}),
  fc.array(text, { maxLength: 3 }),
  fc.tuple(fc.integer({ min: 1, max: 60 }), text).map(([n, s]) => deep(n, s)),
  fc.jsonValue({ maxDepth: 3 }),
);
const FIELDS = ['event_type', 'session_id', 'session_name', 'timestamp', 'tool_name', 'tool_input', 'tool_output', 'error', 'exit_code', 'reason', 'role', 'content', 'event_id', 'app_id', 'user_id', 'agent_name', 'project_dir', 'workflow', 'source', 'usage'];
/** Mostly valid events with one or two fields made hostile. */
const event = fc
  .tuple(fc.string({ minLength: 1, maxLength: 12 }), fc.dictionary(fc.constantFrom(...FIELDS), value, { maxKeys: 2 }))
  .map(([id, bad]) => ({ event_type: 'message', session_id: `fz-${id}`, content: [{ type: 'text', text: 'hi' }], ...bad }));

const noFiveHundred = (r: { status: number; json: unknown }, what: unknown) => {
  if (r.status >= 500) throw new Error(`${r.status} for ${JSON.stringify(what).slice(0, 300)}`);
  if (r.status >= 400 && !ErrorBody.safeParse(r.json).success) throw new Error(`no error shape for ${JSON.stringify(what).slice(0, 300)}`);
};

test('POST /events: hostile events alone and in batches', async () => {
  await fc.assert(
    fc.asyncProperty(fc.oneof(event, fc.array(fc.oneof(event, value), { minLength: 1, maxLength: 20 }).map((events) => ({ events }))), async (body) => {
      const r = await call(obs.url, 'POST', '/events', { body, headers: { 'x-ingest-key': KEY_APP1 } });
      noFiveHundred(r, body);
      if (r.status === 200 && 'events' in (body as object)) expect(r.json.results).toHaveLength((body as { events: unknown[] }).events.length);
    }),
    { numRuns: RUNS },
  );
}, 120_000);

test('GET /sessions, GET /events/{id}, PATCH metadata: hostile queries, ids and bodies', async () => {
  const QUERY_KEYS = ['status', 'agent_name', 'app_id', 'user_id', 'source', 'q', 'from', 'to', 'limit', 'cursor', 'after', 'event_type'];
  const enc = (s: string) => [...Buffer.from(s)].map((b) => (/[A-Za-z0-9_.~-]/.test(String.fromCharCode(b)) ? String.fromCharCode(b) : `%${b.toString(16).padStart(2, '0')}`)).join('');
  const query = fc.array(fc.tuple(fc.constantFrom(...QUERY_KEYS), text), { maxLength: 4 }).map((kv) => kv.map(([k, v]) => `${k}=${enc(v)}`).join('&'));
  const segment = fc.oneof(fc.constantFrom('%ZZ', '%E0%A4%A', '%00', '%2F', '..', 'x'.repeat(2_000)), text.map(enc));
  await fc.assert(
    fc.asyncProperty(query, segment, fc.oneof(value, fc.dictionary(fc.constantFrom('session_name', 'project_dir', 'agent_name', 'other'), value)), async (q, id, body) => {
      for (const [method, path, b] of [
        ['GET', `/sessions?${q}`],
        ['GET', `/events/${id}?${q}`],
        ['PATCH', `/sessions/${id}/metadata`, body],
      ] as const) {
        const r = await call(obs.url, method, path, { token: op, body: b });
        noFiveHundred(r, [method, path, b]);
      }
    }),
    { numRuns: RUNS },
  );
  expect((await call(obs.url, 'GET', '/health')).status).toBe(200);
}, 120_000);

/** Numbers at and past what the columns hold (int4, int8, the years 1 to 9999), and what is not a number. */
const NUMBERS = [0, -1, 1, 2147483647, 2147483648, -2147483649, 99999999999, 2 ** 53, 2 ** 64, 1e20, -1e20, 8.64e15, 253402300800000, -62135596800001, 1.5, NaN, Infinity];
const number = fc.oneof(fc.constantFrom(...NUMBERS), fc.integer(), fc.double(), fc.bigInt({ min: -(2n ** 70n), max: 2n ** 70n }).map(Number));
const numeric = fc.oneof(number.map(String), fc.constantFrom('1e999', '0x10', '+1', ' 1', '1 ', '', '-0', '2147483647.0'));

test('offsets, limits, cursors and times past their columns: a 400 naming the field, never a 5xx', async () => {
  await call(obs.url, 'POST', '/events', { body: { event_type: 'session_start', session_id: 'fz-range' }, headers: { 'x-ingest-key': KEY_APP1 } });
  const cursorOf = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
  const cursor = fc.oneof(
    fc.tuple(number, fc.string({ maxLength: 8 }), fc.string({ maxLength: 8 })).map(cursorOf),
    fc.tuple(number, fc.string({ maxLength: 8 })).map(cursorOf),
    fc.jsonValue({ maxDepth: 2 }).map(cursorOf),
  );
  const time = fc.oneof(fc.date({ noInvalidDate: true }).map((d) => d.toISOString()), fc.constantFrom('0000-01-01T00:00:00Z', '9999-12-31T23:59:59-14:00', '0001-01-01T00:00:00+14:00', '+275760-09-13T00:00:00Z'));
  const request = fc.oneof(
    fc.record({ after: numeric, limit: numeric }, { requiredKeys: [] }).map((q) => ['/events/fz-range', q] as const),
    fc.record({ limit: numeric, cursor, from: time, to: time }, { requiredKeys: [] }).map((q) => ['/sessions', q] as const),
  );
  await fc.assert(
    fc.asyncProperty(request, async ([path, q]) => {
      const qs = new URLSearchParams(q as Record<string, string>).toString();
      const r = await call(obs.url, 'GET', `${path}?${qs}`, { token: op });
      noFiveHundred(r, [path, q]);
      if (r.status === 400) expect(r.json.error.message).toMatch(new RegExp(`query[.:] ?(${Object.keys(q).join('|')})`));
      else expect([path, q, r.status]).toEqual([path, q, 200]);
    }),
    { numRuns: RUNS },
  );
  expect((await call(obs.url, 'GET', '/health')).status).toBe(200);
}, 120_000);

test('live socket: subscribe and unsubscribe with any after, id and app; an error frame at most, the socket stays open', async () => {
  const s = await TestSocket.connect(`${obs.url.replace('http', 'ws')}/ws?access_token=${op}`);
  await s.waitType('init');
  const message = fc.oneof(
    fc.record({ type: fc.constant('subscribe'), session_id: fc.oneof(fc.constant('fz-range'), text), after: fc.oneof(number, value) }, { requiredKeys: ['type'] }),
    fc.record({ type: fc.constantFrom('subscribe', 'unsubscribe'), session_id: fc.constant('fz-range'), app_id: fc.oneof(text, value), after: number }, { requiredKeys: ['type', 'session_id'] }),
  );
  let answered = 0;
  await fc.assert(
    fc.asyncProperty(message, async (m) => {
      s.send(m);
      s.send({ type: 'ping' });
      answered++;
      await s.waitFor(() => s.messages.filter((x) => x.type === 'pong').length === answered, 5_000);
      if (s.closeCode !== null) throw new Error(`closed ${s.closeCode} after ${JSON.stringify(m)}`);
    }),
    { numRuns: RUNS },
  );
  expect(s.messages.filter((x) => x.type === 'error').every((x) => x.code !== 'INTERNAL')).toBe(true);
  await s.close();
  expect((await call(obs.url, 'GET', '/health')).status).toBe(200);
}, 120_000);

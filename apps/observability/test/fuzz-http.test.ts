/**
 * Property-based: hostile events, batches, queries and bodies against the real service. Whatever
 * a client sends: never a 5xx, a 4xx in the error shape, a batch answered event by event, and
 * the process still answers /health.
 */
import fc from 'fast-check';
import { ErrorBody } from '@tessera/contracts';
import { call } from '@tessera/kit/testing';
import { KEY_APP1, operator, startObservability, testEnv, type Env, type Instance } from './harness';

const RUNS = Number(process.env.FUZZ_RUNS ?? 150);
let env: Env;
let obs: Instance;
let op: string;

beforeAll(async () => {
  env = await testEnv('fuzz');
  obs = await startObservability(env);
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

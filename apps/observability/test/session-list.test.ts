/**
 * What the console's Sessions list reads of each session, against real Redis, PostgreSQL and the
 * runtime's queue: a readable title (the name, else the first user message, set once), the model
 * of the last call and the cost of the priced ones (kept on the row as the events are stored,
 * counted once however often a batch is delivered, unknown rather than $0), and a search over
 * name, title, user and id that the trigram index serves.
 */
import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import pg from 'pg';
import { observability, Queue, type ObservedEvent } from '@tessera/contracts';
import { bullConnection, createLogger, pgConnectionString, TypedQueue } from '@tessera/kit';
import { TEST_REDIS_URL } from '@tessera/kit/testing';
import { listQuery } from '../src/store/sessions';
import { http, ingest, KEY_APP1, KEY_APP2, operator, sid, startObservability, testEnv, until, type Env, type Instance } from './harness';

let env: Env;
let obs: Instance;
let queue: TypedQueue<typeof Queue.ObservabilityEvents>;
let op: string;

// Dollars per million tokens of the scripted model, as a deployment would set them.
const PRICE = { input: 0.1, output: 0.4 };
const M = 1_000_000;

beforeAll(async () => {
  env = await testEnv('session_list');
  obs = await startObservability(env, { PRICE_OVERRIDES: JSON.stringify({ scripted: PRICE }) });
  queue = new TypedQueue(Queue.ObservabilityEvents, bullConnection(TEST_REDIS_URL), createLogger('test', 'silent'), { prefix: env.BULL_PREFIX, defaultJobOptions: { removeOnComplete: true } });
  op = await operator(['app1', 'app2']);
});
afterAll(async () => {
  await queue?.queue.obliterate({ force: true }).catch(() => undefined);
  await queue?.close();
  await obs?.close();
  await env?.dropSchema();
});

type S = observability.Session;
const get = (path: string) => http(obs.url, 'GET', path, { token: op });
const session = async (id: string): Promise<S> => (await get(`/sessions/${encodeURIComponent(id)}?app_id=app1`)).body;
const search = async (q: string, extra = '') => ((await get(`/sessions?q=${encodeURIComponent(q)}&limit=500${extra}`)).body.sessions as S[]).map((s) => s.session_id).sort();

/** A runtime chat's event as the runtime queues it. */
function runtimeEvent(chat: string, index: number, type: string, data: Record<string, unknown>): ObservedEvent {
  const usage = type === 'chat.usage_delta' ? { prompt_tokens: data.prompt_tokens as number, completion_tokens: data.completion_tokens as number, total_tokens: (data.prompt_tokens as number) + (data.completion_tokens as number) } : null;
  return { session_id: chat, app_id: 'app1', user_id: 'ada', workflow_name: 'assistant', agent: (data.agent as string) ?? null, index, type, payload: data, usage, timestamp: new Date(Date.UTC(2026, 0, 1, 10, 0, index)).toISOString() };
}
const userSays = (chat: string, index: number, text: string) => runtimeEvent(chat, index, 'chat.text', { message_id: `u${index}`, agent: 'user', role: 'user', delta: text, done: true });
const call = (chat: string, index: number, model: string, input: number, output: number) => runtimeEvent(chat, index, 'chat.usage_delta', { agent: 'writer', model, provider: 'openai-compatible', prompt_tokens: input, completion_tokens: output });

const drained = () =>
  until(async () => Object.values(await queue.queue.getJobCounts('waiting', 'active', 'delayed', 'prioritized')).every((n) => n === 0), 10_000, 'the queue drained');

/** One span in OTLP/JSON, as an exporter writes it. */
function otlpSpan(traceId: string, parent: string | null, name: string, attributes: Record<string, string | number>) {
  const at = BigInt(Date.now()) * 1_000_000n;
  return {
    traceId,
    spanId: randomBytes(8).toString('hex'),
    ...(parent && { parentSpanId: parent }),
    name,
    kind: 1,
    startTimeUnixNano: String(at),
    endTimeUnixNano: String(at + 100_000_000n),
    attributes: Object.entries(attributes).map(([key, v]) => ({ key, value: typeof v === 'number' ? { intValue: String(v) } : { stringValue: v } })),
    status: {},
  };
}

describe('titles', () => {
  it("a runtime chat's title is its first user message, cut to about 120 characters, kept when more messages come", async () => {
    const chat = sid('chat');
    const first = `Could you compare the three offers we received for the warehouse roof, with their prices, warranties and the dates each contractor can start? ${'Thanks. '.repeat(20)}`;
    // Stored before any user message: no title yet.
    await queue.add({ events: [runtimeEvent(chat, 1, 'chat.run_start', {})] });
    await drained();
    expect((await session(chat)).title).toBeNull();
    await queue.add({ events: [userSays(chat, 2, first), runtimeEvent(chat, 3, 'chat.text', { message_id: 'a', agent: 'writer', role: 'assistant', delta: 'Sure.', done: false })] });
    await queue.add({ events: [userSays(chat, 4, 'And the cheapest?')] });
    await drained();
    const s = await session(chat);
    expect(s.title).toBe('Could you compare the three offers we received for the warehouse roof, with their prices, warranties and the dates each…');
    expect(s.session_name).toBe('');
    // An operator's name for it wins; the first message is still found by a search.
    expect((await http(obs.url, 'PATCH', `/sessions/${chat}/metadata`, { token: op, body: { session_name: 'Roof offers' } })).status).toBe(200);
    expect((await session(chat)).title).toBe('Roof offers');
    expect(await search('warehouse ROOF')).toContain(chat);
  });

  it("an outside agent's session: its name, else its first message of role user", async () => {
    const [named, unnamed] = [sid('named'), sid('unnamed')];
    await ingest(obs.url, {
      events: [
        { event_type: 'session_start', session_id: named, session_name: 'Nightly import' },
        { event_type: 'message', session_id: named, role: 'user', content: [{ type: 'text', text: 'import the files' }] },
        { event_type: 'session_start', session_id: unnamed },
        { event_type: 'message', session_id: unnamed, role: 'assistant', content: [{ type: 'text', text: 'Hello, how can I help?' }] },
        { event_type: 'message', session_id: unnamed, role: 'user', content: [{ type: 'image', url: 'x' }, { type: 'text', text: 'Fix the\nbuild,' }, { type: 'text', text: 'please' }] },
        { event_type: 'message', session_id: unnamed, role: 'user', content: [{ type: 'text', text: 'hello?' }] },
      ],
    });
    expect((await session(named)).title).toBe('Nightly import');
    expect((await session(unnamed)).title).toBe('Fix the build, please');
  });

  it("an OpenTelemetry session's title is the first user input message of its model calls", async () => {
    const conv = sid('otel-title');
    const traceId = randomBytes(16).toString('hex');
    const agent = otlpSpan(traceId, null, 'invoke_agent Support', { 'gen_ai.operation.name': 'invoke_agent', 'gen_ai.agent.name': 'Support', 'gen_ai.conversation.id': conv });
    const chat = otlpSpan(traceId, agent.spanId, 'chat scripted', {
      'gen_ai.operation.name': 'chat',
      'gen_ai.request.model': 'scripted',
      'gen_ai.usage.input_tokens': 1000,
      'gen_ai.usage.output_tokens': 500,
      'gen_ai.input.messages': JSON.stringify([
        { role: 'system', parts: [{ type: 'text', content: 'You are Support.' }] },
        { role: 'user', parts: [{ type: 'text', content: 'Where is order A-17?' }] },
        { role: 'assistant', parts: [{ type: 'text', content: 'Looking.' }] },
        { role: 'user', parts: [{ type: 'text', content: 'Any news?' }] },
      ]),
    });
    const r = await http(obs.url, 'POST', '/v1/traces', { headers: { 'x-ingest-key': KEY_APP1 }, body: { resourceSpans: [{ resource: { attributes: [] }, scopeSpans: [{ scope: { name: 'test' }, spans: [chat, agent] }] }] } });
    expect(r.status).toBe(200);
    const s = await session(conv);
    expect(s).toMatchObject({ source: 'otel', title: 'Where is order A-17?', model: 'scripted', unpriced_calls: 0 });
    expect(s.cost_usd).toBeCloseTo((1000 * PRICE.input + 500 * PRICE.output) / M, 12);
  });

  it('an OpenTelemetry trace exported before its conversation was named keeps its title, model and cost when it joins the conversation', async () => {
    const conv = sid('otel-merge');
    const traceId = randomBytes(16).toString('hex');
    const agentSpanId = randomBytes(8).toString('hex');
    const chat = otlpSpan(traceId, agentSpanId, 'chat scripted', {
      'gen_ai.operation.name': 'chat',
      'gen_ai.request.model': 'scripted',
      'gen_ai.usage.input_tokens': 2000,
      'gen_ai.usage.output_tokens': 100,
      'gen_ai.input.messages': JSON.stringify([{ role: 'user', parts: [{ type: 'text', content: 'Book a table for two' }] }]),
    });
    const send = (...spans: unknown[]) => http(obs.url, 'POST', '/v1/traces', { headers: { 'x-ingest-key': KEY_APP1 }, body: { resourceSpans: [{ resource: { attributes: [] }, scopeSpans: [{ scope: { name: 'test' }, spans }] }] } });
    expect((await send(chat)).status).toBe(200);
    // Stored in the trace's provisional session first.
    expect(await session(`otel:${traceId}`)).toMatchObject({ title: 'Book a table for two', model: 'scripted' });
    const agent = { ...otlpSpan(traceId, null, 'invoke_agent Concierge', { 'gen_ai.operation.name': 'invoke_agent', 'gen_ai.agent.name': 'Concierge', 'gen_ai.conversation.id': conv }), spanId: agentSpanId };
    expect((await send(agent)).status).toBe(200);
    const s = await session(conv);
    expect(s).toMatchObject({ title: 'Book a table for two', model: 'scripted', unpriced_calls: 0, usage: { input_tokens: 2000, output_tokens: 100 } });
    expect(s.cost_usd).toBeCloseTo((2000 * PRICE.input + 100 * PRICE.output) / M, 12);
    expect((await get(`/sessions/${encodeURIComponent(`otel:${traceId}`)}?app_id=app1`)).status).toBe(404);
  });
});

describe('model and cost', () => {
  it('keep the last call’s model and the sum of the priced calls, counted once when a batch comes twice; an unpriced call is counted apart, never as $0', async () => {
    const [mixed, unpriced, none] = [sid('mixed'), sid('unpriced'), sid('none')];
    const events = [userSays(mixed, 1, 'hi'), call(mixed, 2, 'scripted', 2000, 300), call(mixed, 3, 'llama3.2', 50, 5), call(mixed, 4, 'scripted', 1000, 100), call(mixed, 5, 'llama3.2', 10, 1)];
    await queue.add({ events });
    // A redelivered job: nothing counts twice.
    await queue.add({ events: events.slice(1) });
    await queue.add({ events: [userSays(unpriced, 1, 'hello'), call(unpriced, 2, 'llama3.2', 12, 5)] });
    await queue.add({ events: [userSays(none, 1, 'just looking')] });
    await drained();

    const m = await session(mixed);
    expect(m).toMatchObject({ model: 'llama3.2', unpriced_calls: 2, usage: { input_tokens: 3060, output_tokens: 406 } });
    expect(m.cost_usd).toBeCloseTo((3000 * PRICE.input + 400 * PRICE.output) / M, 12);
    // Only unpriced calls: the cost is unknown, not 0.
    expect(await session(unpriced)).toMatchObject({ model: 'llama3.2', cost_usd: null, unpriced_calls: 1 });
    expect(await session(none)).toMatchObject({ model: null, cost_usd: null, unpriced_calls: 0 });
    // The list says the same as the session.
    const listed = ((await get('/sessions?user_id=ada&limit=500')).body.sessions as S[]).find((s) => s.session_id === mixed);
    expect(listed).toMatchObject({ model: 'llama3.2', cost_usd: m.cost_usd, unpriced_calls: 2, title: 'hi' });
    // A later priced call adds to what was there.
    await queue.add({ events: [call(unpriced, 3, 'scripted', 1_000_000, 0)] });
    await drained();
    expect((await session(unpriced)).cost_usd).toBeCloseTo(PRICE.input, 9);
  });
});

describe('search', () => {
  it('finds text in the name, the first message, the user id or the id, whatever its case; % and _ are text', async () => {
    const tag = randomBytes(3).toString('hex');
    const ids = { byName: sid('s-name'), byTitle: sid('s-title'), byUser: sid('s-user'), other: sid('s-other') };
    await ingest(obs.url, {
      events: [
        { event_type: 'session_start', session_id: ids.byName, session_name: `Invoice Run ${tag}` },
        { event_type: 'message', session_id: ids.byTitle, role: 'user', content: [{ type: 'text', text: `Please reconcile invoice ${tag} by Friday` }] },
        { event_type: 'session_start', session_id: ids.byUser, user_id: `grace-${tag}@example.com` },
        { event_type: 'message', session_id: ids.other, session_name: 'unrelated', user_id: 'someone', role: 'user', content: [{ type: 'text', text: '100% done_now' }] },
      ],
    });
    expect(await search(tag.toUpperCase())).toEqual([ids.byName, ids.byTitle, ids.byUser].sort());
    expect(await search(`INVOICE ${tag}`)).toEqual([ids.byTitle]);
    expect(await search(`${tag}@EXAMPLE`)).toEqual([ids.byUser]);
    expect(await search(ids.other.slice(2))).toEqual([ids.other]);
    expect(await search('100% done_')).toEqual([ids.other]);
    expect(await search('100_ done')).toEqual([]);
    // With the other filters.
    expect(await search(tag, `&user_id=${encodeURIComponent(`grace-${tag}@example.com`)}`)).toEqual([ids.byUser]);
    expect(await search(tag, '&app_id=app2')).toEqual([]);
  });

  it('returns exactly the sessions whose name, title, user id or id hold the text, case-insensitively (any text)', async () => {
    // App2's sessions are this test's alone: the search is compared with all of them.
    const word = fc.stringMatching(/^[a-zA-Z0-9 %_\\-]{1,8}$/);
    const specs = fc.sample(fc.record({ name: fc.option(word, { nil: undefined }), text: fc.option(word, { nil: undefined }), user: fc.option(word, { nil: undefined }) }), { numRuns: 40, seed: 7 });
    const made = specs.map((x, i) => ({ ...x, id: `p${i}-${randomBytes(2).toString('hex')}` }));
    const r = await ingest(
      obs.url,
      {
        events: made.map((x) => ({
          event_type: 'message',
          session_id: x.id,
          ...(x.name !== undefined && { session_name: x.name }),
          ...(x.user !== undefined && { user_id: x.user }),
          role: 'user',
          content: [{ type: 'text', text: x.text ?? '' }],
        })),
      },
      KEY_APP2,
    );
    expect(r.body.accepted).toBe(made.length);
    const fields = (x: (typeof made)[number]) => [x.name ?? '', (x.text ?? '').replace(/\s+/g, ' ').trim(), x.user ?? '', x.id];
    const needle = fc.oneof(
      word,
      fc.constantFrom(...made).chain((x) => fc.constantFrom(...fields(x).filter((f) => f.trim() !== '')).chain((f) => fc.tuple(fc.nat(f.length - 1), fc.nat(f.length - 1)).map(([a, b]) => f.slice(Math.min(a, b), Math.max(a, b) + 1)))),
    );
    await fc.assert(
      fc.asyncProperty(needle, fc.boolean(), async (q, upper) => {
        const text = upper ? q.toUpperCase() : q;
        const want = made.filter((x) => fields(x).some((f) => f.toLowerCase().includes(text.toLowerCase()))).map((x) => x.id).sort();
        expect(await search(text, '&app_id=app2')).toEqual(want);
      }),
      { numRuns: 60 },
    );
  });

  it('is served by the trigram index once there are many sessions, not by reading each', async () => {
    const needle = `zq${randomBytes(4).toString('hex')}`;
    // Sessions through the API, a few of them with the text, in the name or the first message.
    const events = Array.from({ length: 1000 }, (_, n) => {
      const hit = n % 199 === 5;
      return {
        event_type: 'message',
        session_id: `bulk-${n}-${randomBytes(3).toString('hex')}`,
        session_name: `Bulk run ${n}${hit && n % 2 ? ` ${needle}` : ''}`,
        user_id: `user-${n % 50}`,
        role: 'user',
        content: [{ type: 'text', text: `Question number ${n} about invoices${hit && n % 2 === 0 ? ` ${needle.toUpperCase()}` : ''}` }],
      };
    });
    expect((await ingest(obs.url, { events })).body.accepted).toBe(1000);
    const hits = events.filter((e) => e.session_name.includes(needle) || e.content[0].text.includes(needle.toUpperCase())).map((e) => e.session_id).sort();
    expect(hits).toHaveLength(5);
    expect(await search(needle)).toEqual(hits);

    const c = new pg.Client({ connectionString: pgConnectionString(env.DATABASE_URL) });
    await c.connect();
    try {
      await c.query(`SET search_path TO "${new URL(env.DATABASE_URL).searchParams.get('schema')}"`);
      // A busy deployment's table: 100,000 more sessions of the same apps (written here directly,
      // as a thousand times the request above would), then what autovacuum does to a grown table.
      await c.query(
        `INSERT INTO sessions (app_id, id, source, session_name, title, user_id, modified_at)
         SELECT CASE WHEN n % 2 = 0 THEN 'app1' ELSE 'app2' END, 'filler-' || n || '-' || md5(n::text), 'external', 'Filler run ' || n,
                'Question number ' || n || ' about invoices', 'user-' || (n % 50), now() - n * interval '1 second'
           FROM generate_series(1, 100000) n`,
      );
      await c.query('VACUUM ANALYZE sessions');
      // The statement the store runs for GET /sessions?q=… of an operator of app1 and app2, as
      // the planner chooses it with nothing forced.
      const q = listQuery(['app1', 'app2'], observability.SessionsQuery.parse({ q: needle }));
      const plan = async () => JSON.stringify((await c.query(`EXPLAIN (FORMAT JSON) ${q.text}`, q.values)).rows[0]['QUERY PLAN']);
      const used = await plan();
      expect(used).toContain('"Index Name":"sessions_search_idx"');
      expect(used).not.toContain('"Node Type":"Seq Scan"');
      // Without the index the same statement reads every row: the plan above is the index's doing.
      await c.query('BEGIN');
      await c.query('DROP INDEX sessions_search_idx');
      expect(await plan()).toContain('"Node Type":"Seq Scan"');
      await c.query('ROLLBACK');
    } finally {
      await c.end();
    }
    // And the API still finds exactly the five among the 101,000.
    expect(await search(needle)).toEqual(hits);
  }, 60_000);
});

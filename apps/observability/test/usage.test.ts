/**
 * GET /usage against real Redis, PostgreSQL and the runtime's queue: model calls from runtime
 * chats (the queue) and outside agents (POST /events) priced once as they are stored, rolled up per
 * app, user, workflow, agent, model and hour, counted once however often a batch is delivered, and
 * shown to each app's operators only.
 */
import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { Queue, type ObservedEvent } from '@tessera/contracts';
import { bullConnection, createLogger, TypedQueue } from '@tessera/kit';
import { TEST_REDIS_URL } from '@tessera/kit/testing';
import { asService, endUser, http, ingest, KEY_APP1, KEY_APP2, operator, sid, startObservability, testEnv, until, type Env, type Instance } from './harness';

let env: Env;
let obs: Instance;
let queue: TypedQueue<typeof Queue.ObservabilityEvents>;
let op1: string;
let op2: string;

beforeAll(async () => {
  env = await testEnv('usage');
  // A price for the scripted model, as a deployment would set one.
  obs = await startObservability(env, { PRICE_OVERRIDES: JSON.stringify({ scripted: { input: 0.1, output: 0.4 } }) });
  queue = new TypedQueue(Queue.ObservabilityEvents, bullConnection(TEST_REDIS_URL), createLogger('test', 'silent'), { prefix: env.BULL_PREFIX, defaultJobOptions: { removeOnComplete: true } });
  [op1, op2] = await Promise.all([operator(['app1']), operator(['app2'], 'op-2')]);
});
afterAll(async () => {
  await queue?.queue.obliterate({ force: true }).catch(() => undefined);
  await queue?.close();
  await obs?.close();
  await env?.dropSchema();
});

const M = 1_000_000;
const near = (got: number | null, want: number) => {
  expect(got).not.toBeNull();
  expect(Math.abs(got! - want) / want).toBeLessThan(0.01);
};

/** A `chat.usage_delta` (and the event types around it) as the runtime queues it. */
function runtimeEvent(chat: string, index: number, at: string, type: string, data: Record<string, unknown>): ObservedEvent {
  const isUsage = type === 'chat.usage_delta' || type === 'chat.usage_summary';
  const usage = isUsage ? { prompt_tokens: data.prompt_tokens as number, completion_tokens: data.completion_tokens as number, total_tokens: data.total_tokens as number, ...pick(data, 'cache_read_tokens', 'cache_write_tokens', 'reasoning_tokens') } : null;
  return { session_id: chat, app_id: 'app1', user_id: 'ada', workflow_name: 'assistant', agent: (data.agent as string) ?? null, index, type, payload: data, usage, timestamp: at };
}
const pick = (o: Record<string, unknown>, ...keys: string[]) => Object.fromEntries(keys.filter((k) => o[k] !== undefined).map((k) => [k, o[k]]));

/** Waits until the queue has no job waiting or running: every job added before was processed. */
const drained = () => until(async () => {
  const c = await queue.queue.getJobCounts('waiting', 'active', 'delayed', 'prioritized');
  return Object.values(c).every((n) => n === 0);
}, 10_000, 'the queue drained');

const usage = (token: string, query: string) => http(obs.url, 'GET', `/usage?${query}`, { token });

describe('GET /usage', () => {
  it("prices each runtime model call once, per app, user, workflow, agent, model and hour; a redelivered job counts nothing twice", async () => {
    const chat = sid('chat');
    const gpt = { prompt_tokens: 2006, completion_tokens: 300, total_tokens: 2306, cache_read_tokens: 1920, reasoning_tokens: 0, agent: 'writer', model: 'gpt-4o', provider: 'openai-compatible' };
    const claude = { prompt_tokens: 5101, completion_tokens: 412, total_tokens: 5513, cache_read_tokens: 3200, cache_write_tokens: 1880, agent: 'critic', model: 'claude-sonnet-4-20250514', provider: 'anthropic' };
    const local = { prompt_tokens: 12, completion_tokens: 5, total_tokens: 17, agent: 'writer', model: 'llama3.2', provider: 'openai-compatible' };
    const events = [
      runtimeEvent(chat, 1, '2026-01-01T10:05:00Z', 'chat.text', { message_id: 'u', agent: 'user', role: 'user', delta: 'hi', done: true, content: 'hi' }),
      runtimeEvent(chat, 2, '2026-01-01T10:06:00Z', 'chat.usage_delta', gpt),
      runtimeEvent(chat, 3, '2026-01-01T10:07:00Z', 'chat.usage_delta', claude),
      runtimeEvent(chat, 4, '2026-01-01T10:59:59Z', 'chat.usage_delta', local),
      runtimeEvent(chat, 5, '2026-01-01T11:00:00Z', 'chat.usage_delta', gpt),
      // The turn's total repeats its calls: not a call.
      runtimeEvent(chat, 6, '2026-01-01T11:00:01Z', 'chat.usage_summary', { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2, turns: 1 }),
    ];
    await queue.add({ events });
    await queue.add({ events: events.slice(1) });
    await drained();

    const q = 'group_by=app,user,workflow,agent,model&granularity=hour&from=2026-01-01T10:00:00Z&to=2026-01-01T12:00:00Z';
    const r = await usage(op1, q);
    expect(r.status).toBe(200);
    const gptCost = ((2006 - 1920) * 2.5 + 1920 * 1.25 + 300 * 10) / M;
    const claudeCost = (21 * 3 + 1880 * 3.75 + 3200 * 0.3 + 412 * 15) / M;
    const dims = { app_id: 'app1', user_id: 'ada', workflow: 'assistant' };
    expect(r.body).toMatchObject({ from: '2026-01-01T10:00:00.000Z', to: '2026-01-01T12:00:00.000Z', granularity: 'hour', group_by: ['app', 'user', 'workflow', 'agent', 'model'], truncated: false });
    const rows = r.body.rows as Record<string, unknown>[];
    expect(rows.map((x) => [x.period_start, x.agent, x.model, x.calls])).toEqual([
      ['2026-01-01T10:00:00.000Z', 'critic', 'claude-sonnet-4-20250514', 1],
      ['2026-01-01T10:00:00.000Z', 'writer', 'gpt-4o', 1],
      ['2026-01-01T10:00:00.000Z', 'writer', 'llama3.2', 1],
      ['2026-01-01T11:00:00.000Z', 'writer', 'gpt-4o', 1],
    ]);
    expect(rows[0]).toMatchObject({ ...dims, input_tokens: 5101, output_tokens: 412, cache_read_tokens: 3200, cache_write_tokens: 1880, reasoning_tokens: 0, unpriced_calls: 0 });
    near(rows[0].cost_usd as number, claudeCost);
    expect(rows[1]).toMatchObject({ ...dims, input_tokens: 2006, output_tokens: 300, cache_read_tokens: 1920, cache_write_tokens: 0, unpriced_calls: 0 });
    near(rows[1].cost_usd as number, gptCost);
    // A model with no known price: counted, its cost unknown, never 0.
    expect(rows[2]).toMatchObject({ input_tokens: 12, output_tokens: 5, cost_usd: null, unpriced_calls: 1 });
    expect(r.body.total).toMatchObject({ calls: 4, input_tokens: 2006 * 2 + 5101 + 12, unpriced_calls: 1 });
    near(r.body.total.cost_usd, 2 * gptCost + claudeCost);

    // By day and model: the two hours are one day.
    const day = await usage(op1, 'group_by=model&from=2026-01-01T00:00:00Z&to=2026-01-02T00:00:00Z');
    expect(day.body.rows.map((x: Record<string, unknown>) => [x.period_start, x.model, x.calls])).toEqual([
      ['2026-01-01T00:00:00.000Z', 'claude-sonnet-4-20250514', 1],
      ['2026-01-01T00:00:00.000Z', 'gpt-4o', 2],
      ['2026-01-01T00:00:00.000Z', 'llama3.2', 1],
    ]);
    near(day.body.rows[1].cost_usd, 2 * gptCost);

    // Another app's operator sees none of it, even naming the app.
    for (const query of [q, `${q}&app_id=app1`]) {
      const other = await usage(op2, query);
      expect(other.status).toBe(200);
      expect(other.body.rows).toEqual([]);
      expect(other.body.total).toMatchObject({ calls: 0, cost_usd: null });
    }
  });

  it("prices an outside agent's calls (POST /events), with the override for a model the table does not know; a retried batch counts once", async () => {
    const s = sid('agent');
    const batch = {
      events: [
        { event_type: 'session_start', session_id: s, event_id: 'e0', user_id: 'bob', workflow: 'triage', timestamp: '2026-02-01T09:00:00Z' },
        { event_type: 'message', session_id: s, event_id: 'e1', agent_name: 'bot', timestamp: '2026-02-01T09:10:00Z', usage: { input_tokens: 1000, output_tokens: 200, model: 'scripted', provider: 'scripted' } },
        { event_type: 'message', session_id: s, event_id: 'e2', agent_name: 'bot', timestamp: '2026-02-01T09:20:00Z', usage: { input_tokens: 1000, output_tokens: 200, cache_read_tokens: 600, model: 'gpt-4o-mini' } },
        { event_type: 'message', session_id: s, event_id: 'e3', agent_name: 'bot', timestamp: '2026-02-01T09:30:00Z', usage: { input_tokens: 7, output_tokens: 3 } },
      ],
    };
    expect((await ingest(obs.url, batch, KEY_APP2)).body).toMatchObject({ accepted: 4 });
    expect((await ingest(obs.url, batch, KEY_APP2)).body).toMatchObject({ accepted: 0, duplicates: 4 });

    const q = 'group_by=user,workflow,agent,model&from=2026-02-01T00:00:00Z&to=2026-02-02T00:00:00Z';
    const r = await usage(op2, q);
    expect(r.status).toBe(200);
    // The session's user and workflow, from its first event, are its calls'.
    expect(r.body.rows.map((x: Record<string, unknown>) => [x.user_id, x.workflow, x.agent, x.model, x.calls])).toEqual([
      ['bob', 'triage', 'bot', null, 1],
      ['bob', 'triage', 'bot', 'gpt-4o-mini', 1],
      ['bob', 'triage', 'bot', 'scripted', 1],
    ]);
    const [none, mini, scripted] = r.body.rows;
    expect(none).toMatchObject({ cost_usd: null, unpriced_calls: 1 });
    // gpt-4o-mini: $0.15 input, $0.075 cached, $0.60 output per million.
    near(mini.cost_usd, (400 * 0.15 + 600 * 0.075 + 200 * 0.6) / M);
    // PRICE_OVERRIDES: scripted at $0.10 input, $0.40 output.
    near(scripted.cost_usd, (1000 * 0.1 + 200 * 0.4) / M);
    expect(r.body.total).toMatchObject({ calls: 3, unpriced_calls: 1 });

    expect((await usage(op1, q)).body.total).toMatchObject({ calls: 0 });
    // The service key reads every app.
    const all = await http(obs.url, 'GET', `/usage?${q}`, { headers: { 'x-tessera-service-key': 'test-service-key-0123456789' } });
    expect(all.body.total).toMatchObject({ calls: 3 });
  });

  it("prices an OpenTelemetry chat span's gen_ai.usage.* (cache reads at their rate) by its gen_ai.response.model", async () => {
    const attr = (key: string, v: string | number) => ({ key, value: typeof v === 'number' ? { intValue: String(v) } : { stringValue: v } });
    const at = BigInt(Date.parse('2026-04-01T08:30:00Z')) * 1_000_000n;
    const span = {
      traceId: randomBytes(16).toString('hex'),
      spanId: randomBytes(8).toString('hex'),
      name: 'chat gpt-4o',
      kind: 3,
      startTimeUnixNano: String(at),
      endTimeUnixNano: String(at + 1_000_000_000n),
      attributes: [attr('gen_ai.operation.name', 'chat'), attr('gen_ai.conversation.id', sid('otel')), attr('gen_ai.agent.name', 'support'), attr('gen_ai.request.model', 'gpt-4o'), attr('gen_ai.response.model', 'gpt-4o-2024-08-06'), attr('gen_ai.usage.input_tokens', 1000), attr('gen_ai.usage.output_tokens', 100), attr('gen_ai.usage.cache_read.input_tokens', 600), attr('gen_ai.usage.reasoning.output_tokens', 40)],
    };
    const body = { resourceSpans: [{ resource: { attributes: [attr('service.name', 'support-bot')] }, scopeSpans: [{ scope: { name: 'test' }, spans: [span] }] }] };
    const posted = await http(obs.url, 'POST', '/v1/traces', { body, headers: { 'x-ingest-key': KEY_APP1 } });
    expect(posted.status).toBe(200);
    const r = await usage(op1, 'group_by=agent,model&from=2026-04-01T00:00:00Z&to=2026-04-02T00:00:00Z');
    expect(r.body.rows).toMatchObject([{ agent: 'support', model: 'gpt-4o-2024-08-06', calls: 1, input_tokens: 1000, output_tokens: 100, cache_read_tokens: 600, reasoning_tokens: 40, unpriced_calls: 0 }]);
    // gpt-4o: $2.50 input, $1.25 cached input, $10 output per million.
    near(r.body.rows[0].cost_usd, (400 * 2.5 + 600 * 1.25 + 100 * 10) / M);
  });

  it('answers 403 to a caller without the operator role, 401 without a token', async () => {
    const { endUser } = await import('./harness');
    expect((await usage(await endUser(['app1']), 'granularity=day')).status).toBe(403);
    expect((await http(obs.url, 'GET', '/usage')).status).toBe(401);
  });

  it('answers a bad parameter with 400 naming it', async () => {
    for (const [query, param] of [
      ['group_by=app,color', 'group_by'],
      ['granularity=week', 'granularity'],
      ['from=yesterday', 'from'],
      ['to=2026-13-01T00:00:00Z', 'to'],
      ['from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z', 'to'],
      ['from=2020-01-01T00:00:00Z&to=2026-01-01T00:00:00Z', 'from'],
      ['from=9999-01-01T00:00:00Z', 'from'],
      ['limit=0', 'limit'],
      ['limit=10001', 'limit'],
      ['app_id=%00', 'app_id'],
    ] as const) {
      const r = await usage(op1, query);
      expect([query, r.status]).toEqual([query, 400]);
      expect(r.body.error.message).toContain(param);
      expect(r.body.error.details.issues.map((i: { path: string }) => i.path)).toContain(`query.${param}`);
    }
  });

  it('takes any query without a 5xx: valid ones answer rows that add up to the total, the rest a 400 naming a parameter', async () => {
    await asService(obs.url, { event_type: 'message', session_id: sid('p'), app_id: 'app1', timestamp: '2026-03-01T05:00:00Z', usage: { input_tokens: 10, output_tokens: 2, model: 'gpt-4o' } });
    const time = fc.oneof(
      fc.date({ min: new Date('2026-02-20T00:00:00Z'), max: new Date('2026-03-10T00:00:00Z'), noInvalidDate: true }).map((d) => d.toISOString()),
      fc.constantFrom('2026-03-01', 'now', '2026-03-01T05:00:00+25:00', '0000-01-01T00:00:00Z', ''),
    );
    const dims = fc.array(fc.constantFrom('app', 'user', 'workflow', 'agent', 'model', 'App', 'cost', ' model ', ''), { maxLength: 6 }).map((a) => a.join(','));
    const param = fc.record(
      { group_by: dims, from: time, to: time, granularity: fc.constantFrom('hour', 'day', 'minute', ''), limit: fc.oneof(fc.integer({ min: -2, max: 20_000 }).map(String), fc.constantFrom('1e3', 'x', '')) },
      { requiredKeys: [] },
    );
    await fc.assert(
      fc.asyncProperty(param, async (p) => {
        const r = await usage(op1, new URLSearchParams(p as Record<string, string>).toString());
        if (r.status === 400) {
          const named = r.body.error.details.issues.map((i: { path: string }) => i.path);
          expect(named.some((n: string) => Object.keys(p).some((k) => n === `query.${k}`))).toBe(true);
          return;
        }
        expect(r.status).toBe(200);
        if (!r.body.truncated) {
          const calls = r.body.rows.reduce((n: number, x: { calls: number }) => n + x.calls, 0);
          expect(calls).toBe(r.body.total.calls);
        }
        for (const x of r.body.rows) {
          expect(Date.parse(x.period_start)).toBeGreaterThanOrEqual(Date.parse(r.body.from) - 86_400_000);
          expect(Date.parse(x.period_start)).toBeLessThan(Date.parse(r.body.to));
        }
      }),
      { numRuns: 60 },
    );
  });
});

/** PostgreSQL's percentile_cont: linear interpolation between the two nearest ranks. */
function percentile(values: number[], p: number): number | null {
  if (!values.length) return null;
  const s = [...values].sort((a, b) => a - b);
  const at = p * (s.length - 1);
  const lo = Math.floor(at);
  return Math.round(s[lo] + (s[Math.min(lo + 1, s.length - 1)] - s[lo]) * (at - lo));
}

describe('GET /latency', () => {
  it("reports the runtime's turns' first-text and turn latency, p50 and p99 per period, by workflow or app, in the operator's apps only", async () => {
    // Two workflows' chats in app1 over two hours, and one chat of app2 that app1's operator must not count.
    const turns: { app: string; workflow: string; at: string; ft?: number; d: number }[] = [];
    for (let i = 0; i < 40; i++) turns.push({ app: 'app1', workflow: i % 4 ? 'assistant' : 'planner', at: `2026-02-01T${i < 25 ? '09' : '10'}:${String(i).padStart(2, '0')}:00Z`, ft: 100 + i * 13, d: 900 + ((i * 37) % 400) });
    // A turn that answered no text (a tool call awaiting the user): a duration, no first text.
    turns.push({ app: 'app1', workflow: 'assistant', at: '2026-02-01T10:50:00Z', d: 5000 });
    turns.push({ app: 'app2', workflow: 'assistant', at: '2026-02-01T09:30:00Z', ft: 1, d: 1 });
    // Each chat's events numbered from 1 without a gap, as the runtime's timeline is (a gap waits for what is missing).
    const byChat = new Map<string, ObservedEvent[]>();
    for (const t of turns) {
      const chat = `lat-${t.app}-${t.workflow}`;
      const index = (byChat.get(chat)?.length ?? 0) + 1;
      const e = runtimeEvent(chat, index, t.at, 'chat.run_complete', { turn_id: `in-${index}`, status: 'completed', duration_ms: t.d, ...(t.ft !== undefined && { first_text_ms: t.ft }) });
      byChat.set(chat, [...(byChat.get(chat) ?? []), { ...e, app_id: t.app, workflow_name: t.workflow }]);
    }
    for (const events of byChat.values()) await queue.add({ events });
    // Delivered twice: a turn counts once.
    for (const events of byChat.values()) await queue.add({ events });
    await drained();

    const q = 'granularity=hour&from=2026-02-01T09:00:00Z&to=2026-02-01T11:00:00Z';
    const r = await http(obs.url, 'GET', `/latency?${q}&group_by=workflow`, { token: op1 });
    expect(r.status).toBe(200);
    const mine = turns.filter((t) => t.app === 'app1');
    const expected = (ts: typeof turns) => ({
      turns: ts.length,
      first_text_ms: { p50: percentile(ts.flatMap((t) => (t.ft === undefined ? [] : [t.ft])), 0.5), p99: percentile(ts.flatMap((t) => (t.ft === undefined ? [] : [t.ft])), 0.99) },
      turn_ms: { p50: percentile(ts.map((t) => t.d), 0.5), p99: percentile(ts.map((t) => t.d), 0.99) },
    });
    expect(r.body.total).toEqual(expected(mine));
    const rows = [];
    for (const hour of ['09', '10'])
      for (const workflow of ['assistant', 'planner']) {
        const ts = mine.filter((t) => t.at.slice(11, 13) === hour && t.workflow === workflow);
        if (ts.length) rows.push({ period_start: `2026-02-01T${hour}:00:00.000Z`, workflow, ...expected(ts) });
      }
    expect(r.body.rows).toEqual(rows);

    // By app: app2's operator sees its one turn; app1's none of it.
    const other = await http(obs.url, 'GET', `/latency?${q}&group_by=app`, { token: op2 });
    expect(other.body.rows).toEqual([{ period_start: '2026-02-01T09:00:00.000Z', app_id: 'app2', turns: 1, first_text_ms: { p50: 1, p99: 1 }, turn_ms: { p50: 1, p99: 1 } }]);
    expect((await http(obs.url, 'GET', `/latency?${q}&app_id=app2`, { token: op1 })).body.total.turns).toBe(0);
    // A period with no turn has no row; a range of none has nulls, not zeros.
    const empty = await http(obs.url, 'GET', '/latency?from=2025-01-01T00:00:00Z&to=2025-01-02T00:00:00Z', { token: op1 });
    expect(empty.body).toMatchObject({ rows: [], total: { turns: 0, first_text_ms: { p50: null, p99: null }, turn_ms: { p50: null, p99: null } } });
    expect((await http(obs.url, 'GET', `/latency?${q}&group_by=user`, { token: op1 })).status).toBe(400);
    expect((await http(obs.url, 'GET', `/latency?${q}`, { token: await endUser() })).status).toBe(403);
  });
});

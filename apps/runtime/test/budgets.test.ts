/**
 * Budgets as an operator sets them and a user meets them: the API (operator only, within the
 * token's apps), a spent budget refusing the next model call (chat.error BUDGET_EXCEEDED) and the
 * next HTTP start or input (429 with Retry-After), a change applying to the next call, a user's
 * turn rate, cost priced from PRICE_OVERRIDES, two worker processes overshooting by at most one
 * call each, and a new day starting afresh. Also what observability's latency report reads:
 * each turn's end says how long its user waited.
 */
import type { ChildProcess } from 'node:child_process';
import { resolve } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import fc from 'fast-check';
import { budgets } from '@tessera/contracts';
import { createLogger, createPricer, createRedis } from '@tessera/kit';
import { call, tcpRelay, TestSocket, TEST_REDIS_URL, type Envelope } from '@tessera/kit/testing';
import { BudgetMeter } from '../src/budgets/meter';
import { http, spawnWorker, startRuntime, testEnv, token, wsUrl, type Env, type RuntimeInstance } from './harness';

const ONE_REDIS = /^rediss?:\/\//.test(TEST_REDIS_URL);

/** USD per million tokens of the fixtures' model. */
const PRICE = { input: 2, output: 8 };
const FIXTURES = { WORKFLOWS_DIR: resolve(__dirname, 'fixtures/workflows'), PRICE_OVERRIDES: JSON.stringify({ 'metered-model': PRICE }) };

let env: Env;
let api: RuntimeInstance; // HTTP and sockets, no worker
let workers: ChildProcess[] = [];
let op: string;

beforeAll(async () => {
  env = await testEnv('budgets');
  api = await startRuntime(env, { worker: false, extra: FIXTURES });
  workers = await Promise.all([spawnWorker(env, FIXTURES), spawnWorker(env, FIXTURES)]);
  op = await token('ops', ['app1'], { roles: ['operator'] });
}, 60_000);
afterAll(async () => {
  for (const w of workers) w.kill('SIGKILL');
  await api?.close();
  await env?.dropSchema();
});

const put = (path: string, limits: budgets.Limits, tok = op) => http(api.url, 'PUT', `/api/budgets/${path}`, limits, tok);

async function startChat(user: string, workflow = 'metered') {
  const tok = await token(user);
  const r = await call(api.url, 'POST', `/api/chats/app1/${workflow}/start`, { body: { user_id: user }, token: tok });
  return { tok, status: r.status, headers: r.headers, body: r.json as any, chatId: (r.json as any)?.chat_id as string };
}

/** One message over HTTP, its turn followed on a socket to its end: what the user saw. */
async function turn(user: string, chatId: string, tok: string, workflow = 'metered') {
  const ws = await TestSocket.connect(wsUrl(api.wsUrl, workflow, 'app1', chatId, user, tok));
  await ws.waitType('chat_meta');
  const from = ws.messages.length;
  const r = await call(api.url, 'POST', `/chat/app1/${chatId}/${user}/input`, { body: { message: 'hello', workflow_name: workflow }, token: tok });
  let events: Envelope[] = [];
  if (r.status === 202) {
    await ws.waitType('chat.run_complete', 20_000, from);
    events = ws.messages.slice(from);
  }
  await ws.close();
  return { status: r.status, headers: r.headers, body: r.json as any, events, errors: events.filter((e) => e.type === 'chat.error').map((e) => e.data) };
}

const usageOf = (events: Envelope[]) => events.filter((e) => e.type === 'chat.usage_delta').map((e) => e.data as { prompt_tokens: number; completion_tokens: number; total_tokens: number });

test('only an operator sets budgets, within the apps of the token; fields are checked and named', async () => {
  const user = await token('someone');
  expect((await put('app1', { tokens_per_day: 10 }, user)).status).toBe(403);
  expect((await http(api.url, 'GET', '/api/budgets', undefined, user)).status).toBe(403);
  expect((await http(api.url, 'GET', '/api/budgets')).status).toBe(401);

  const otherOp = await token('ops2', ['other-app'], { roles: ['operator'] });
  expect((await put('app1', { tokens_per_day: 10 }, otherOp)).status).toBe(403);

  const bad = await put('app1', { tokens_per_day: -5 } as budgets.Limits);
  expect(bad.status).toBe(400);
  expect(JSON.stringify(bad.body)).toContain('tokens_per_day');
  const unknown = await put('app1', { tokens: 5 } as unknown as budgets.Limits);
  expect(unknown.status).toBe(400);
  expect(JSON.stringify(unknown.body)).toContain('tokens');

  const set = await put('app1/users/alice-api', { tokens_per_day: 1_000, cost_usd_per_month: 3 });
  expect(set.status).toBe(200);
  expect(set.body).toMatchObject({ app_id: 'app1', user_id: 'alice-api', limits: { tokens_per_day: 1_000, cost_usd_per_month: 3 }, spent: { day: { tokens: 0, cost_usd: 0 } }, remaining: { tokens_per_day: 1_000, tokens_per_month: null } });

  // Another app's operator: the budget does not exist for them, to the byte.
  const theirs = await http(api.url, 'GET', '/api/budgets/app1/users/alice-api', undefined, otherOp);
  const none = await http(api.url, 'GET', '/api/budgets/app1/users/nobody-at-all', undefined, otherOp);
  expect(theirs.status).toBe(404);
  expect(none.status).toBe(404);
  expect((await http(api.url, 'GET', '/api/budgets', undefined, otherOp)).body).toEqual({ budgets: [] });
  expect((await http(api.url, 'DELETE', '/api/budgets/app1/users/alice-api', undefined, otherOp)).status).toBe(404);

  const listed = await http(api.url, 'GET', '/api/budgets?app_id=app1', undefined, op);
  expect(listed.body.budgets.map((b: budgets.Budget) => b.user_id)).toContain('alice-api');
  expect((await http(api.url, 'DELETE', '/api/budgets/app1/users/alice-api', undefined, op)).status).toBe(204);
  expect((await http(api.url, 'DELETE', '/api/budgets/app1/users/alice-api', undefined, op)).status).toBe(404);
});

test('any body and any user id: a budget is stored as sent (and reads back so), or refused with a 400 naming the field; never a 5xx', async () => {
  const limit = fc.oneof(fc.constant(undefined), fc.constant(null), fc.integer({ min: -5, max: 2_000_000 }), fc.double({ noNaN: false }), fc.string({ maxLength: 4 }), fc.boolean());
  const body = fc.oneof(
    fc.record({ tokens_per_day: limit, tokens_per_month: limit, cost_usd_per_day: limit, cost_usd_per_month: limit, turns_per_minute: limit }, { requiredKeys: [] }),
    fc.dictionary(fc.string({ maxLength: 12 }), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 3 }),
    fc.jsonValue({ maxDepth: 2 }),
  );
  const user = fc.oneof(fc.constantFrom('prop-user', '*', 'auth0|abc', 'a b', '../x', '%2e%2e', 'ü', ''), fc.string({ maxLength: 20 }));
  await fc.assert(
    fc.asyncProperty(body, user, async (b, u) => {
      const path = `/api/budgets/app1/users/${encodeURIComponent(u)}`;
      const r = await http(api.url, 'PUT', path, b, op);
      expect(r.status).toBeLessThan(500);
      const parsed = budgets.Limits.safeParse(b);
      const goodUser = budgets.UserBudgetParams.shape.user_id.safeParse(u).success;
      if (r.status === 200) {
        expect(parsed.success && goodUser).toBe(true);
        const sent = Object.fromEntries(Object.entries(parsed.data!).filter(([, v]) => v !== null && v !== undefined));
        expect(r.body.limits).toEqual(sent);
        expect((await http(api.url, 'GET', path, undefined, op)).body.user.limits).toEqual(sent);
      } else if (u !== '' && !u.includes('/')) {
        // A 404 is a path the router has no route for (an empty or slashed id); anything else names what is wrong.
        expect(r.status).toBe(400);
        expect(JSON.stringify(r.body)).toMatch(/body|user_id/);
      }
    }),
    { numRuns: 150 },
  );
  await http(api.url, 'DELETE', '/api/budgets/app1/users/*', undefined, op);
});

test("a user's spent budget ends the turn at its next model call, refuses the next start and input with 429 and Retry-After; raising it lets the next call run", async () => {
  // Each of this user's turns makes two calls; the budget is smaller than one call.
  await put('app1/users/bob', { tokens_per_day: 10 });
  const chat = await startChat('bob', 'two_calls');
  expect(chat.status).toBe(201);

  // Nothing spent yet: the first call runs whole, the second is refused before it starts.
  const first = await turn('bob', chat.chatId, chat.tok, 'two_calls');
  expect(first.status).toBe(202);
  expect(usageOf(first.events)).toHaveLength(1);
  const texts = first.events.filter((e) => e.type === 'chat.text' && e.data.done && e.data.role === 'assistant').map((e) => e.data.content);
  expect(texts).toEqual(['Passing you on.']);
  expect(first.errors).toEqual([{ error_code: 'BUDGET_EXCEEDED', message: expect.stringMatching(/^Your daily budget of 10 tokens is spent; it resets at \d{4}-\d\d-\d\dT00:00:00\.000Z$/) }]);
  expect(first.events.at(-1)?.data).toMatchObject({ status: 'failed' });

  // Now spent: HTTP input and start are refused before anything is queued.
  const untilMidnight = Math.ceil((Date.UTC(new Date().getUTCFullYear(), new Date().getUTCMonth(), new Date().getUTCDate() + 1) - Date.now()) / 1000);
  const refused = await turn('bob', chat.chatId, chat.tok, 'two_calls');
  expect(refused.status).toBe(429);
  expect(refused.body.error.code).toBe('BUDGET_EXCEEDED');
  expect(Math.abs(Number(refused.headers['retry-after']) - untilMidnight)).toBeLessThanOrEqual(5);
  const start = await startChat('bob');
  expect(start.status).toBe(429);
  expect(start.body.error).toMatchObject({ code: 'BUDGET_EXCEEDED', message: expect.stringContaining('daily budget of 10 tokens') });
  expect(Number(start.headers['retry-after'])).toBeGreaterThan(0);

  // Over the socket: the same refusal, as chat.error, and the socket stays open.
  const ws = await TestSocket.connect(wsUrl(api.wsUrl, 'two_calls', 'app1', chat.chatId, 'bob', chat.tok));
  await ws.waitType('chat_meta');
  const from = ws.messages.length;
  ws.send({ type: 'user.input.submit', text: 'again' });
  expect((await ws.waitType('chat.error', 5_000, from)).data).toMatchObject({ error_code: 'BUDGET_EXCEEDED' });

  // What the operator sees: spent, nothing left.
  const seen = await http(api.url, 'GET', '/api/budgets/app1/users/bob', undefined, op);
  expect(seen.body).toMatchObject({ source: 'user', user: { spent: { day: { tokens: usageOf(first.events)[0].total_tokens } }, remaining: { tokens_per_day: 0 } } });

  // Raised: the next message is taken and answered (by the agent handed to, now the chat's).
  await put('app1/users/bob', { tokens_per_day: 1_000_000 });
  const from2 = ws.messages.length;
  ws.send({ type: 'user.input.submit', text: 'once more' });
  const done = await ws.waitType('chat.run_complete', 20_000, from2);
  expect(done.data.status).toBe('completed');
  expect(usageOf(ws.messages.slice(from2)).map((u: any) => u.agent)).toEqual(['second']);
  await ws.close();
});

test('over AG-UI: the run ends with RUN_ERROR code BUDGET_EXCEEDED; a new run of a spent user is a 429 with Retry-After', async () => {
  await put('app1/users/hana', { tokens_per_day: 10 });
  const tok = await token('hana');
  const run = async (threadId: string) => {
    const res = await fetch(`${api.url}/api/agui/app1/two_calls`, {
      method: 'POST',
      headers: { authorization: `Bearer ${tok}`, 'content-type': 'application/json', accept: 'text/event-stream' },
      body: JSON.stringify({ threadId, runId: `${threadId}-run`, messages: [{ id: 'm1', role: 'user', content: 'hello' }] }),
    });
    const text = await res.text();
    const events = [...text.matchAll(/^data: (.*)$/gm)].map((m) => JSON.parse(m[1]));
    return { status: res.status, retryAfter: res.headers.get('retry-after'), text, events };
  };
  const first = await run('hana-thread-1');
  expect(first.status).toBe(200);
  expect(first.events.at(-1)).toMatchObject({ type: 'RUN_ERROR', code: 'BUDGET_EXCEEDED', message: expect.stringContaining('daily budget of 10 tokens') });
  const second = await run('hana-thread-2');
  expect(second.status).toBe(429);
  expect(Number(second.retryAfter)).toBeGreaterThan(0);
  expect(second.text).toContain('BUDGET_EXCEEDED');
});

test("over MCP: the tool call's turn fails with the budget's words; the next call is refused with BUDGET_EXCEEDED before any turn", async () => {
  await put('app1/users/jay', { tokens_per_day: 10 });
  const transport = new StreamableHTTPClientTransport(new URL(`${api.url}/api/mcp/app1`), { requestInit: { headers: { authorization: `Bearer ${await token('jay')}` } } });
  const client = new Client({ name: 'budgets-test', version: '1.0.0' });
  await client.connect(transport);
  try {
    const text = (r: CallToolResult) => r.content.flatMap((c) => (c.type === 'text' ? [c.text] : [])).join('');
    const first = (await client.callTool({ name: 'two_calls', arguments: { message: 'hello' } })) as CallToolResult;
    expect(first.isError).toBe(true);
    expect(text(first)).toMatch(/Your daily budget of 10 tokens is spent; it resets at /);
    const second = (await client.callTool({ name: 'two_calls', arguments: { message: 'again' } })) as CallToolResult;
    expect(second.isError).toBe(true);
    expect(text(second)).toMatch(/^BUDGET_EXCEEDED: Your daily budget of 10 tokens is spent/);
  } finally {
    await client.close();
  }
});

test("the every-user budget counts each user apart; a user's own replaces it; the app's counts them all", async () => {
  await put('app1/users/*', { tokens_per_day: 10 });
  await put('app1/users/carol', { tokens_per_day: 1_000_000 });
  const [dave, erin, carol] = await Promise.all([startChat('dave'), startChat('erin'), startChat('carol')]);
  // Each user's first turn runs (nothing of theirs spent); each one's second is refused: spend is per user.
  for (const [u, c] of [['dave', dave], ['erin', erin]] as const) {
    expect((await turn(u, c.chatId, c.tok)).errors).toEqual([]);
    expect((await turn(u, c.chatId, c.tok)).status).toBe(429);
  }
  expect((await turn('carol', carol.chatId, carol.tok)).errors).toEqual([]);
  expect((await turn('carol', carol.chatId, carol.tok)).errors).toEqual([]);
  expect((await http(api.url, 'GET', '/api/budgets/app1/users/dave', undefined, op)).body).toMatchObject({ source: 'every_user', user: { limits: { tokens_per_day: 10 } } });
  expect((await http(api.url, 'GET', '/api/budgets/app1/users/carol', undefined, op)).body).toMatchObject({ source: 'user' });

  // The app's own budget, once set, refuses carol too: the app has spent more than it allows.
  await put('app1', { tokens_per_day: 1 });
  const refused = await turn('carol', carol.chatId, carol.tok);
  expect(refused.status).toBe(429);
  expect(refused.body.error.message).toMatch(/^The app's daily budget of 1 tokens is spent/);
  await http(api.url, 'DELETE', '/api/budgets/app1', undefined, op);
  await http(api.url, 'DELETE', '/api/budgets/app1/users/*', undefined, op);
  expect((await turn('dave', dave.chatId, dave.tok)).errors).toEqual([]);
});

test("a user's turn rate: the budget's turns_per_minute replaces the deployment's, refused with RATE_LIMITED and Retry-After", async () => {
  await put('app1/users/fay', { turns_per_minute: 2 });
  const c = await startChat('fay');
  const sent = [];
  for (let i = 0; i < 3; i++) sent.push(await call(api.url, 'POST', `/chat/app1/${c.chatId}/fay/input`, { body: { message: `m${i}`, workflow_name: 'metered' }, token: c.tok }));
  expect(sent.map((r) => r.status)).toEqual([202, 202, 429]);
  expect((sent[2].json as any).error.code).toBe('RATE_LIMITED');
  expect(Number(sent[2].headers['retry-after'])).toBeGreaterThanOrEqual(1);
  expect(Number(sent[2].headers['retry-after'])).toBeLessThanOrEqual(60);
});

test('cost is priced from PRICE_OVERRIDES, within 1% of the hand computation, and a cost budget refuses like a token one', async () => {
  const c = await startChat('gus');
  const t = await turn('gus', c.chatId, c.tok);
  const [u] = usageOf(t.events);
  const byHand = (u.prompt_tokens * PRICE.input + u.completion_tokens * PRICE.output) / 1e6;
  const seen = (await http(api.url, 'GET', '/api/budgets/app1/users/gus', undefined, op)).body;
  expect(seen.source).toBe('none');
  expect(Math.abs(seen.user.spent.month.cost_usd - byHand) / byHand).toBeLessThan(0.01);

  await put('app1/users/gus', { cost_usd_per_month: byHand / 2 });
  const refused = await turn('gus', c.chatId, c.tok);
  expect(refused.status).toBe(429);
  expect(refused.body.error.message).toMatch(/^Your monthly budget of \$0\.00 is spent/);
});

test("a turn's end says how long its user waited for the first text and for the whole turn", async () => {
  const c = await startChat('ida');
  const sent = Date.now();
  const t = await turn('ida', c.chatId, c.tok);
  const waited = Date.now() - sent;
  const end = t.events.find((e) => e.type === 'chat.run_complete')!.data;
  // The metered reply streams 12 tokens 15 ms apart: the first comes well before the end.
  expect(end.first_text_ms).toBeGreaterThanOrEqual(0);
  expect(end.duration_ms - end.first_text_ms).toBeGreaterThanOrEqual(100);
  expect(end.duration_ms).toBeLessThanOrEqual(waited);
});

test('concurrent turns on two workers cross an app budget by at most one model call per worker', async () => {
  // One call of a first message: what each turn here uses (the same prompt, the same reply).
  const probe = await startChat('probe-user');
  const [call1] = usageOf((await turn('probe-user', probe.chatId, probe.tok)).events);
  const per = call1.total_tokens;
  const limit = per * 6 + Math.floor(per / 2);
  // A fresh app for this test: nothing it spent before counts.
  const opB = await token('ops-b', ['race-app'], { roles: ['operator'] });
  expect((await http(api.url, 'PUT', '/api/budgets/race-app', { tokens_per_day: limit }, opB)).status).toBe(200);

  const users = Array.from({ length: 24 }, (_, i) => `racer-${i}`);
  const outcomes = await Promise.all(
    users.map(async (user) => {
      const tok = await token(user, ['race-app']);
      const s = await call(api.url, 'POST', '/api/chats/race-app/metered/start', { body: { user_id: user }, token: tok });
      if (s.status === 429) return 'refused';
      const chatId = (s.json as any).chat_id;
      const ws = await TestSocket.connect(wsUrl(api.wsUrl, 'metered', 'race-app', chatId, user, tok));
      await ws.waitType('chat_meta');
      const r = await call(api.url, 'POST', `/chat/race-app/${chatId}/${user}/input`, { body: { message: 'hello', workflow_name: 'metered' }, token: tok });
      if (r.status === 429) return (await ws.close(), 'refused');
      const end = await ws.waitType('chat.run_complete', 30_000);
      const errors = ws.messages.filter((m) => m.type === 'chat.error').map((m) => m.data.error_code);
      await ws.close();
      if (errors.length) return errors.join(',');
      return end.data.status === 'completed' ? 'ran' : end.data.status;
    }),
  );
  const ran = outcomes.filter((o) => o === 'ran').length;
  expect(outcomes.filter((o) => o !== 'ran' && o !== 'refused' && o !== 'BUDGET_EXCEEDED')).toEqual([]);
  const spent = (await http(api.url, 'GET', '/api/budgets/race-app', undefined, opB)).body.spent.day.tokens;
  expect(spent).toBe(ran * per);
  // Reached, and crossed by at most one call per worker.
  expect(spent).toBeGreaterThanOrEqual(limit);
  expect(spent).toBeLessThanOrEqual(limit + workers.length * per);
  expect(outcomes.filter((o) => o !== 'ran').length).toBeGreaterThan(0);
}, 60_000);

test('a call admitted before any call of the budget had ended counts, once one has, as much as the largest', async () => {
  // Two meters on one Redis are two workers. B's first call starts before anything is known of the
  // budget's calls; A's first ends (30 tokens). What A may start next at once must leave room for
  // B's call: 195 - 30 spent - 30 held for B = 4 calls of 30, not 5.
  const logger = createLogger('budgets-test', 'silent');
  const meter = () => new BudgetMeter(api.s.redis, api.s.budgetStore, `${env.BULL_PREFIX}:holds`, createPricer({}), logger);
  const [a, b] = [meter(), meter()];
  await api.s.budgetStore.put('holds-app', '', { tokens_per_day: 195 });
  await a.changed('holds-app');
  const usage = { prompt_tokens: 20, completion_tokens: 10, total_tokens: 30 };
  const b1 = await b.admit('holds-app', 'u');
  const a1 = await a.admit('holds-app', 'u');
  if (!b1.ok || !a1.ok) throw new Error('the first calls of each worker are admitted');
  await a1.done(usage, 'm', 'scripted');

  const asked = Array.from({ length: 8 }, () => a.admit('holds-app', 'u'));
  const settled = new Set<number>();
  asked.forEach((p, i) => void p.then(() => settled.add(i)));
  await new Promise((r) => setTimeout(r, 300));
  expect(settled.size).toBe(4);
  // Everything ends: the spend stays within one call per worker past the limit.
  await b1.done(usage, 'm', 'scripted');
  const tickets = await Promise.all(
    asked.map(async (p) => {
      const t = await p;
      if (t.ok) await t.done(usage, 'm', 'scripted');
      return t.ok;
    }),
  );
  const spent = (await a.spent('holds-app', 'app')).day.tokens;
  expect(spent).toBe(30 * (2 + tickets.filter(Boolean).length));
  expect(spent).toBeLessThanOrEqual(195 + 2 * 30);
});

// A relay stands in front of one Redis: a cluster's clients reach its nodes at the addresses the cluster gives.
(ONE_REDIS ? test : test.skip)('a call\'s spend sent again after a dropped connection (ioredis resends a command whose answer was lost) is counted once', async () => {
  const relay = await tcpRelay(new URL(TEST_REDIS_URL));
  const redis = createRedis(relay.url, createLogger('budgets-test', 'silent'), 'budgets-cut');
  try {
    const meter = new BudgetMeter(redis, api.s.budgetStore, `${env.BULL_PREFIX}:resend`, createPricer({}), createLogger('budgets-test', 'silent'));
    await api.s.budgetStore.put('resend-app', '', { tokens_per_day: 1_000 });
    await meter.changed('resend-app');
    let cuts = 0;
    redis.on('reconnecting', () => cuts++);
    for (const tokens of [30, 12]) {
      const t = await meter.admit('resend-app', 'u');
      if (!t.ok) throw new Error(t.message);
      // The record runs in Redis; its answer is cut off, and ioredis sends it again.
      relay.cutAfter('recorded:');
      await t.done({ prompt_tokens: tokens, completion_tokens: 0, total_tokens: tokens }, 'm', 'scripted');
    }
    expect(cuts).toBeGreaterThanOrEqual(2);
    expect((await meter.spent('resend-app', 'app')).day.tokens).toBe(42);
    expect((await meter.spent('resend-app', { user: 'u' })).day.tokens).toBe(42);
  } finally {
    redis.disconnect();
    await relay.down();
  }
});

test('a new UTC day starts afresh; the month goes on counting', async () => {
  let now = Date.UTC(2031, 0, 14, 23, 59, 0);
  const meter = new BudgetMeter(api.s.redis, api.s.budgetStore, `${env.BULL_PREFIX}:clock`, createPricer({}), createLogger('budgets-test', 'silent'), () => now);
  await api.s.budgetStore.put('clock-app', '', { tokens_per_day: 100, tokens_per_month: 250 });
  await meter.changed('clock-app');
  const spend = async (tokens: number) => {
    const t = await meter.admit('clock-app', 'u');
    if (!t.ok) return t;
    await t.done({ prompt_tokens: tokens, completion_tokens: 0, total_tokens: tokens }, 'm', 'scripted');
    return t;
  };
  expect((await spend(120)).ok).toBe(true);
  const refused = await spend(1);
  expect(refused.ok).toBe(false);
  expect(!refused.ok && refused.retryAfterS).toBe(60);
  now += 61_000; // 00:00:01 on the 15th
  expect((await spend(120)).ok).toBe(true);
  expect((await meter.spent('clock-app', 'app')).month.tokens).toBe(240);
  now += 86_400_000;
  expect((await spend(20)).ok).toBe(true);
  const month = await spend(1);
  expect(!month.ok && month.message).toMatch(/^The app's monthly budget of 250 tokens is spent; it resets at 2031-02-01T00:00:00\.000Z$/);
});

import { asService, endUser, http, ingest, KEY_APP2, operator, sid, startObservability, testEnv, type Env, type Instance } from './harness';

let env: Env;
let obs: Instance;
let op: string;

beforeAll(async () => {
  env = await testEnv('ingest');
  obs = await startObservability(env);
  op = await operator(['app1']);
});
afterAll(async () => {
  await obs?.close();
  await env?.dropSchema();
});

const at = (s: number) => new Date(Date.UTC(2026, 10, 28, 10, 0, s)).toISOString();

describe('POST /events', () => {
  it("records an outside agent's lifecycle: statuses, counts and events in order", async () => {
    const id = sid('agent');
    const start = await ingest(obs.url, { event_type: 'session_start', session_id: id, session_name: 'Fix the build', timestamp: at(0), agent_name: 'claude', project_dir: '/src/app' });
    expect(start.status).toBe(200);
    expect(start.body).toMatchObject({ accepted: 1, rejected: 0, results: [{ index: 0, status: 'accepted' }] });
    let s = await http(obs.url, 'GET', `/sessions/${id}`, { token: op });
    expect(s.body).toMatchObject({ session_id: id, status: 'running', session_name: 'Fix the build', app_id: 'app1', source: 'external', agent_name: 'claude', event_count: 1 });

    const tools = await ingest(obs.url, {
      events: [
        { event_type: 'pre_tool', session_id: id, timestamp: at(1), tool_name: 'Bash', tool_input: { command: 'npm test' } },
        { event_type: 'post_tool', session_id: id, timestamp: at(3), tool_name: 'Bash', tool_output: 'ok', exit_code: 1, error: 'tests failed', usage: { input_tokens: 100, output_tokens: 20 } },
        { event_type: 'message', session_id: id, timestamp: at(4), role: 'assistant', content: [{ type: 'text', text: 'done' }], usage: { input_tokens: 5, output_tokens: 7 } },
      ],
    });
    expect(tools.body).toMatchObject({ accepted: 3, rejected: 0 });
    await ingest(obs.url, { event_type: 'session_stop', session_id: id, timestamp: at(10), reason: 'user exited' });

    s = await http(obs.url, 'GET', `/sessions/${id}`, { token: op });
    expect(s.status).toBe(200);
    expect(s.body).toMatchObject({
      status: 'finished',
      event_count: 5,
      usage: { input_tokens: 105, output_tokens: 27, total_tokens: 132 },
      error_count: 1,
      duration_ms: 10_000,
      last_event_type: 'session_stop',
      last_event_at: at(10),
    });
    const ev = await http(obs.url, 'GET', `/events/${id}`, { token: op });
    expect(ev.status).toBe(200);
    expect(ev.body.events.map((e: { seq: number; event_type: string }) => [e.seq, e.event_type])).toEqual([
      [1, 'session_start'],
      [2, 'pre_tool'],
      [3, 'post_tool'],
      [4, 'message'],
      [5, 'session_stop'],
    ]);
    expect(ev.body.events[1]).toMatchObject({ tool_name: 'Bash', tool_input: { command: 'npm test' }, attributes: { 'gen_ai.operation.name': 'execute_tool' } });
    expect(ev.body.events[2]).toMatchObject({ tool_output: 'ok', exit_code: 1, error: 'tests failed' });
    expect(ev.body.events[3]).toMatchObject({ role: 'assistant', content: [{ type: 'text', text: 'done' }] });
    expect(ev.body.next_after).toBeNull();

    // A new session_start revives a finished session.
    await ingest(obs.url, { event_type: 'session_start', session_id: id });
    s = await http(obs.url, 'GET', `/sessions/${id}`, { token: op });
    expect(s.body).toMatchObject({ status: 'running', event_count: 6 });

    const typed = await http(obs.url, 'GET', `/events/${id}?event_type=session_start&limit=1`, { token: op });
    expect(typed.body.events.map((e: { seq: number }) => e.seq)).toEqual([1]);
    expect(typed.body.next_after).toBe(1);
    const next = await http(obs.url, 'GET', `/events/${id}?event_type=session_start&after=1`, { token: op });
    expect(next.body.events.map((e: { seq: number }) => e.seq)).toEqual([6]);
  });

  it('stores the good events of a batch and rejects each bad one with its reason', async () => {
    const id = sid('batch');
    const r = await ingest(obs.url, {
      events: [
        { event_type: 'session_start', session_id: id },
        { event_type: 'pre_tool', session_id: '' },
        { event_type: 'post_tool', session_id: id, exit_code: 'one' },
        'not an event',
        { event_type: 'message', session_id: id, content: [{ type: 'text', text: 'bad \u0000 text' }] },
        { event_type: 'message', session_id: id, app_id: 'app2' },
        { event_type: 'session_stop', session_id: id },
      ],
    });
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ accepted: 2, duplicates: 0, rejected: 5 });
    const byIndex = r.body.results as { index: number; status: string; reason?: string }[];
    expect(byIndex.map((v) => v.status)).toEqual(['accepted', 'rejected', 'rejected', 'rejected', 'rejected', 'rejected', 'accepted']);
    expect(byIndex[1].reason).toMatch(/session_id/);
    expect(byIndex[2].reason).toMatch(/exit_code/);
    expect(byIndex[4].reason).toMatch(/content\.0\.text.*NUL/);
    expect(byIndex[5].reason).toMatch(/app_id.*app2/);
    const s = await http(obs.url, 'GET', `/sessions/${id}`, { token: op });
    expect(s.body).toMatchObject({ status: 'finished', event_count: 2 });
  });

  it('stores and counts the same event once, also within one batch and across sessions', async () => {
    const id = sid('dup');
    const e = { event_type: 'message', session_id: id, event_id: 'm-1', usage: { input_tokens: 10, output_tokens: 1 } };
    const first = await ingest(obs.url, { events: [e, e] });
    expect(first.body).toMatchObject({ accepted: 1, duplicates: 1 });
    const again = await ingest(obs.url, e);
    expect(again.body).toMatchObject({ accepted: 0, duplicates: 1, results: [{ status: 'duplicate', event_id: 'm-1' }] });
    const s = await http(obs.url, 'GET', `/sessions/${id}`, { token: op });
    expect(s.body).toMatchObject({ event_count: 1, usage: { input_tokens: 10, output_tokens: 1 } });
    const ev = await http(obs.url, 'GET', `/events/${id}`, { token: op });
    expect(ev.body.events).toHaveLength(1);
    // The id is the session's: another session may use it.
    const other = await ingest(obs.url, { ...e, session_id: sid('dup-other') });
    expect(other.body).toMatchObject({ accepted: 1 });
  });

  it('takes a batch of 1,000 events in one request', async () => {
    const id = sid('big');
    const events = Array.from({ length: 1000 }, (_, i) => ({ event_type: 'message', session_id: id, event_id: `e${i}`, content: [{ type: 'text', text: 'x'.repeat(500) }] }));
    const r = await ingest(obs.url, { events });
    expect(r.body).toMatchObject({ accepted: 1000 });
    const s = await http(obs.url, 'GET', `/sessions/${id}`, { token: op });
    expect(s.body.event_count).toBe(1000);
    const tooMany = await ingest(obs.url, { events: [...events, events[0]] });
    expect(tooMany.status).toBe(400);
    const tooBig = await ingest(obs.url, { events: events.slice(0, 10).map((e) => ({ ...e, tool_input: { blob: 'x'.repeat(400_000) } })) });
    expect(tooBig.status).toBe(413);
  });

  it('needs an ingest key or the service key; a key writes only its own app', async () => {
    const id = sid('auth');
    expect((await http(obs.url, 'POST', '/events', { body: { event_type: 'x', session_id: id } })).status).toBe(401);
    expect((await ingest(obs.url, { event_type: 'x', session_id: id }, 'not-a-key-0123456789')).status).toBe(401);
    expect((await http(obs.url, 'POST', '/events', { body: { event_type: 'x', session_id: id }, token: op })).status).toBe(401);
    expect((await http(obs.url, 'POST', '/events', { body: { event_type: 'x', session_id: id }, headers: { 'x-tessera-service-key': 'wrong-key-0123456789' } })).status).toBe(401);

    // app1's session; app2's key cannot append to it: the same id under app2's key is app2's own session.
    await ingest(obs.url, { event_type: 'session_start', session_id: id });
    const foreign = await ingest(obs.url, { event_type: 'message', session_id: id }, KEY_APP2);
    expect(foreign.body).toMatchObject({ accepted: 1 });
    expect((await http(obs.url, 'GET', `/sessions/${id}`, { token: op })).body).toMatchObject({ app_id: 'app1', event_count: 1 });
    const named = await ingest(obs.url, { event_type: 'message', session_id: sid('x'), app_id: 'app1' }, KEY_APP2);
    expect(named.body).toMatchObject({ rejected: 1 });
    // The service key writes any app, and sessions with none.
    const svc = await asService(obs.url, { events: [{ event_type: 'message', session_id: id, app_id: 'app1' }, { event_type: 'session_start', session_id: sid('noapp') }] });
    expect(svc.body).toMatchObject({ accepted: 2 });
    expect((await http(obs.url, 'GET', `/sessions/${id}`, { token: op })).body.event_count).toBe(2);
    // An end user's token is not an operator's.
    expect((await http(obs.url, 'GET', `/sessions/${id}`, { token: await endUser() })).status).toBe(403);
  });

  it('answers hostile input with a 400 naming the field, never a 5xx', async () => {
    const id = sid('hostile');
    let deep: unknown = 'x';
    for (let i = 0; i < 40; i++) deep = { d: deep };
    const cases: [unknown, RegExp][] = [
      [{ event_type: 'x', session_id: 'a\u0000b' }, /session_id/],
      [{ event_type: 'x', session_id: id, tool_name: 'bad \ud800 surrogate' }, /tool_name/],
      [{ event_type: 'x', session_id: id, tool_input: deep }, /tool_input/],
      [{ event_type: 'x', session_id: id, tool_input: ['fine', { k: 'nul \u0000' }] }, /tool_input\.1\.k/],
      [{ event_type: 'x', session_id: id, tool_output: [['\udc00']] }, /tool_output\.0\.0/],
      [{ event_type: 'x', session_id: id, content: [{ type: 'text', text: 'ok', meta: { 'bad\u0000key': 1 } }] }, /content\.0\.meta/],
      [{ event_type: 'x', session_id: id, timestamp: 1e20 }, /timestamp/],
      [{ event_type: 'x', session_id: id, timestamp: '-271821-04-20T00:00:00Z' }, /timestamp/],
      [{ event_type: 'x', session_id: id, timestamp: -1e15 }, /timestamp/],
      [{ event_type: 'x', session_id: id, exit_code: 2 ** 40 }, /exit_code/],
      [{ event_type: 42, session_id: id }, /event_type/],
      [{ event_type: 'x', session_id: id, timestamp: 'yesterday' }, /timestamp/],
      [{ event_type: 'x', session_id: id, usage: { input_tokens: -1 } }, /usage\.input_tokens/],
      [{ events: 'many' }, /events/],
      [[1, 2, 3], /body/],
    ];
    for (const [body, field] of cases) {
      const r = await ingest(obs.url, body);
      expect([JSON.stringify(body).slice(0, 80), r.status]).toEqual([JSON.stringify(body).slice(0, 80), 400]);
      expect(r.body.error.message).toMatch(field);
    }
    let deeper: unknown = 1;
    for (let i = 0; i < 100; i++) deeper = [deeper];
    expect((await ingest(obs.url, { event_type: 'x', session_id: id, tool_input: deeper })).status).toBe(400);
    const raw = await http(obs.url, 'POST', '/events', { raw: '{"event_type": "x", "session_id":', headers: { 'content-type': 'application/json', 'x-ingest-key': 'ingest-key-app1-0123456789' } });
    expect(raw.status).toBe(400);
    // In a batch the same events are rejected one by one, and nothing was stored.
    const batch = await ingest(obs.url, { events: cases.slice(0, 13).map(([b]) => b) });
    expect(batch.status).toBe(200);
    expect(batch.body).toMatchObject({ accepted: 0, rejected: 13 });
    expect((await http(obs.url, 'GET', `/sessions/${id}`, { token: op })).status).toBe(404);
    expect((await http(obs.url, 'GET', '/health')).status).toBe(200);
  });
});

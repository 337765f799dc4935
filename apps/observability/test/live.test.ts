import { randomBytes } from 'node:crypto';
import { signToken } from '@tessera/kit';
import { call, TestSocket } from '@tessera/kit/testing';
import { operator as operatorOf, SECRET, SERVICE_KEY, startObservability, testEnv, type Env, type Instance } from './harness';

/**
 * The live socket across two instances, as an operator's console uses it: what one instance
 * stores reaches a socket held on the other, scoped to the token's apps, and a subscription
 * resumes from a seq without a gap or a duplicate.
 */
let env: Env;
let a: Instance;
let b: Instance;
let operator: string;

beforeAll(async () => {
  // Two instances on one database and Redis.
  env = await testEnv('live');
  const extra = { WS_HEARTBEAT_MS: '200', INGEST_WORKER: 'false', RETENTION_DAYS: '0' };
  [a, b] = await Promise.all([startObservability(env, extra), startObservability(env, extra)]);
  operator = await operatorOf(['app1'], 'ops');
});
afterAll(async () => {
  await Promise.all([a?.close(), b?.close()]);
  await env?.dropSchema();
});

const post = (events: unknown[]) => call(a.url, 'POST', '/events', { body: { events }, headers: { 'x-tessera-service-key': SERVICE_KEY } });
const ev = (session: string, type: string, extra: Record<string, unknown> = {}) => ({ event_type: type, session_id: session, app_id: 'app1', ...extra });
const liveOn = (inst: Instance, tok = operator) => TestSocket.connect(`${inst.url.replace('http', 'ws')}/ws?access_token=${tok}`);

it('an event stored on instance A reaches a socket on instance B, which outlives two heartbeats', async () => {
  const s = await liveOn(b);
  await s.waitType('init');
  await new Promise((r) => setTimeout(r, 500)); // two and a half heartbeat intervals
  expect(s.closeCode).toBeNull();
  s.send({ type: 'subscribe', all: true });
  await s.waitType('subscribed');
  expect((await post([ev('live-1', 'session_start', { session_name: 'first' })])).status).toBe(200);
  const updated = await s.waitFor((m) => m.type === 'session_updated' && m.session.session_id === 'live-1');
  expect(updated.session).toMatchObject({ status: 'running', session_name: 'first', app_id: 'app1' });
  const event = await s.waitFor((m) => m.type === 'event' && m.session_id === 'live-1');
  expect(event.event).toMatchObject({ seq: 1, event_type: 'session_start' });
  await s.close();
});

it('a subscription resumes after a seq: the stored rest, then `subscribed`, then live, each seq once and in order', async () => {
  await post([ev('live-2', 'session_start'), ...Array.from({ length: 5 }, (_, i) => ev('live-2', 'message', { event_id: `m${i}`, content: [{ type: 'text', text: `m${i}` }] }))]);
  const s = await liveOn(b);
  await s.waitType('init');
  s.send({ type: 'subscribe', session_id: 'live-2', after: 3 });
  const subscribed = await s.waitType('subscribed');
  expect(subscribed).toMatchObject({ session_id: 'live-2', last_seq: 6 });
  // Live events while and after it subscribed, written by the other instance.
  await post(Array.from({ length: 4 }, (_, i) => ev('live-2', 'message', { event_id: `n${i}` })));
  await s.waitFor((m) => m.type === 'event' && m.event.seq === 10);
  const seqs = s.messages.filter((m) => m.type === 'event').map((m) => m.event.seq);
  expect(seqs).toEqual([4, 5, 6, 7, 8, 9, 10]);
  // A replayed duplicate (the same event_id again) is stored once and sent no more.
  await post([ev('live-2', 'message', { event_id: 'n0' }), ev('live-2', 'session_stop')]);
  await s.waitFor((m) => m.type === 'event' && m.event.event_type === 'session_stop');
  expect(s.messages.filter((m) => m.type === 'event').map((m) => m.event.seq)).toEqual([4, 5, 6, 7, 8, 9, 10, 11]);
  await s.close();
});

it("shows only the token's apps, refuses a token without the operator role, and reports deletions", async () => {
  const s = await liveOn(b);
  const init = await s.waitType('init');
  expect(init.sessions.every((x: { app_id: string }) => x.app_id === 'app1')).toBe(true);
  s.send({ type: 'subscribe', all: true });
  await s.waitType('subscribed');
  await post([{ event_type: 'session_start', session_id: 'other-app', app_id: 'app2' }, ev('live-3', 'session_start')]);
  await s.waitFor((m) => m.type === 'session_updated' && m.session.session_id === 'live-3');
  expect(s.messages.some((m) => JSON.stringify(m).includes('other-app'))).toBe(false);
  s.send({ type: 'subscribe', session_id: 'other-app' });
  expect((await s.waitType('error')).code).toBe('NOT_FOUND');

  const del = await call(a.url, 'DELETE', '/sessions/live-3', { token: operator });
  expect(del.status).toBe(200);
  expect(await s.waitFor((m) => m.type === 'session_deleted')).toMatchObject({ session_id: 'live-3' });
  await s.close();

  const user = await signToken(SECRET, { sub: 'someone', apps: ['app1'] });
  const refused = new TestSocket(`${b.url.replace('http', 'ws')}/ws?access_token=${user}`);
  expect(await refused.closed).toBe(1008);
  expect(refused.closeReason).toMatch(/operator/);
});

it('bad messages get an error frame and the socket stays', async () => {
  const s = await liveOn(a);
  await s.waitType('init');
  for (const bad of ['not json', JSON.stringify({ type: 'subscribe', session_id: 'a\u0000b' }), JSON.stringify({ type: 'nope' }), JSON.stringify({ type: 'subscribe', session_id: 'x', after: 'y' })]) s.send(bad);
  await s.waitFor(() => s.messages.filter((m) => m.type === 'error').length === 4);
  s.send({ type: 'ping' });
  await s.waitType('pong');
  expect(s.closeCode).toBeNull();
  await s.close();
});

describe('a dashboard that never subscribes (document 001 §5)', () => {
  it('gets every event of its apps, live, with init holding the newest sessions and the cursor of the rest', async () => {
    // More sessions than init holds (100): the rest are a GET /sessions?cursor= away.
    const many = Array.from({ length: 105 }, (_, i) => ev(`page-${i}`, 'session_start'));
    expect((await post(many)).status).toBe(200);
    const s = await liveOn(b);
    const init = await s.waitType('init');
    expect(init.sessions).toHaveLength(100);
    expect(typeof init.next_cursor).toBe('string');
    const rest = await call(a.url, 'GET', `/sessions?limit=500&cursor=${encodeURIComponent(init.next_cursor)}`, { token: operator });
    const ids = new Set([...init.sessions, ...rest.json.sessions].map((x: { session_id: string }) => x.session_id));
    for (let i = 0; i < 105; i++) expect(ids.has(`page-${i}`)).toBe(true);

    await post([ev('never-sub', 'session_start', { session_name: 'watched' }), ev('never-sub', 'pre_tool', { tool_name: 'Bash' }), { event_type: 'session_start', session_id: 'never-sub-other', app_id: 'app2' }]);
    const updated = await s.waitFor((m) => m.type === 'session_updated' && m.session.session_id === 'never-sub');
    expect(updated.session).toMatchObject({ session_name: 'watched', status: 'running' });
    await s.waitFor((m) => m.type === 'event' && m.session_id === 'never-sub' && m.event.seq === 2);
    expect(s.messages.filter((m) => m.type === 'event' && m.session_id === 'never-sub').map((m) => [m.event.seq, m.event.event_type])).toEqual([
      [1, 'session_start'],
      [2, 'pre_tool'],
    ]);
    expect(s.messages.some((m) => JSON.stringify(m).includes('never-sub-other'))).toBe(false);
    await s.close();
  });

  it('a subscribe narrows the socket to its sessions; subscribe all widens it again, unsubscribe all stops the rest', async () => {
    await post([ev('narrow-1', 'session_start'), ev('narrow-2', 'session_start')]);
    const s = await liveOn(b);
    await s.waitType('init');
    s.send({ type: 'subscribe', session_id: 'narrow-1' });
    await s.waitFor((m) => m.type === 'subscribed' && m.session_id === 'narrow-1');
    await post([ev('narrow-2', 'message', { event_id: 'n2-a' }), ev('narrow-1', 'message', { event_id: 'n1-a' })]);
    await s.waitFor((m) => m.type === 'event' && m.session_id === 'narrow-1' && m.event.event_id === 'n1-a');
    // The same batch's event of narrow-2 was not sent (it precedes narrow-1's in the message).
    expect(s.messages.some((m) => m.type === 'event' && m.session_id === 'narrow-2')).toBe(false);
    // session_updated still covers every session of the apps.
    expect(s.messages.some((m) => m.type === 'session_updated' && m.session.session_id === 'narrow-2')).toBe(true);

    s.send({ type: 'subscribe', all: true });
    await s.waitFor((m) => m.type === 'subscribed' && m.session_id === null);
    await post([ev('narrow-2', 'message', { event_id: 'n2-b' })]);
    await s.waitFor((m) => m.type === 'event' && m.session_id === 'narrow-2' && m.event.event_id === 'n2-b');

    s.send({ type: 'unsubscribe', all: true });
    s.send({ type: 'ping' });
    await s.waitType('pong');
    await post([ev('narrow-2', 'message', { event_id: 'n2-c' }), ev('narrow-1', 'message', { event_id: 'n1-b' })]);
    await s.waitFor((m) => m.type === 'event' && m.event.event_id === 'n1-b');
    expect(s.messages.some((m) => m.type === 'event' && m.event.event_id === 'n2-c')).toBe(false);
    await s.close();
  });

  it('?events=subscribed opens the socket narrowed: no event of a session it has not subscribed to, from its first frame; a bad value is refused naming it', async () => {
    const s = await TestSocket.connect(`${b.url.replace('http', 'ws')}/ws?events=subscribed&access_token=${operator}`);
    await s.waitType('init');
    await post([ev('narrowed-other', 'session_start'), ev('narrowed-mine', 'session_start')]);
    s.send({ type: 'subscribe', session_id: 'narrowed-mine' });
    await s.waitFor((m) => m.type === 'subscribed' && m.session_id === 'narrowed-mine');
    await post([ev('narrowed-other', 'message', { event_id: 'o-1' }), ev('narrowed-mine', 'message', { event_id: 'm-1' })]);
    await s.waitFor((m) => m.type === 'event' && m.event.event_id === 'm-1');
    expect(s.messages.filter((m) => m.type === 'event').map((m) => m.session_id)).toEqual(['narrowed-mine']); // its message; both session_starts came before any subscribe
    expect(s.messages.some((m) => m.type === 'session_updated' && m.session.session_id === 'narrowed-other')).toBe(true);
    await s.close();
    const bad = new TestSocket(`${b.url.replace('http', 'ws')}/ws?events=some&access_token=${operator}`);
    expect([await bad.closed, bad.closeReason]).toEqual([1008, expect.stringContaining('invalid events "some"')]);
  });
});

describe('a slow socket', () => {
  let slowEnv: Env;
  let c: Instance;
  beforeAll(async () => {
    slowEnv = await testEnv('live_slow');
    c = await startObservability(slowEnv, { INGEST_WORKER: 'false', RETENTION_DAYS: '0', WS_BEHIND_BYTES: String(64 * 1024) });
  });
  afterAll(async () => {
    await c?.close();
    await slowEnv?.dropSchema();
  });

  it('misses events it never subscribed to, is told which once it catches up, and never holds up another socket', async () => {
    const session = `slow-${randomBytes(3).toString('hex')}`;
    const fast = await liveOn(c);
    const slow = await liveOn(c);
    await Promise.all([fast.waitType('init'), slow.waitType('init')]);
    // Everything, as a socket that never subscribes gets it too (said explicitly, so that this is the slow-socket rule alone).
    for (const s of [fast, slow]) s.send({ type: 'subscribe', all: true });
    await Promise.all([fast.waitType('subscribed'), slow.waitType('subscribed')]);
    slow.ws.pause(); // reads nothing: the kernel's buffers fill, then the server's
    // 600 events of 20 kB: 12 MB, past the kernel's buffers and the hub's 4 MB limit.
    const total = 600;
    for (let batch = 0; batch < total / 50; batch++) {
      const events = Array.from({ length: 50 }, (_, i) => ev(session, 'post_tool', { event_id: `e${batch * 50 + i}`, tool_output: 'x'.repeat(20_000) }));
      const r = await call(c.url, 'POST', '/events', { body: { events }, headers: { 'x-tessera-service-key': SERVICE_KEY } });
      expect(r.status).toBe(200);
    }
    // The other socket got every event, in order, while the slow one read nothing.
    await fast.waitFor(() => fast.messages.filter((m) => m.type === 'event').length === total, 30_000);
    expect(fast.messages.filter((m) => m.type === 'event').map((m) => m.event.seq)).toEqual(Array.from({ length: total }, (_, i) => i + 1));

    slow.ws.resume();
    const notice = await slow.waitType('events_dropped', 30_000);
    expect(notice.message).toMatch(/fell behind/);
    const dropped = () => slow.messages.filter((m) => m.type === 'events_dropped').reduce((n, m) => n + m.count, 0);
    const received = () => slow.messages.filter((m) => m.type === 'event').map((m) => m.event.seq);
    await slow.waitFor(() => received().length + dropped() === total, 30_000);
    // Everything is accounted for: each seq sent once or named as missed.
    expect(new Set(received()).size).toBe(received().length);
    const missed = slow.messages.filter((m) => m.type === 'events_dropped').flatMap((m) => m.sessions);
    expect(missed.every((x) => x.session_id === session && x.app_id === 'app1')).toBe(true);
    expect(missed.reduce((n, x) => n + x.count, 0)).toBe(dropped());
    // The session's updates were coalesced, not lost: the last one is the session as it now is.
    const last = slow.messages.filter((m) => m.type === 'session_updated' && m.session.session_id === session).pop();
    expect(last?.session.event_count).toBe(total);
    expect(slow.closeCode).toBeNull();
    // Missed events are read back as the notice says.
    const back = await call(c.url, 'GET', `/events/${session}?after=${missed[0].from_seq - 1}&limit=1`, { token: operator });
    expect(back.json.events[0].seq).toBe(missed[0].from_seq);
    await Promise.all([fast.close(), slow.close()]);
  });
});

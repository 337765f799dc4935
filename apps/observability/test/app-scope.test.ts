/**
 * Issue 17: a session id is an app's (the same id in two apps is two sessions: neither app can
 * take the other's id first), every read, stop and delete looks the id up in the caller's apps,
 * and numbers a client sends are bounded at the contract edge (a 400 naming the field, never a
 * 500; on the live socket an error frame, the socket left open).
 */
import { Channel, SessionControl } from '@tessera/contracts';
import { createLogger, createRedis , type RedisClient } from '@tessera/kit';
import { TEST_REDIS_URL, TestSocket } from '@tessera/kit/testing';
import { asService, http, ingest, KEY_APP2, operator, sid, startObservability, testEnv, until, type Env, type Instance } from './harness';

let env: Env;
let obs: Instance;
let op1: string;
let op2: string;
let opBoth: string;
let opAll: string;
let sub: RedisClient;
const controls: SessionControl[] = [];

beforeAll(async () => {
  env = await testEnv('appscope');
  obs = await startObservability(env);
  [op1, op2, opBoth, opAll] = await Promise.all([operator(['app1']), operator(['app2'], 'op-2'), operator(['app1', 'app2'], 'op-both'), operator('*', 'op-all')]);
  sub = createRedis(TEST_REDIS_URL, createLogger('test', 'silent'), 'test-sub', { maxRetriesPerRequest: null });
  sub.on('smessage', (channel: string, message: string) => {
    if (channel === Channel.sessionControl.name()) controls.push(JSON.parse(message));
  });
  await sub.ssubscribe(Channel.sessionControl.name());
});
afterAll(async () => {
  await sub?.quit();
  await obs?.close();
  await env?.dropSchema();
});

const get = (path: string, token: string) => http(obs.url, 'GET', path, { token });
const liveOn = (tok: string) => TestSocket.connect(`${obs.url.replace('http', 'ws')}/ws?access_token=${tok}`);

describe('a session id is scoped by its app', () => {
  it('the same id in two apps is two sessions: the second app is not refused, and each app reads its own', async () => {
    const id = sid('shared');
    expect((await ingest(obs.url, { event_type: 'session_start', session_id: id, session_name: 'one' })).body).toMatchObject({ accepted: 1 });
    // app2 uses the id after app1 took it: its events are its own session's, not refused.
    const second = await ingest(obs.url, { events: [{ event_type: 'session_start', session_id: id, session_name: 'two' }, { event_type: 'message', session_id: id }] }, KEY_APP2);
    expect(second.body).toMatchObject({ accepted: 2, rejected: 0 });
    expect((await get(`/sessions/${id}`, op1)).body).toMatchObject({ session_id: id, app_id: 'app1', session_name: 'one', event_count: 1 });
    expect((await get(`/sessions/${id}`, op2)).body).toMatchObject({ session_id: id, app_id: 'app2', session_name: 'two', event_count: 2 });
    expect((await get(`/events/${id}`, op1)).body.events.map((e: { seq: number }) => e.seq)).toEqual([1]);
    expect((await get(`/events/${id}`, op2)).body.events.map((e: { seq: number }) => e.seq)).toEqual([1, 2]);
    // The same event_id in both is stored in both.
    await ingest(obs.url, { event_type: 'message', session_id: id, event_id: 'e1' });
    expect((await ingest(obs.url, { event_type: 'message', session_id: id, event_id: 'e1' }, KEY_APP2)).body).toMatchObject({ accepted: 1 });

    // An operator of both apps: the id alone is ambiguous (409 naming the apps); app_id chooses.
    const both = await get(`/sessions/${id}`, opBoth);
    expect(both.status).toBe(409);
    expect(both.body.error.details).toEqual({ app_ids: ['app1', 'app2'] });
    expect((await get(`/events/${id}`, opBoth)).status).toBe(409);
    expect((await get(`/sessions/${id}?app_id=app2`, opBoth)).body).toMatchObject({ app_id: 'app2', event_count: 3 });
    expect((await get(`/events/${id}?app_id=app1`, opBoth)).body.events).toHaveLength(2);
    // Both are listed, each once, across pages too.
    const listed = (await get('/sessions?limit=500', opBoth)).body.sessions.filter((s: { session_id: string }) => s.session_id === id);
    expect(listed.map((s: { app_id: string }) => s.app_id).sort()).toEqual(['app1', 'app2']);
    const paged: string[] = [];
    let cursor: string | null = null;
    do {
      const page: { status: number; body: { sessions: { session_id: string; app_id: string }[]; next_cursor: string | null } } = await get(`/sessions?limit=1${cursor ? `&cursor=${cursor}` : ''}`, opBoth);
      expect(page.status).toBe(200);
      paged.push(...page.body.sessions.map((s) => `${s.app_id}/${s.session_id}`));
      cursor = page.body.next_cursor;
    } while (cursor);
    expect(new Set(paged).size).toBe(paged.length);
    expect(paged).toEqual(expect.arrayContaining([`app1/${id}`, `app2/${id}`]));
  });

  it("another app's session answers exactly as a missing one, on every route", async () => {
    const theirs = sid('theirs');
    const nobody = sid('nobody');
    await ingest(obs.url, { event_type: 'session_start', session_id: theirs }, KEY_APP2);
    for (const [method, path, body] of [
      ['GET', '/sessions/%s'],
      ['GET', '/events/%s'],
      ['PATCH', '/sessions/%s/metadata', { session_name: 'x' }],
      ['POST', '/sessions/%s/stop'],
      ['DELETE', '/sessions/%s'],
    ] as [string, string, unknown?][]) {
      const a = await http(obs.url, method, path.replace('%s', theirs), { token: op1, body });
      const b = await http(obs.url, method, path.replace('%s', nobody), { token: op1, body });
      expect([method, path, a.status]).toEqual([method, path, 404]);
      expect(JSON.stringify(a.body).replaceAll(theirs, 'ID')).toEqual(JSON.stringify(b.body).replaceAll(nobody, 'ID'));
      // Naming the other app does not reach it either.
      expect((await http(obs.url, method, `${path.replace('%s', theirs)}?app_id=app2`, { token: op1, body })).status).toBe(404);
    }
    expect((await get(`/sessions/${theirs}`, op2)).body).toMatchObject({ status: 'running', session_name: '' });
  });

  it("a stop names the session's app and stops only that app's session", async () => {
    const id = sid('stop-shared');
    await ingest(obs.url, { event_type: 'session_start', session_id: id });
    await ingest(obs.url, { event_type: 'session_start', session_id: id }, KEY_APP2);
    const r = await http(obs.url, 'POST', `/sessions/${id}/stop`, { token: op2 });
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ session_id: id, app_id: 'app2' });
    const control = await until(async () => controls.find((c) => c.session_id === id), 2000, 'SessionControl');
    expect(control).toEqual({ action: 'stop', session_id: id, app_id: 'app2', requested_by: 'op-2', reason: 'stopped by an operator' });
    expect((await get(`/sessions/${id}`, op1)).body.status).toBe('running');
    expect((await get(`/sessions/${id}`, op2)).body.status).toBe('stopped');
    // An operator of both apps stops app1's by naming it.
    expect((await http(obs.url, 'POST', `/sessions/${id}/stop`, { token: opBoth })).status).toBe(409);
    expect((await http(obs.url, 'POST', `/sessions/${id}/stop?app_id=app1`, { token: opBoth })).status).toBe(200);
    await until(async () => controls.some((c) => c.session_id === id && c.app_id === 'app1'), 2000, 'app1 stop');
  });

  it("a delete removes only that app's session, and its tombstone holds only that app's id", async () => {
    const id = sid('del-shared');
    await ingest(obs.url, { event_type: 'session_start', session_id: id });
    await ingest(obs.url, { event_type: 'session_start', session_id: id }, KEY_APP2);
    const del = await http(obs.url, 'DELETE', `/sessions/${id}`, { token: op1 });
    expect(del.body).toMatchObject({ ok: true, session_id: id, app_id: 'app1', deleted: { events: 1 } });
    expect((await get(`/sessions/${id}`, op1)).status).toBe(404);
    // Late events of app1's deleted session are dropped; app2's session lives on and takes its own.
    expect((await ingest(obs.url, { event_type: 'message', session_id: id })).body.results[0]).toMatchObject({ status: 'rejected', reason: 'the session was deleted' });
    expect((await ingest(obs.url, { event_type: 'message', session_id: id }, KEY_APP2)).body).toMatchObject({ accepted: 1 });
    expect((await get(`/sessions/${id}`, op2)).body).toMatchObject({ event_count: 2 });
  });

  it('events with no app (the service key naming none) are a session of no app, seen only by callers of every app', async () => {
    const id = sid('noapp');
    await ingest(obs.url, { event_type: 'session_start', session_id: id });
    expect((await asService(obs.url, { event_type: 'session_start', session_id: id })).body).toMatchObject({ accepted: 1 });
    expect((await get(`/sessions/${id}`, op1)).body).toMatchObject({ app_id: 'app1', event_count: 1 });
    expect((await get(`/sessions/${id}`, opAll)).status).toBe(409);
    expect((await get(`/sessions/${id}?app_id=`, opAll)).body).toMatchObject({ app_id: null, event_count: 1 });
    expect((await get(`/sessions/${id}?app_id=`, op1)).status).toBe(404);
    // Its stop marks it stopped and sends nothing: no runtime chat or bridge session is of no app.
    const before = controls.length;
    expect((await http(obs.url, 'POST', `/sessions/${id}/stop?app_id=`, { token: opAll })).body).toMatchObject({ app_id: null });
    // A stop that does send, after it: the service publishes its stops in order, so once this one is here any from the first would be too.
    const marker = sid('noapp-marker');
    await ingest(obs.url, { event_type: 'session_start', session_id: marker });
    expect((await http(obs.url, 'POST', `/sessions/${marker}/stop?app_id=app1`, { token: opAll })).status).toBe(200);
    await until(async () => controls.some((c) => c.session_id === marker), 2000, 'the marker stop');
    expect(controls.slice(before).some((c) => c.session_id === id)).toBe(false);
  });

  it('the live socket tells the same id of two apps apart', async () => {
    const id = sid('live-shared');
    await ingest(obs.url, { event_type: 'session_start', session_id: id });
    await ingest(obs.url, { event_type: 'session_start', session_id: id }, KEY_APP2);
    const s = await liveOn(opBoth);
    await s.waitType('init');
    s.send({ type: 'subscribe', session_id: id, after: 0 });
    expect(await s.waitType('error')).toMatchObject({ code: 'AMBIGUOUS_SESSION' });
    s.send({ type: 'subscribe', session_id: id, app_id: 'app2', after: 0 });
    expect(await s.waitType('subscribed')).toMatchObject({ session_id: id, app_id: 'app2', last_seq: 1 });
    // app1's next event has seq 2 as well: not this subscription's.
    await ingest(obs.url, { event_type: 'message', session_id: id, event_id: 'from-app1' });
    await ingest(obs.url, { event_type: 'message', session_id: id, event_id: 'from-app2' }, KEY_APP2);
    const second = await s.waitFor((m) => m.type === 'event' && m.event.seq === 2);
    expect(second).toMatchObject({ session_id: id, app_id: 'app2', event: { event_id: 'from-app2' } });
    // One more of app2's, after both: the live feed is one channel, in order, so app1's came through before it.
    await ingest(obs.url, { event_type: 'message', session_id: id, event_id: 'marker-app2' }, KEY_APP2);
    await s.waitFor((m) => m.type === 'event' && m.event.event_id === 'marker-app2');
    expect(s.messages.filter((m) => m.type === 'event').map((m) => [m.app_id, m.event.seq])).toEqual([
      ['app2', 1],
      ['app2', 2],
      ['app2', 3],
    ]);
    // app1's operator: app2's session is as missing as one never used.
    const one = await liveOn(op1);
    await one.waitType('init');
    one.send({ type: 'subscribe', session_id: id, app_id: 'app2' });
    expect(await one.waitType('error')).toMatchObject({ code: 'NOT_FOUND', message: `no session "${id}"` });
    await Promise.all([s.close(), one.close()]);
  });
});

describe('numbers at the contract edge', () => {
  const cursorOf = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');

  it('out-of-range offsets, limits, cursors and times are a 400 naming the field', async () => {
    const id = sid('range');
    await ingest(obs.url, { event_type: 'session_start', session_id: id });
    for (const after of ['2147483648', '99999999999', '1e20', '-1']) {
      const r = await get(`/events/${id}?after=${after}`, op1);
      expect([after, r.status]).toEqual([after, 400]);
      expect(r.body.error.message).toMatch(/query\.after/);
    }
    expect((await get(`/events/${id}?after=2147483647`, op1)).status).toBe(200);
    expect((await get(`/events/${id}?limit=99999999999`, op1)).status).toBe(400);
    for (const c of [[1e20, 'app1', 'x'], [1e20, 'x'], [-1e20, 'x'], [8.64e15, 'x'], [1.5, 'x'], ['1', 'x'], [0, 1], [0, 'a', 'b', 'c']]) {
      const r = await get(`/sessions?cursor=${cursorOf(c)}`, op1);
      expect([c, r.status]).toEqual([c, 400]);
      expect(r.body.error.message).toMatch(/cursor/);
    }
    // A cursor from before sessions were keyed by app still pages.
    expect((await get(`/sessions?cursor=${cursorOf([Date.now() + 60_000, 'zzz'])}`, op1)).status).toBe(200);
    for (const t of ['0000-01-01T00:00:00Z', '0001-01-01T00:00:00+01:00']) {
      const r = await get(`/sessions?from=${encodeURIComponent(t)}`, op1);
      expect([t, r.status]).toEqual([t, 400]);
      expect(r.body.error.message).toMatch(/query\.from/);
    }
    const tokens = await ingest(obs.url, { event_type: 'message', session_id: id, usage: { input_tokens: 2 ** 40 } });
    expect(tokens.status).toBe(400);
    expect(tokens.body.error.message).toMatch(/usage\.input_tokens/);
  });

  it('a subscribe with an out-of-range after is an error frame, the socket stays open', async () => {
    const id = sid('range-live');
    await ingest(obs.url, { event_type: 'session_start', session_id: id });
    const s = await liveOn(op1);
    await s.waitType('init');
    s.send({ type: 'subscribe', session_id: id, after: 99999999999 });
    const err = await s.waitType('error');
    expect(err).toMatchObject({ code: 'SCHEMA_VALIDATION_FAILED' });
    expect(err.message).toMatch(/after/);
    s.send({ type: 'subscribe', session_id: id, after: 2147483647 });
    expect(await s.waitType('subscribed')).toMatchObject({ session_id: id, last_seq: 2147483647 });
    s.send({ type: 'ping' });
    await s.waitType('pong');
    expect(s.closeCode).toBeNull();
    await s.close();
  });
});

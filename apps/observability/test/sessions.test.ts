import { Channel, SessionControl } from '@tessera/contracts';
import { createLogger, createRedis , type RedisClient } from '@tessera/kit';
import { TEST_REDIS_URL } from '@tessera/kit/testing';
import { Retention } from '../src/ingest/retention';
import { asService, endUser, http, ingest, KEY_APP2, operator, SERVICE_KEY, sid, startObservability, testEnv, until, type Env, type Instance } from './harness';

let env: Env;
let obs: Instance;
let op1: string;
let sub: RedisClient;
const heard: { channel: string; message: unknown }[] = [];

beforeAll(async () => {
  env = await testEnv('sessions');
  obs = await startObservability(env);
  op1 = await operator(['app1']);
  sub = createRedis(TEST_REDIS_URL, createLogger('test', 'silent'), 'test-sub', { maxRetriesPerRequest: null });
  sub.on('smessage', (channel: string, message: string) => heard.push({ channel, message: JSON.parse(message) }));
  await Promise.all([sub.ssubscribe(Channel.sessionControl.name()), sub.ssubscribe(Channel.observabilityLive.name())]);
});
afterAll(async () => {
  await sub?.quit();
  await obs?.close();
  await env?.dropSchema();
});

type S = { session_id: string; status: string };

describe('sessions', () => {
  it('lists newest first with filters and a cursor that pages without gaps or repeats', async () => {
    const tag = sid('list');
    const ids: string[] = [];
    for (let i = 0; i < 7; i++) {
      const id = `${tag}-${i}`;
      ids.push(id);
      await ingest(obs.url, { event_type: i % 2 ? 'session_stop' : 'session_start', session_id: id, session_name: `Run ${i} of ${tag}`, agent_name: i < 3 ? 'a' : 'b', user_id: 'u1' });
    }
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const page: { body: { sessions: S[]; next_cursor: string | null } } = await http(obs.url, 'GET', `/sessions?q=${encodeURIComponent(tag.toUpperCase())}&limit=3${cursor ? `&cursor=${cursor}` : ''}`, { token: op1 });
      expect(page.body.sessions.length).toBeLessThanOrEqual(3);
      seen.push(...page.body.sessions.map((s) => s.session_id));
      cursor = page.body.next_cursor;
    } while (cursor);
    expect(seen).toEqual([...ids].reverse());

    const running = await http(obs.url, 'GET', `/sessions?q=${tag}&status=running&agent_name=a`, { token: op1 });
    expect(running.body.sessions.map((s: S) => s.session_id)).toEqual([ids[2], ids[0]]);
    const none = await http(obs.url, 'GET', `/sessions?q=${tag}&source=runtime`, { token: op1 });
    expect(none.body.sessions).toEqual([]);
    const future = await http(obs.url, 'GET', `/sessions?q=${tag}&from=${encodeURIComponent(new Date(Date.now() + 60_000).toISOString())}`, { token: op1 });
    expect(future.body.sessions).toEqual([]);
    const past = await http(obs.url, 'GET', `/sessions?q=${tag}&to=${encodeURIComponent(new Date(Date.now() + 60_000).toISOString())}&user_id=u1&app_id=app1`, { token: op1 });
    expect(past.body.sessions).toHaveLength(7);
    // % and _ are text, not patterns.
    expect((await http(obs.url, 'GET', `/sessions?q=${encodeURIComponent('%')}`, { token: op1 })).body.sessions).toEqual([]);
    for (const bad of ['cursor=nonsense', 'limit=0', 'status=gone', 'from=yesterday', 'q=a&q=b']) {
      const r = await http(obs.url, 'GET', `/sessions?${bad}`, { token: op1 });
      expect(r.status).toBe(400);
      expect(r.body.error.message).toMatch(new RegExp(bad.split('=')[0]));
    }
  });

  it('patches metadata and tells live sockets', async () => {
    const id = sid('patch');
    await ingest(obs.url, { event_type: 'session_start', session_id: id, session_name: 'old', agent_name: 'x' });
    const r = await http(obs.url, 'PATCH', `/sessions/${id}/metadata`, { token: op1, body: { session_name: 'new name', project_dir: '/p', agent_name: null } });
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ ok: true, session: { session_id: id, session_name: 'new name', project_dir: '/p', agent_name: null } });
    expect((await http(obs.url, 'GET', `/sessions/${id}`, { token: op1 })).body.session_name).toBe('new name');
    await until(async () => heard.some((h) => (h.message as { kind: string; session?: S }).kind === 'session_updated' && (h.message as { session: S }).session.session_id === id), 2000, 'session_updated');
    expect((await http(obs.url, 'PATCH', `/sessions/${id}/metadata`, { token: op1, body: { status: 'finished' } })).status).toBe(400);
    expect((await http(obs.url, 'PATCH', `/sessions/${id}/metadata`, { token: op1, body: { session_name: 'a\u0000' } })).status).toBe(400);
  });

  it('deletes a session from every read at once; late events do not bring it back', async () => {
    const id = sid('del');
    await ingest(obs.url, { events: [{ event_type: 'session_start', session_id: id, event_id: 'e1' }, { event_type: 'message', session_id: id, event_id: 'e2' }] });
    const d = await http(obs.url, 'DELETE', `/sessions/${id}`, { token: op1 });
    expect(d.status).toBe(200);
    expect(d.body).toEqual({ ok: true, session_id: id, app_id: 'app1', deleted: { events: 2 } });
    expect((await http(obs.url, 'GET', `/sessions/${id}`, { token: op1 })).status).toBe(404);
    expect((await http(obs.url, 'GET', `/events/${id}`, { token: op1 })).status).toBe(404);
    expect((await http(obs.url, 'GET', `/sessions?q=${id}`, { token: op1 })).body.sessions).toEqual([]);
    expect((await http(obs.url, 'DELETE', `/sessions/${id}`, { token: op1 })).status).toBe(404);
    expect((await http(obs.url, 'POST', `/sessions/${id}/stop`, { token: op1 })).status).toBe(404);
    expect((await http(obs.url, 'PATCH', `/sessions/${id}/metadata`, { token: op1, body: { session_name: 'x' } })).status).toBe(404);

    // A retried batch and a new event after the deletion: dropped, the session stays gone.
    const late = await ingest(obs.url, { events: [{ event_type: 'session_start', session_id: id, event_id: 'e1' }, { event_type: 'session_start', session_id: id }] });
    expect(late.body).toMatchObject({ accepted: 0, rejected: 2, results: [{ reason: 'the session was deleted' }, { reason: 'the session was deleted' }] });
    expect((await http(obs.url, 'GET', `/sessions/${id}`, { token: op1 })).status).toBe(404);
    await until(async () => heard.some((h) => (h.message as { kind: string; session_id?: string }).kind === 'session_deleted' && (h.message as { session_id: string }).session_id === id), 2000, 'session_deleted');
  });

  it('stops a running session: stopped, SessionControl on Redis, 409 once finished or stopped, 404 unknown', async () => {
    const id = sid('stop');
    await ingest(obs.url, { event_type: 'session_start', session_id: id });
    const before = (await http(obs.url, 'GET', `/sessions/${id}`, { token: op1 })).body;
    await new Promise((r) => setTimeout(r, 5));
    const r = await http(obs.url, 'POST', `/sessions/${id}/stop`, { token: op1 });
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ success: true, session_id: id });
    const after = (await http(obs.url, 'GET', `/sessions/${id}`, { token: op1 })).body;
    expect(after.status).toBe('stopped');
    expect(Date.parse(after.modified_at)).toBeGreaterThan(Date.parse(before.modified_at));
    const control = await until(async () => heard.find((h) => h.channel === Channel.sessionControl.name() && (h.message as SessionControl).session_id === id), 2000, 'SessionControl');
    expect(SessionControl.parse(control.message)).toEqual({ action: 'stop', session_id: id, app_id: 'app1', requested_by: 'op-1', reason: 'stopped by an operator' });
    await until(async () => heard.some((h) => (h.message as { kind: string; session?: S }).kind === 'session_updated' && (h.message as { session: S }).session.status === 'stopped' && (h.message as { session: S }).session.session_id === id), 2000, 'session_updated');

    const again = await http(obs.url, 'POST', `/sessions/${id}/stop`, { token: op1 });
    expect(again.status).toBe(409);
    expect(again.body.error.message).toMatch(/already stopped/);
    // The tail of the aborted run does not make it finished; a new start revives it.
    await ingest(obs.url, { event_type: 'session_stop', session_id: id });
    expect((await http(obs.url, 'GET', `/sessions/${id}`, { token: op1 })).body.status).toBe('stopped');
    await ingest(obs.url, { event_type: 'session_start', session_id: id });
    expect((await http(obs.url, 'GET', `/sessions/${id}`, { token: op1 })).body.status).toBe('running');

    const done = sid('done');
    await ingest(obs.url, { events: [{ event_type: 'session_start', session_id: done }, { event_type: 'session_stop', session_id: done }] });
    expect((await http(obs.url, 'POST', `/sessions/${done}/stop`, { token: op1 })).status).toBe(409);
    expect((await http(obs.url, 'POST', `/sessions/${sid('nobody')}/stop`, { token: op1 })).status).toBe(404);
  });

  it('scopes every route by operator role and app', async () => {
    const mine = sid('scope1');
    const theirs = sid('scope2');
    const appless = sid('appless');
    await ingest(obs.url, { event_type: 'session_start', session_id: mine });
    await ingest(obs.url, { event_type: 'session_start', session_id: theirs }, KEY_APP2);
    await asService(obs.url, { event_type: 'session_start', session_id: appless });
    const user = await endUser(['app1']);
    const routes: [string, string, unknown?][] = [
      ['GET', '/sessions'],
      ['GET', `/sessions/${mine}`],
      ['GET', `/events/${mine}`],
      ['PATCH', `/sessions/${mine}/metadata`, { session_name: 'x' }],
      ['POST', `/sessions/${mine}/stop`],
      ['DELETE', `/sessions/${mine}`],
    ];
    for (const [method, path, body] of routes) {
      expect([method, path, (await http(obs.url, method, path, { body })).status]).toEqual([method, path, 401]);
      expect([method, path, (await http(obs.url, method, path, { body, token: user })).status]).toEqual([method, path, 403]);
    }
    // app1's operator: app2's session and the app-less one are not found, on every route.
    for (const other of [theirs, appless]) {
      for (const [method, path, body] of routes.slice(1)) {
        const p = path.replace(mine, other);
        expect([method, p, (await http(obs.url, method, p, { body, token: op1 })).status]).toEqual([method, p, 404]);
      }
    }
    const list = (await http(obs.url, 'GET', '/sessions?limit=500', { token: op1 })).body.sessions.map((s: S) => s.session_id);
    expect(list).toContain(mine);
    expect(list).not.toContain(theirs);
    expect(list).not.toContain(appless);
    // Filtering by another app shows nothing of it.
    expect((await http(obs.url, 'GET', '/sessions?app_id=app2', { token: op1 })).body.sessions).toEqual([]);
    // An operator of every app (no apps claim) sees all three; one with a roles string too.
    const all = await operator('*');
    const everything = (await http(obs.url, 'GET', '/sessions?limit=500', { token: all })).body.sessions.map((s: S) => s.session_id);
    expect(everything).toEqual(expect.arrayContaining([mine, theirs, appless]));
    expect((await http(obs.url, 'GET', `/sessions/${appless}`, { token: all })).status).toBe(200);
    // The session survived every refused attempt unchanged.
    expect((await http(obs.url, 'GET', `/sessions/${theirs}`, { token: all })).body).toMatchObject({ status: 'running', session_name: '' });

    // Another Tessera service (the agent manager asking who runs an agent) reads every app with the
    // service key, and only reads: a wrong key is a 401, and changes still need an operator.
    const service = { 'x-tessera-service-key': SERVICE_KEY };
    const byService = (await http(obs.url, 'GET', '/sessions?limit=500&status=running', { headers: service })).body.sessions.map((s: S) => s.session_id);
    expect(byService).toEqual(expect.arrayContaining([mine, theirs, appless]));
    expect((await http(obs.url, 'GET', `/events/${theirs}`, { headers: service })).status).toBe(200);
    expect((await http(obs.url, 'GET', '/sessions', { headers: { 'x-tessera-service-key': 'wrong' } })).status).toBe(401);
    for (const [method, path, body] of routes.slice(3)) expect([method, (await http(obs.url, method, path, { body, headers: service })).status]).toEqual([method, 401]);
    // The service key never widens a request: with an operator's token beside it, a change is still refused.
    for (const [method, path, body] of routes.slice(3)) expect([method, (await http(obs.url, method, path, { body, token: op1, headers: service })).status]).toEqual([method, 401]);
    expect((await http(obs.url, 'GET', `/sessions/${mine}`, { token: op1 })).body.session_name).not.toBe('x');
  });

  it('GET /sessions/{id}/events is the events route too: the same pages, the same refusals', async () => {
    const id = sid('alias');
    await ingest(obs.url, { events: [1, 2, 3].map((n) => ({ event_type: n === 1 ? 'session_start' : 'message', session_id: id, event_id: `e${n}` })) });
    const theirs = sid('alias2');
    await ingest(obs.url, { event_type: 'session_start', session_id: theirs }, KEY_APP2);
    for (const query of ['', '?after=1', '?limit=2', '?event_type=message']) {
      const canonical = await http(obs.url, 'GET', `/events/${id}${query}`, { token: op1 });
      const alias = await http(obs.url, 'GET', `/sessions/${id}/events${query}`, { token: op1 });
      expect(canonical.status).toBe(200);
      expect([query, alias.status, alias.body]).toEqual([query, 200, canonical.body]);
    }
    const page = (await http(obs.url, 'GET', `/sessions/${id}/events?limit=2`, { token: op1 })).body;
    expect(page.events.map((e: { event_id: string }) => e.event_id)).toEqual(['e1', 'e2']);
    expect(page.next_after).toBe(page.events[1].seq);
    expect((await http(obs.url, 'GET', `/sessions/${id}/events?after=${page.next_after}`, { token: op1 })).body.events.map((e: { event_id: string }) => e.event_id)).toEqual(['e3']);
    // Refused exactly as the canonical route: no token 401, a user 403, another app's session 404, a bad query 400 naming it.
    expect((await http(obs.url, 'GET', `/sessions/${id}/events`)).status).toBe(401);
    expect((await http(obs.url, 'GET', `/sessions/${id}/events`, { token: await endUser(['app1']) })).status).toBe(403);
    expect((await http(obs.url, 'GET', `/sessions/${theirs}/events`, { token: op1 })).status).toBe(404);
    expect((await http(obs.url, 'GET', `/sessions/${sid('nobody')}/events`, { token: op1 })).status).toBe(404);
    const bad = await http(obs.url, 'GET', `/sessions/${id}/events?after=-5`, { token: op1 });
    expect(bad.status).toBe(400);
    expect(bad.body.error.message).toMatch(/after/);
    // Both are in the service's OpenAPI document, with the same access rule.
    const doc = (await http(obs.url, 'GET', '/openapi.json')).body;
    expect(doc.paths['/sessions/{session_id}/events'].get['x-tessera-access']).toBe('operator');
    expect(doc.paths['/events/{session_id}'].get['x-tessera-access']).toBe('operator');
  });

  it('retention deletes sessions older than RETENTION_DAYS with their events, one instance at a time', async () => {
    const old = sid('old');
    const fresh = sid('fresh');
    await ingest(obs.url, { events: [{ event_type: 'session_start', session_id: old }, { event_type: 'message', session_id: old }] });
    await ingest(obs.url, { event_type: 'session_start', session_id: fresh });
    await obs.o.s.db.pool.query("UPDATE sessions SET modified_at = now() - interval '31 days' WHERE id = $1", [old]);
    const [a, b] = await Promise.all([obs.o.retention.runOnce(), obs.o.retention.runOnce()]);
    expect([a, b].sort()).toEqual([0, 1]);
    expect((await http(obs.url, 'GET', `/sessions/${old}`, { token: op1 })).status).toBe(404);
    expect((await obs.o.s.db.pool.query('SELECT count(*)::int AS n FROM events WHERE session_id = $1', [old])).rows[0].n).toBe(0);
    expect((await http(obs.url, 'GET', `/sessions/${fresh}`, { token: op1 })).status).toBe(200);
  });

  it('retention goes on batch after batch, and forgets deletions as old: an event for such a session starts it anew, a recent deletion still drops it', async () => {
    const old = [sid('old-a'), sid('old-b'), sid('old-c')];
    const [forgotten, remembered] = [sid('del-old'), sid('del-new')];
    for (const id of [...old, forgotten, remembered]) await ingest(obs.url, { event_type: 'session_start', session_id: id });
    for (const id of [forgotten, remembered]) expect((await http(obs.url, 'DELETE', `/sessions/${id}`, { token: op1 })).status).toBe(200);
    await obs.o.s.db.pool.query("UPDATE sessions SET modified_at = now() - interval '31 days' WHERE id = ANY($1)", [old]);
    await obs.o.s.db.pool.query("UPDATE tombstones SET deleted_at = now() - interval '31 days' WHERE session_id = $1", [forgotten]);

    // Two sessions per batch: three old ones take two.
    expect(await new Retention({ ...obs.o.s, config: { ...obs.o.s.config, RETENTION_BATCH: 2 } }).runOnce()).toBe(3);
    for (const id of old) expect((await http(obs.url, 'GET', `/sessions/${id}`, { token: op1 })).status).toBe(404);
    expect((await ingest(obs.url, { event_type: 'session_start', session_id: forgotten })).body).toMatchObject({ accepted: 1 });
    expect((await http(obs.url, 'GET', `/sessions/${forgotten}`, { token: op1 })).body).toMatchObject({ session_id: forgotten, event_count: 1 });
    expect((await ingest(obs.url, { event_type: 'session_start', session_id: remembered })).body).toMatchObject({ accepted: 0, results: [{ reason: 'the session was deleted' }] });
  });
});

describe('idle outside sessions', () => {
  it('an outside session nobody reports on for SESSION_IDLE_MS is closed as finished, told to live sockets; a later event opens it again; a runtime chat is left alone; idle counts from arrival, not the events’ own timestamps', async () => {
    const idle = await startObservability(env, { SESSION_IDLE_MS: '3000', SESSION_IDLE_SWEEP_MS: '200' });
    try {
      const hook = sid('idle-hook');
      const chat = sid('idle-chat');
      await ingest(idle.url, { event_type: 'session_start', session_id: hook, agent_name: 'claude' });
      await ingest(idle.url, { event_type: 'message', session_id: chat, source: 'runtime' });
      expect((await http(idle.url, 'GET', `/sessions/${hook}`, { token: op1 })).body.status).toBe('running');
      // An agent's backfill half the idle time later: events stamped days ago, arriving now, are news now.
      await new Promise((r) => setTimeout(r, 1_500));
      const backfill = sid('idle-backfill');
      await ingest(idle.url, { event_type: 'session_start', session_id: backfill, timestamp: '2026-11-28T10:00:00.000Z' });
      await until(async () => (await http(idle.url, 'GET', `/sessions/${hook}`, { token: op1 })).body.status === 'finished', 10_000, 'the idle session closed');
      expect((await http(idle.url, 'GET', `/sessions/${backfill}`, { token: op1 })).body.status).toBe('running');
      await until(async () => (await http(idle.url, 'GET', `/sessions/${backfill}`, { token: op1 })).body.status === 'finished', 10_000, 'the backfilled session closed in its turn');
      await until(() => heard.some((h) => (h.message as { kind?: string; session?: { session_id?: string; status?: string } }).kind === 'session_updated' && (h.message as { session: { session_id: string; status: string } }).session.session_id === hook && (h.message as { session: { status: string } }).session.status === 'finished'), 5_000, 'session_updated on the live channel');
      expect((await http(idle.url, 'GET', `/sessions/${chat}`, { token: op1 })).body).toMatchObject({ source: 'runtime', status: 'running' });
      await ingest(idle.url, { event_type: 'session_start', session_id: hook });
      expect((await http(idle.url, 'GET', `/sessions/${hook}`, { token: op1 })).body.status).toBe('running');
    } finally {
      await idle.close();
    }
  });
});

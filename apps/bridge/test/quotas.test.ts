/**
 * One user cannot hold every agent server: per-user and per-app quotas hold across two instances
 * and under concurrent bootstraps (a 429 that names the limit), a closed session gives its place
 * back, and a session nobody used after its bootstrap is closed soon (OPENCODE_UNUSED_TIMEOUT),
 * long before the idle timeout.
 */
import { testPrefix } from '@tessera/kit/testing';
import { bootstrap, http, pair, forget, running, socketOf, STAND_IN, startBridge, tokenOf, until, type Instance } from './harness';

const BASE = 31700;
const prefix = testPrefix('bridge-quotas');
const open: Instance[] = [];
const start = async (extra: Record<string, string>) => {
  const i = await startBridge(prefix, BASE + open.length * 20, { ...STAND_IN, ...extra });
  open.push(i);
  return i;
};

afterEach(async () => {
  await Promise.all(open.splice(0).map((i) => i.close()));
});
afterAll(async () => {
  await forget(prefix);
});

describe('quotas', () => {
  it('holds a user to OPENCODE_MAX_SERVERS_PER_USER across instances and concurrent bootstraps, with a 429 naming the limit', async () => {
    const quota = { OPENCODE_MAX_SERVERS_PER_USER: '2', OPENCODE_MAX_SERVERS_PER_APP: '50' };
    const [a, b] = [await start(quota), await start(quota)];
    const token = await tokenOf('greedy');
    const pairs = Array.from({ length: 6 }, (_, i) => pair(`greedy-${i}`));
    const replies = await Promise.all(pairs.map((p, i) => bootstrap(i % 2 ? b.url : a.url, p, { token })));
    expect(replies.map((r) => r.status).sort()).toEqual([200, 200, 429, 429, 429, 429]);
    const refused = replies.find((r) => r.status === 429)!;
    expect(refused.body.error).toMatchObject({ code: 'QUOTA_EXCEEDED', details: { limit: 'OPENCODE_MAX_SERVERS_PER_USER', max: 2 } });
    expect(refused.body.error.message).toMatch(/OPENCODE_MAX_SERVERS_PER_USER=2/);
    expect(a.b.s.pool.size + b.b.s.pool.size).toBe(2);

    // Reusing a server it holds is not a new one; another user is not held back.
    const held = replies.filter((r) => r.status === 200).map((r) => r.body);
    const reuse = await bootstrap(b.url, pairs[replies.findIndex((r) => r.status === 200)], { token });
    expect(reuse.body).toMatchObject({ isNew: false, sessionId: held[0].sessionId });
    const other = await bootstrap(b.url, pair('modest'), { token: await tokenOf('modest') });
    expect(other.status).toBe(200);

    // Closing one gives its place back (the close runs on the instance that holds the server).
    expect((await http(b.url, 'DELETE', `/api/session/${held[0].sessionId}`, { token })).status).toBe(204);
    const next = await bootstrap(a.url, pair('greedy-next'), { token });
    expect(next.status).toBe(200);
  });

  it('holds an app to OPENCODE_MAX_SERVERS_PER_APP', async () => {
    const a = await start({ OPENCODE_MAX_SERVERS_PER_USER: '5', OPENCODE_MAX_SERVERS_PER_APP: '3' });
    const app = `app-${Math.random().toString(36).slice(2, 8)}`;
    for (const user of ['u1', 'u2', 'u3']) expect((await bootstrap(a.url, pair(user), { token: await tokenOf(user, { apps: [app] }) })).status).toBe(200);
    const full = await bootstrap(a.url, pair('u4'), { token: await tokenOf('u4', { apps: [app] }) });
    expect(full.status).toBe(429);
    expect(full.body.error).toMatchObject({ code: 'QUOTA_EXCEEDED', details: { limit: 'OPENCODE_MAX_SERVERS_PER_APP', max: 3, held: 3 } });
    expect(full.body.error.message).toContain(`app "${app}"`);
    // Another app has its own.
    expect((await bootstrap(a.url, pair('u5'), { token: await tokenOf('u5', { apps: ['elsewhere'] }) })).status).toBe(200);
  });
});

describe('a session nobody uses', () => {
  it('is closed after OPENCODE_UNUSED_TIMEOUT; one with a socket or a request stays', async () => {
    const a = await start({ OPENCODE_UNUSED_TIMEOUT: '1500', OPENCODE_IDLE_TIMEOUT: '600000', OPENCODE_CLEANUP_INTERVAL: '200' });
    const token = await tokenOf('lazy');
    const [unused, watched, asked] = [await bootstrap(a.url, pair('unused'), { token }), await bootstrap(a.url, pair('watched'), { token: await tokenOf('w') }), await bootstrap(a.url, pair('asked'), { token: await tokenOf('q') })];
    const pid = a.b.s.pool.get(unused.body.sessionId)!.proc.pid;
    const ws = socketOf(a.url, watched.body.sessionId, watched.body.sessionToken);
    await ws.waitType('session.snapshot');
    expect((await http(a.url, 'GET', `/api/session/${asked.body.sessionId}/info`, { token: asked.body.sessionToken })).status).toBe(200);
    // An operator looking at the unused one is not its use.
    expect((await http(a.url, 'GET', `/api/session/${unused.body.sessionId}/info`, { token: await tokenOf('ops', { roles: ['operator'] }) })).status).toBe(200);

    await until(async () => (await a.b.s.store.get(unused.body.sessionId)) === null, 8_000, 'the unused session to close');
    await until(() => !running(pid), 5_000, 'its agent server to stop');
    // Its place is free again, and the others run on.
    expect((await bootstrap(a.url, pair('unused-again'), { token })).status).toBe(200);
    // A cleanup pass as if the clock were well past every session's unused timeout (not the idle one): the used ones stay.
    await a.b.s.sessions.sweep(Date.now() + 10_000);
    expect(await a.b.s.store.get(watched.body.sessionId)).not.toBeNull();
    expect(await a.b.s.store.get(asked.body.sessionId)).not.toBeNull();
    expect(ws.messages.some((m) => m.type === 'session.closed')).toBe(false);
    await ws.close();
  });
});

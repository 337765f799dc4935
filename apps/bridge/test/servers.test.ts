/**
 * The real `opencode serve`: one server per pair however bootstraps race (two instances), its
 * URL usable with its password, the cap, idle cleanup, a server killed with -9, a taken port.
 */
import { createServer, type Server } from 'node:net';
import { call, testPrefix } from '@tessera/kit/testing';
import { portFree } from '../src/agents/proc';
import { bootstrap, http, pair, forget, running, servers, socketOf, startBridge, until, type Instance } from './harness';

const BASE = 31000;
const prefix = testPrefix('bridge-servers');
const open: Instance[] = [];
const start = async (extra: Record<string, string> = {}) => {
  const i = await startBridge(prefix, BASE, extra);
  open.push(i);
  return i;
};
const basic = (password: string) => ({ authorization: `Basic ${Buffer.from(`opencode:${password}`).toString('base64')}` });

afterEach(async () => {
  await Promise.all(open.splice(0).map((i) => i.close()));
});
afterAll(async () => {
  await forget(prefix);
});

describe('agent servers (real opencode serve)', () => {
  it('bootstraps a pair twice onto one server whose URL answers with its password', async () => {
    const a = await start();
    const p = pair('twice');
    const first = await bootstrap(a.url, { ...p, sessionInfo: { tenantId: 't1' } });
    expect(first.status).toBe(200);
    expect(first.body).toMatchObject({ isNew: true, scadaUrl: 'https://scada-twice.example.com', sessionInfo: { tenantId: 't1' } });
    expect(first.body.opencodeSessionId).toMatch(/^ses_/);
    // Same pair, spelled differently (host case, trailing slash, no "Bearer "): the same server.
    const again = await bootstrap(a.url, { scadaUrl: 'https://SCADA-twice.example.com', accessToken: p.accessToken.replace(/^Bearer /, '') });
    expect(again.body).toMatchObject({ isNew: false, sessionId: first.body.sessionId, opencodeUrl: first.body.opencodeUrl, sessionToken: first.body.sessionToken });
    expect(a.b.s.pool.size).toBe(1);

    const health = await call(first.body.opencodeUrl, 'GET', '/global/health', { headers: basic(first.body.opencodeAuth.password) });
    expect(health.status).toBe(200);
    expect(health.json).toMatchObject({ healthy: true });
    expect((await call(first.body.opencodeUrl, 'GET', '/global/health')).status).toBe(401);
    const session = await call(first.body.opencodeUrl, 'GET', `/session/${first.body.opencodeSessionId}`, { headers: basic(first.body.opencodeAuth.password) });
    expect(session.status).toBe(200);
  });

  it('starts one server for ten concurrent bootstraps of a pair across two instances', async () => {
    const [a, b] = [await start(), await start()];
    const p = pair('ten');
    const replies = await Promise.all(Array.from({ length: 10 }, (_, i) => bootstrap(i % 2 ? b.url : a.url, p)));
    expect(replies.map((r) => r.status)).toEqual(Array(10).fill(200));
    expect(new Set(replies.map((r) => r.body.sessionId)).size).toBe(1);
    expect(replies.filter((r) => r.body.isNew)).toHaveLength(1);
    expect(a.b.s.pool.size + b.b.s.pool.size).toBe(1);
    const listed = await servers(b.url);
    expect(listed.body.servers.filter((s: { sessionId: string }) => s.sessionId === replies[0].body.sessionId)).toHaveLength(1);
  });

  it('refuses a server past OPENCODE_MAX_SERVERS with a clear 503 and shows the capacity', async () => {
    const a = await start({ OPENCODE_MAX_SERVERS: '1' });
    expect((await bootstrap(a.url, pair('cap-1'))).status).toBe(200);
    const full = await bootstrap(a.url, pair('cap-2'));
    expect(full.status).toBe(503);
    expect(full.body.error.message).toMatch(/all 1 agent servers .*OPENCODE_MAX_SERVERS/);
    expect((await http(a.url, 'GET', '/health')).body.capacity).toMatchObject({ servers: 1, maxServers: 1, available: 0 });
  });

  it('skips a port someone else holds', async () => {
    const squatter: Server = createServer();
    await new Promise<void>((r) => squatter.listen(BASE + 5, '127.0.0.1', () => r()));
    try {
      const a = await start({ OPENCODE_BASE_PORT: String(BASE + 5), OPENCODE_MAX_PORT: String(BASE + 7) });
      const r = await bootstrap(a.url, pair('port'));
      expect(r.status).toBe(200);
      expect(r.body.opencodeUrl).toBe(`http://127.0.0.1:${BASE + 6}`);
    } finally {
      await new Promise((r) => squatter.close(r));
    }
  });

  it('idle cleanup kills the process group, frees the port and closes the sockets', async () => {
    const a = await start({ OPENCODE_IDLE_TIMEOUT: '1500', OPENCODE_CLEANUP_INTERVAL: '200' });
    const r = await bootstrap(a.url, pair('idle'));
    expect(r.body).toMatchObject({ isNew: true });
    const { pid } = a.b.s.pool.get(r.body.sessionId)!.proc;
    const port = Number(new URL(r.body.opencodeUrl).port);
    const ws = socketOf(a.url, r.body.sessionId, r.body.sessionToken);
    await ws.waitType('session.snapshot');
    const closed = await ws.waitType('session.closed', 10_000);
    expect(closed.payload).toEqual({ reason: 'idle' });
    expect(await ws.closed).toBe(4000);
    await until(() => !running(pid), 5_000, 'the server to exit');
    expect(await portFree(port, '127.0.0.1')).toBe(true);
    expect((await http(a.url, 'GET', `/api/session/${r.body.sessionId}/info`, { token: r.body.sessionToken })).status).toBe(404);
    expect((await bootstrap(a.url, pair('idle-next'))).status).toBe(200);
  });

  it('notices a server killed with -9: sockets closed, pending request 409, the next bootstrap starts anew', async () => {
    const a = await start();
    const p = pair('crash');
    const r = await bootstrap(a.url, p);
    const { pid } = a.b.s.pool.get(r.body.sessionId)!.proc;
    const ws = socketOf(a.url, r.body.sessionId, r.body.sessionToken);
    await ws.waitType('session.snapshot');
    const pending = http(a.url, 'POST', `/api/session/${r.body.sessionId}/events/request`, { token: r.body.sessionToken, body: { type: 'question.ask', timeoutMs: 60_000 } });
    await ws.waitFor((m) => m.type === 'session.event' && m.payload.type === 'hub.request');
    process.kill(pid, 'SIGKILL');
    expect((await ws.waitType('session.closed')).payload).toEqual({ reason: 'crashed' });
    const answered = await pending;
    expect(answered.status).toBe(409);
    const next = await bootstrap(a.url, p);
    expect(next.body).toMatchObject({ isNew: true });
    expect(next.body.sessionId).not.toBe(r.body.sessionId);
    expect((await call(next.body.opencodeUrl, 'GET', '/global/health', { headers: basic(next.body.opencodeAuth.password) })).status).toBe(200);
  });
});

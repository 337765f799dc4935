/**
 * The session token guards every /api/session/{id}/* route and the socket; the access token
 * never appears in a reply or a log line (every line captured at debug level, errors included).
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Redis } from 'ioredis';
import { Channel } from '@tessera/contracts';
import { TEST_REDIS_URL, testPrefix } from '@tessera/kit/testing';
import { bootstrap, capturingLogger, forget, http, servers, sessionRoutes, socketOf, STAND_IN, startBridge, until, userToken, SERVICE_KEY, type Instance } from './harness';

const BASE = 31300;
const prefix = testPrefix('bridge-auth');
const ACCESS = 'scada-access-token-7f3a9c1e5b';
const { logger, lines } = capturingLogger('debug');
const received: { key: string | undefined; body: { events: Record<string, unknown>[] } }[] = [];
const observability = createServer((req, res) => {
  let body = '';
  req.on('data', (d) => (body += d));
  req.on('end', () => {
    received.push({ key: req.headers['x-tessera-service-key'] as string | undefined, body: JSON.parse(body) });
    res.writeHead(200, { 'content-type': 'application/json' }).end('{"accepted":0,"duplicates":0,"rejected":0,"results":[]}');
  });
});
let a: Instance;
let s: { id: string; token: string };
let other: { id: string; token: string };

beforeAll(async () => {
  await new Promise<void>((r) => observability.listen(0, '127.0.0.1', () => r()));
  const obsUrl = `http://127.0.0.1:${(observability.address() as AddressInfo).port}`;
  a = await startBridge(prefix, BASE, { ...STAND_IN, OBSERVABILITY_URL: obsUrl }, logger);
  const r = await bootstrap(a.url, { scadaUrl: 'https://scada.example.com', accessToken: `Bearer ${ACCESS}` });
  s = { id: r.body.sessionId, token: r.body.sessionToken };
  const o = await bootstrap(a.url, { scadaUrl: 'https://scada.example.com', accessToken: 'another-token-000000' });
  other = { id: o.body.sessionId, token: o.body.sessionToken };
  expect(JSON.stringify(r.body)).not.toContain(ACCESS);
});
afterAll(async () => {
  await a.close();
  await new Promise((r) => observability.close(r));
  await forget(prefix);
});


describe('session token', () => {
  it('opens every session route: none → 401; wrong or another session’s → 404, as for a session that does not exist', async () => {
    for (const [method, path, body] of sessionRoutes(s.id)) {
      expect([method, path, (await http(a.url, method, path, { body })).status]).toEqual([method, path, 401]);
      expect((await http(a.url, method, path, { body, token: 'wrong' })).status).toBe(404);
      expect((await http(a.url, method, path, { body, token: other.token })).status).toBe(404);
      expect((await http(a.url, method, path, { body, headers: { 'x-session-token': other.token } })).status).toBe(404);
    }
    for (const [method, path, body] of sessionRoutes('no-such-session')) expect((await http(a.url, method, path, { body, token: s.token })).status).toBe(404);
    // Each way of presenting it works, beside the owner's platform token too (as behind the gateway).
    expect((await http(a.url, 'GET', `/api/session/${s.id}/info`, { token: s.token })).status).toBe(200);
    expect((await http(a.url, 'GET', `/api/session/${s.id}/info?sessionToken=${s.token}`)).status).toBe(200);
    expect((await http(a.url, 'GET', `/api/session/${s.id}/info`, { headers: { 'x-session-token': s.token, authorization: `Bearer ${await userToken()}` } })).status).toBe(200);
    // A platform token that is not a valid one is refused as such, whatever else is sent.
    expect((await http(a.url, 'GET', `/api/session/${s.id}/info`, { headers: { 'x-session-token': s.token, authorization: 'Bearer a.b.c' } })).status).toBe(401);
  });

  it('guards the socket: 4401 without it, 4404 with another session’s or for an unknown session', async () => {
    const none = socketOf(a.url, s.id);
    expect(await none.closed).toBe(4401);
    const foreign = socketOf(a.url, s.id, other.token);
    expect(await foreign.closed).toBe(4404);
    const unknown = socketOf(a.url, 'no-such-session', s.token);
    expect(await unknown.closed).toBe(4404);
    const ok = socketOf(a.url, s.id, s.token);
    await ok.waitType('session.snapshot');
    expect(ok.messages[0].sessionId).toBe(s.id);
    await ok.close();
  });
});

describe('observability', () => {
  it('gets the session start, the agent server’s events and the stop (service key, source bridge); its stop closes the server', async () => {
    const ws = socketOf(a.url, s.id, s.token);
    await ws.waitType('session.snapshot');
    const port = Number((await servers(a.url)).body.servers.find((x: { sessionId: string }) => x.sessionId === s.id).port);
    const auth = `Basic ${Buffer.from(`opencode:${(await a.b.s.store.get(s.id))!.password}`).toString('base64')}`;
    await fetch(`http://127.0.0.1:${port}/emit`, { method: 'POST', headers: { authorization: auth }, body: JSON.stringify({ type: 'message.updated', properties: { text: 'hi' } }) });
    const relayed = await ws.waitFor((m) => m.type === 'session.event' && m.payload.type === 'message.updated');
    expect(relayed.payload).toMatchObject({ payload: { text: 'hi' }, source: 'opencode' });

    const redis = new Redis(TEST_REDIS_URL);
    // A stop naming another app is another app's session of the same id: this one stays.
    await redis.spublish(Channel.sessionControl.name(), JSON.stringify({ action: 'stop', session_id: s.id, app_id: 'other-app', reason: 'not this one' }));
    // Then a stop that applies, to the other session: stops are looked up in the order they came,
    // so once that one is closed, the first was decided (and a close of this one begun) before it.
    await redis.spublish(Channel.sessionControl.name(), JSON.stringify({ action: 'stop', session_id: other.id, app_id: 'test-app', reason: 'the marker' }));
    await until(async () => (await a.b.s.store.get(other.id)) === null, 5_000, 'the other session stopped');
    expect(await a.b.s.store.get(s.id)).not.toBeNull();
    expect(ws.messages.some((m) => m.type === 'session.closed')).toBe(false);
    await redis.spublish(Channel.sessionControl.name(), JSON.stringify({ action: 'stop', session_id: s.id, app_id: 'test-app', reason: 'stopped by an operator' }));
    await redis.quit();
    expect((await ws.waitType('session.closed')).payload).toEqual({ reason: 'stopped' });
    const events = () => received.flatMap((r) => r.body.events).filter((e) => e.session_id === s.id);
    await until(() => events().some((e) => e.event_type === 'session_stop'), 5_000, 'session_stop');
    expect(events().map((e) => e.event_type)).toEqual(['session_start', 'message.updated', 'session_stop']);
    // Under the session's own app and user: only that app's operators see it in observability.
    expect(events().every((e) => e.source === 'bridge' && e.app_id === 'test-app' && e.user_id === 'test-user')).toBe(true);
    expect(received.every((r) => r.key === SERVICE_KEY)).toBe(true);
  });
});

describe('the access token', () => {
  it('appears in no log line and no reply, errors included', async () => {
    // A refused body, an agent server that cannot start, and a crash all log or answer something.
    const bad = await bootstrap(a.url, { scadaUrl: 'not a url', accessToken: ACCESS });
    expect(bad.status).toBe(400);
    expect(bad.text).not.toContain(ACCESS);
    const broken = await startBridge(prefix, BASE + 10, { OPENCODE_COMMAND: '/nonexistent/opencode' }, logger);
    try {
      const failed = await bootstrap(broken.url, { scadaUrl: 'https://scada.example.com', accessToken: ACCESS });
      expect(failed.status).toBe(503);
      expect(failed.body.error.message).toMatch(/cannot start the agent server/);
      expect(failed.text).not.toContain(ACCESS);
    } finally {
      await broken.close();
    }
    const again = await bootstrap(a.url, { scadaUrl: 'https://scada.example.com', accessToken: ACCESS });
    process.kill(again.body.opencodeUrl ? (await a.b.s.store.get(again.body.sessionId))!.pid : 0, 'SIGKILL');
    await until(() => lines.some((l) => l.includes('agent server crashed')), 5_000, 'the crash to be logged');
    expect(lines.length).toBeGreaterThan(20);
    expect(lines.filter((l) => l.includes(ACCESS))).toEqual([]);
    expect(lines.filter((l) => l.includes(s.token))).toEqual([]);
  });
});

/**
 * Events and request/response across two bridge instances sharing Redis (stand-in agent server):
 * fan-out, 503 without a subscriber, resolved from the other instance, 504, long poll, cancelled
 * when the session closes.
 */
import { deleteTestKeys, testPrefix } from '@tessera/kit/testing';
import { bootstrap, http, pair, removeWorkRoot, socketOf, STAND_IN, startBridge, type Instance } from './harness';

const BASE = 31200;
const prefix = testPrefix('bridge-requests');
let a: Instance;
let b: Instance;

beforeAll(async () => {
  a = await startBridge(prefix, BASE, STAND_IN);
  b = await startBridge(prefix, BASE, STAND_IN);
});
afterAll(async () => {
  await Promise.all([a.close(), b.close()]);
  await deleteTestKeys(`{${prefix}}:*`);
  await removeWorkRoot(prefix);
});

async function session(name: string) {
  const r = await bootstrap(a.url, pair(name));
  expect(r.status).toBe(200);
  return { id: r.body.sessionId as string, token: r.body.sessionToken as string };
}
const isRequest = (m: { type: string; payload?: { type?: string } }) => m.type === 'session.event' && m.payload?.type === 'hub.request';

describe('session events across instances', () => {
  it('fans an event published on A out to sockets on A and B, in order, after the snapshot', async () => {
    const s = await session('fanout');
    const onA = socketOf(a.url, s.id, s.token);
    const onB = socketOf(b.url, s.id, s.token);
    expect((await onA.waitType('session.snapshot')).payload).toMatchObject({ opencodeSessionId: expect.stringMatching(/^ses_/) });
    await onB.waitType('session.snapshot');
    for (let i = 0; i < 5; i++) {
      const r = await http(a.url, 'POST', `/api/session/${s.id}/events`, { token: s.token, body: { type: 'entity.updated', payload: { n: i } } });
      expect(r.body).toEqual({ sessionId: s.id, deliveredTo: 2 });
    }
    const put = await http(b.url, 'PUT', `/api/session/${s.id}/info`, { token: s.token, body: { tenantId: 't9', app: 'designer' } });
    expect(put.body).toMatchObject({ sessionId: s.id, tenantId: 't9', app: 'designer' });
    for (const ws of [onA, onB]) {
      await ws.waitType('session.info.updated');
      expect(ws.messages[0].type).toBe('session.snapshot');
      const ns = ws.messages.filter((m) => m.type === 'session.event' && m.payload.type === 'entity.updated').map((m) => m.payload.payload.n);
      expect(ns).toEqual([0, 1, 2, 3, 4]);
    }
    expect((await http(a.url, 'GET', `/api/session/${s.id}/info`, { token: s.token })).body).toMatchObject({ tenantId: 't9' });
    onA.send({ type: 'ping' });
    await onA.waitType('pong');
    await Promise.all([onA.close(), onB.close()]);
  });

  it('writes the snapshot first on every socket, even while events stream in as it joins', async () => {
    const s = await session('joining');
    let publishing = true;
    const publisher = (async () => {
      for (let n = 0; publishing; n++) await http(a.url, 'POST', `/api/session/${s.id}/events`, { token: s.token, body: { type: 'entity.updated', payload: { n } } });
    })();
    const sockets = Array.from({ length: 16 }, (_, i) => socketOf((i % 2 ? b : a).url, s.id, s.token));
    await Promise.all(sockets.map((ws) => ws.waitType('session.snapshot')));
    await Promise.all(sockets.map((ws) => ws.waitFor((m) => m.type === 'session.event')));
    publishing = false;
    await publisher;
    for (const ws of sockets) expect(ws.messages[0].type).toBe('session.snapshot');
    await Promise.all(sockets.map((ws) => ws.close()));
  });

  it('refuses a context replaced by a body that is not JSON (400 naming the body), and keeps the context as it was', async () => {
    const s = await session('not-json');
    expect((await http(a.url, 'PUT', `/api/session/${s.id}/info`, { token: s.token, body: { tenantId: 'kept' } })).status).toBe(200);
    for (const init of [{}, { headers: { 'content-type': 'text/plain' }, body: '{"tenantId":"lost"}' }]) {
      const r = await fetch(`${a.url}/api/session/${s.id}/info`, { method: 'PUT', ...init, headers: { ...init.headers, 'x-session-token': s.token } });
      expect(r.status).toBe(400);
      expect(((await r.json()) as { error: unknown }).error).toMatchObject({ code: 'VALIDATION_FAILED', message: expect.stringMatching(/^invalid body/) });
    }
    expect((await http(a.url, 'GET', `/api/session/${s.id}/info`, { token: s.token })).body).toMatchObject({ tenantId: 'kept' });
  });

  it('answers 503 when no socket could answer a request', async () => {
    const s = await session('nobody');
    const r = await http(a.url, 'POST', `/api/session/${s.id}/events/request`, { token: s.token, body: { type: 'question.ask' } });
    expect(r.status).toBe(503);
    expect(r.body.error.code).toBe('SERVICE_UNAVAILABLE');
  });

  it('resolves a request waiting on A with a response posted to B', async () => {
    const s = await session('resolve');
    const onB = socketOf(b.url, s.id, s.token);
    await onB.waitType('session.snapshot');
    const waiting = http(a.url, 'POST', `/api/session/${s.id}/events/request`, { token: s.token, body: { type: 'question.ask', payload: { text: 'Which style?' } } });
    const ask = await onB.waitFor(isRequest);
    expect(ask.payload.payload).toMatchObject({ type: 'question.ask', payload: { text: 'Which style?' }, timeoutMs: 180_000 });
    const requestId = ask.payload.payload.requestId;
    const resp = await http(b.url, 'POST', `/api/session/${s.id}/events/request/${requestId}/response`, { token: s.token, body: { response: ['concise'] } });
    expect(resp.body).toEqual({ sessionId: s.id, requestId, resolved: true });
    const answered = await waiting;
    expect(answered.status).toBe(200);
    expect(answered.body).toMatchObject({ sessionId: s.id, requestId, response: ['concise'] });
    // Once only.
    const twice = await http(a.url, 'POST', `/api/session/${s.id}/events/request/${requestId}/response`, { token: s.token, body: { response: ['detailed'] } });
    expect(twice.status).toBe(409);
    await onB.close();
  });

  it('times out with 504 (a timeout below 1 s is clamped to 1 s)', async () => {
    const s = await session('timeout');
    const ws = socketOf(b.url, s.id, s.token);
    await ws.waitType('session.snapshot');
    const t0 = Date.now();
    const r = await http(a.url, 'POST', `/api/session/${s.id}/events/request`, { token: s.token, body: { type: 'question.ask', timeoutMs: 10 } });
    expect(r.status).toBe(504);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(950);
    expect((await ws.waitFor(isRequest)).payload.payload.timeoutMs).toBe(1_000);
    await ws.close();
  });

  it('with longPollMs answers 202 pending; the status shows the response given over the socket', async () => {
    const s = await session('longpoll');
    const ws = socketOf(b.url, s.id, s.token);
    await ws.waitType('session.snapshot');
    const r = await http(a.url, 'POST', `/api/session/${s.id}/events/request`, { token: s.token, body: { type: 'question.ask', longPollMs: 200, timeoutMs: 30_000 } });
    expect(r.status).toBe(202);
    expect(r.body).toMatchObject({ status: 'pending', sessionId: s.id, requestId: expect.any(String), expiresAt: expect.any(String) });
    const statusPath = `/api/session/${s.id}/events/request/${r.body.requestId}/status`;
    expect((await http(b.url, 'GET', statusPath, { token: s.token })).body.status).toBe('pending');
    ws.send({ type: 'hub.response', requestId: r.body.requestId, response: { choice: 'detailed' } });
    let st;
    for (let i = 0; i < 100 && (st = await http(a.url, 'GET', statusPath, { token: s.token })).body.status === 'pending'; i++) await new Promise((x) => setTimeout(x, 20));
    expect(st!.body).toMatchObject({ status: 'resolved', response: { choice: 'detailed' } });
    expect((await http(a.url, 'GET', `/api/session/${s.id}/events/request/nope/status`, { token: s.token })).status).toBe(404);
    await ws.close();
  });

  it('cancels pending requests with 409 when the session closes on another instance', async () => {
    const s = await session('cancel');
    const ws = socketOf(a.url, s.id, s.token);
    await ws.waitType('session.snapshot');
    const waiting = http(b.url, 'POST', `/api/session/${s.id}/events/request`, { token: s.token, body: { type: 'question.ask', timeoutMs: 60_000 } });
    await ws.waitFor(isRequest);
    // The server lives on A; B asks A to close it.
    expect((await http(b.url, 'DELETE', `/api/session/${s.id}`, { token: s.token })).status).toBe(204);
    const r = await waiting;
    expect(r.status).toBe(409);
    expect((await ws.waitType('session.closed')).payload).toEqual({ reason: 'closed' });
    expect(await ws.closed).toBe(4000);
    expect(a.b.s.pool.get(s.id)).toBeUndefined();
  });
});

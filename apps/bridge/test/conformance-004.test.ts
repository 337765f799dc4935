/**
 * Document 004 (backend bridge) as its two clients use it, through the real gateway:
 * - a SCADA backend written from the document: its paths (under the gateway's `/api/bridge`), its
 *   request bodies and the fields it names in replies, with a platform token as the only addition
 *   (the README's note next to document 004: bootstrap needs one); the `websocketUrl` opened exactly
 *   as returned;
 * - the agent server's MCP callback: what a tool of the agent server sends the bridge, made from
 *   inside the sandboxed stand-in agent server with what that server holds (BACKEND_BRIDGE_URL, its
 *   session id and session token), at BACKEND_BRIDGE_INTERNAL_URL.
 * Both services are processes started as `npm start` starts them (their main.ts).
 */
import { resolve } from 'node:path';
import { signToken } from '@tessera/kit';
import { call, closedPort, spawnService, TEST_REDIS_URL, TestSocket, testPrefix, type Envelope, type ServiceProcess, entryOf } from '@tessera/kit/testing';
import { forget, ROOT, serviceVars, STAND_IN, until } from './harness';

const BASE = 31900;
const HEARTBEAT_MS = 400;
/** The gateway's budget for a service's response headers, made short: a request waits longer than it. */
const UPSTREAM_TIMEOUT_MS = 3_000;
const prefix = testPrefix('bridge-conformance');
const JWT_SECRET = `conformance-004-secret-${Math.random().toString(36).slice(2)}-0123456789`;
const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

let gateway: ServiceProcess & { url: string };
let bridge: ServiceProcess & { url: string };
let token: string;

async function start(name: string, entry: string, port: number, env: Record<string, string>) {
  const url = `http://127.0.0.1:${port}`;
  const p = await spawnService({ name, entry: resolve(ROOT, entry), cwd: ROOT, env: { ...env, PORT: String(port), HOST: '127.0.0.1' }, ready: { url: `${url}/health` }, timeoutMs: 30_000 });
  return { ...p, url };
}

beforeAll(async () => {
  const [gwPort, bridgePort] = [await closedPort(), await closedPort()];
  const gwUrl = `http://127.0.0.1:${gwPort}`;
  const bridgeUrl = `http://127.0.0.1:${bridgePort}`;
  const common = { NODE_ENV: 'test', LOG_LEVEL: 'warn', REDIS_URL: TEST_REDIS_URL, JWT_SECRET, WS_HEARTBEAT_MS: String(HEARTBEAT_MS) };
  [gateway, bridge] = await Promise.all([
    start('gateway', entryOf('gateway'), gwPort, {
      ...common,
      BRIDGE_URL: bridgeUrl,
      RUNTIME_URL: 'off',
      BROKER_URL: 'off',
      OBSERVABILITY_URL: 'off',
      AGENTS_URL: 'off',
      DOCUMENTS_URL: 'off',
      RATE_LIMIT_PREFIX: `${prefix}:rl`,
      UPSTREAM_TIMEOUT_MS: String(UPSTREAM_TIMEOUT_MS),
    }),
    start('bridge', entryOf('bridge'), bridgePort, {
      ...serviceVars(prefix, BASE, STAND_IN),
      ...common,
      // Document 004's two URLs: where the MCP callback reaches the bridge, and the proxied base of websocketUrl.
      BACKEND_BRIDGE_INTERNAL_URL: bridgeUrl,
      BACKEND_BRIDGE_PUBLIC_URL: `${gwUrl}/api/bridge`,
    }),
  ]);
  token = await signToken(JWT_SECRET, { sub: 'scada-user', apps: ['demo-app'] });
});
afterAll(async () => {
  await bridge?.stop();
  await gateway?.stop();
  await forget(prefix);
});

/** The SCADA backend: document 004's routes through the gateway, JSON, its platform token as a Bearer. */
function scada(method: string, path: string, body?: unknown) {
  return call(gateway.url, method, `/api/bridge${path}`, { token, body });
}

/** An MCP tool of the session's agent server calling the bridge back (the stand-in makes the call from inside its sandbox). */
async function mcp(opencode: { opencodeUrl: string; opencodeAuth: { username: string; password: string } }, method: string, path: string, body?: unknown) {
  const auth = `Basic ${Buffer.from(`${opencode.opencodeAuth.username}:${opencode.opencodeAuth.password}`).toString('base64')}`;
  const r = await call(opencode.opencodeUrl, 'POST', '/mcp-call', { body: { method, path, body }, headers: { authorization: auth } });
  expect(r.status).toBe(200);
  return r.json as { status: number; body: any };
}

/** Every socket message follows the document's envelope: type, sessionId, timestamp, payload. */
function expectEnvelopes(messages: Envelope[], sessionId: string) {
  for (const m of messages) {
    expect(Object.keys(m).sort()).toEqual(['payload', 'sessionId', 'timestamp', 'type']);
    expect(m.sessionId).toBe(sessionId);
    expect(m.timestamp).toMatch(ISO);
  }
}

const isEvent = (type: string) => (m: Envelope) => m.type === 'session.event' && m.payload?.type === type;

it('bootstrap → websocketUrl → info → events → request/response → delete, as the document shows them', async () => {
  // POST /api/session/bootstrap: the document's request body as it is.
  const sessionInfo = { tenantId: 'tenant-123', groupId: 'group-456', entityType: 'signal', app: 'designer' };
  const bootBody = { scadaUrl: 'https://scada.example.com', accessToken: 'Bearer xxx-conformance', model: 'anthropic/claude-sonnet-4-20250514', sessionInfo };
  const boot = await scada('POST', '/session/bootstrap', bootBody);
  expect(boot.status).toBe(200);
  const b = boot.json;
  expect(b).toMatchObject({
    sessionId: expect.stringMatching(UUID),
    isNew: true,
    scadaUrl: 'https://scada.example.com',
    opencodeUrl: expect.stringMatching(/^http:\/\/[^/]+:\d+$/),
    websocketUrl: expect.stringMatching(/^ws:\/\//),
    sessionInfo: { ...sessionInfo, updatedAt: expect.stringMatching(ISO) },
  });
  const sessionId: string = b.sessionId;
  // The websocketUrl names the gateway's address of the document's socket route (plus its token, README).
  expect(b.websocketUrl.startsWith(`${gateway.url.replace(/^http/, 'ws')}/api/bridge/session/${sessionId}/ws`)).toBe(true);
  // The agent server answers at opencodeUrl (with the password the reply carries: README).
  const health = await call(b.opencodeUrl, 'GET', '/global/health', { headers: { authorization: `Basic ${Buffer.from(`${b.opencodeAuth.username}:${b.opencodeAuth.password}`).toString('base64')}` } });
  expect(health.status).toBe(200);

  // Deterministic reuse for the same (scadaUrl, accessToken) pair.
  const again = await scada('POST', '/session/bootstrap', { scadaUrl: bootBody.scadaUrl, accessToken: bootBody.accessToken });
  expect(again.status).toBe(200);
  expect(again.json).toMatchObject({ sessionId, isNew: false, opencodeUrl: b.opencodeUrl });

  // A request while no socket is subscribed: 503.
  const unheard = await mcp(b, 'POST', '/api/session/{sessionId}/events/request', { type: 'question.ask', payload: { text: 'anyone?' } });
  expect(unheard.status).toBe(503);
  expect(unheard.body.error).toMatchObject({ code: expect.any(String), message: expect.any(String) });

  // The websocketUrl exactly as returned: session.snapshot first.
  const ws = await TestSocket.connect(b.websocketUrl);
  let pings = 0;
  ws.ws.on('ping', () => pings++);
  const snapshot = await ws.waitType('session.snapshot');
  expect(ws.messages[0]).toBe(snapshot);
  expect(snapshot.payload).toMatchObject({ sessionInfo: { ...sessionInfo } });

  // Heartbeat: held idle past two intervals, pinged, still open; the JSON ping is answered too.
  await new Promise((r) => setTimeout(r, HEARTBEAT_MS * 2.5));
  expect(pings).toBeGreaterThanOrEqual(2);
  expect(ws.closeCode).toBeNull();
  ws.send({ type: 'ping' });
  await ws.waitType('pong');

  // GET/PUT /api/session/:sessionId/info.
  const got = await scada('GET', `/session/${sessionId}/info`);
  expect(got.status).toBe(200);
  expect(got.json).toEqual({ sessionId, ...sessionInfo, updatedAt: expect.stringMatching(ISO) });
  const newInfo = { tenantId: 'tenant-123', groupId: 'group-789', entityType: 'signal', app: 'designer' };
  const put = await scada('PUT', `/session/${sessionId}/info`, newInfo);
  expect(put.status).toBe(200);
  expect(put.json).toEqual({ sessionId, ...newInfo, updatedAt: expect.stringMatching(ISO) });
  expect((await ws.waitType('session.info.updated')).payload).toMatchObject(newInfo);
  // The MCP server reads the context the backend set.
  const mcpInfo = await mcp(b, 'GET', '/api/session/{sessionId}/info');
  expect(mcpInfo).toEqual({ status: 200, body: put.json });

  // POST /api/session/:sessionId/events: published to the socket.
  const notification = { type: 'ui.notification', payload: { level: 'info', message: 'Background sync completed' } };
  const published = await scada('POST', `/session/${sessionId}/events`, notification);
  expect(published.status).toBe(200);
  expect(published.json).toEqual({ sessionId, deliveredTo: 1 });
  expect((await ws.waitFor(isEvent('ui.notification'))).payload).toEqual(notification);

  // A domain event emitted by the MCP server, as in the document's example.
  const entityUpdated = {
    type: 'entity.updated',
    payload: { entityType: 'Signal', entityId: 'signal-123', tenantId: 'tenant-123', groupId: 'group-456', changedFields: ['name', 'description'], sourceTool: 'update-entity', timestamp: '2026-02-15T10:30:00.000Z' },
  };
  expect(await mcp(b, 'POST', '/api/session/{sessionId}/events', entityUpdated)).toEqual({ status: 200, body: { sessionId, deliveredTo: 1 } });
  expect((await ws.waitFor(isEvent('entity.updated'))).payload).toEqual(entityUpdated);

  // Request/response: the MCP tool asks (the document's body), the socket client sees hub.request and answers.
  const question = {
    type: 'question.ask',
    payload: { text: 'Which response style should I use?', options: [{ label: 'Concise', value: 'concise' }, { label: 'Detailed', value: 'detailed' }], allowMultiple: false },
    timeoutMs: 180000,
  };
  const asking = mcp(b, 'POST', '/api/session/{sessionId}/events/request', question);
  const hubRequest = await ws.waitFor(isEvent('hub.request'));
  expect(hubRequest.payload.payload).toMatchObject({ requestId: expect.any(String), type: 'question.ask', payload: question.payload });
  const requestId: string = hubRequest.payload.payload.requestId;
  const answer = await scada('POST', `/session/${sessionId}/events/request/${requestId}/response`, { response: ['concise'] });
  expect(answer.status).toBe(200);
  expect(answer.json).toEqual({ sessionId, requestId, resolved: true });
  expect(await asking).toEqual({ status: 200, body: { sessionId, requestId, response: ['concise'], respondedAt: expect.stringMatching(ISO) } });
  const status = await scada('GET', `/session/${sessionId}/events/request/${requestId}/status`);
  expect(status.status).toBe(200);
  expect(status.json).toMatchObject({ sessionId, requestId, status: 'resolved', response: ['concise'] });

  // No response before the timeout: 504. timeoutMs below the document's floor is clamped to 1000.
  const t0 = Date.now();
  const unanswered = mcp(b, 'POST', '/api/session/{sessionId}/events/request', { type: 'question.ask', payload: { text: 'Still there?' }, timeoutMs: 1 });
  const late = await ws.waitFor((m) => isEvent('hub.request')(m) && m.payload.payload.requestId !== requestId);
  expect(late.payload.payload.timeoutMs).toBe(1000);
  const timedOut = await unanswered;
  expect(timedOut.status).toBe(504);
  expect(Date.now() - t0).toBeGreaterThanOrEqual(950);
  const lateStatus = await scada('GET', `/session/${sessionId}/events/request/${late.payload.payload.requestId}/status`);
  expect(lateStatus.json).toMatchObject({ status: 'timeout' });

  // The socket held through all of it: still open, still pinged.
  expect(ws.closeCode).toBeNull();
  expect(pings).toBeGreaterThanOrEqual(3);

  // DELETE /api/session/:sessionId: session.closed on the socket, then the socket closes; the agent server is gone.
  const del = await scada('DELETE', `/session/${sessionId}`);
  expect(del.status).toBe(204);
  expect((await ws.waitType('session.closed')).payload).toEqual({ reason: 'closed' });
  expect(await ws.closed).toBe(4000);
  expectEnvelopes(ws.messages, sessionId);
  expect((await scada('GET', `/session/${sessionId}/info`)).status).toBe(404);
  await expect(call(b.opencodeUrl, 'GET', '/global/health')).rejects.toThrow(/ECONNREFUSED/);
});

it('drops a socket that stops answering the heartbeat (stale socket cleanup): a request then finds no subscriber (503)', async () => {
  const boot = await scada('POST', '/session/bootstrap', { scadaUrl: 'https://scada.example.com', accessToken: 'Bearer xxx-stale' });
  expect(boot.status).toBe(200);
  const b = boot.json;
  // A client that answers no ping: the ws library answers them unless told not to.
  const ws = await TestSocket.connect(b.websocketUrl, { autoPong: false });
  await ws.waitType('session.snapshot');
  const t0 = Date.now();
  const code = await ws.closed;
  expect(code).not.toBe(1000);
  // Dropped after one unanswered ping, at the next interval (bridge or gateway, whichever sweeps first).
  expect(Date.now() - t0).toBeLessThan(HEARTBEAT_MS * 6);
  await until(async () => (await mcp(b, 'POST', '/api/session/{sessionId}/events/request', { type: 'question.ask', timeoutMs: 1000 })).status === 503, 5_000, 'a 503 once the stale socket is gone');
  expect((await scada('DELETE', `/session/${b.sessionId}`)).status).toBe(204);
});

it("waits through the gateway as long as the request's timeoutMs, past the gateway's own budget for an answer", async () => {
  const boot = await scada('POST', '/session/bootstrap', { scadaUrl: 'https://scada.example.com', accessToken: 'Bearer xxx-long' });
  expect(boot.status).toBe(200);
  const { sessionId, websocketUrl } = boot.json;
  const ws = await TestSocket.connect(websocketUrl);
  await ws.waitType('session.snapshot');
  // The SCADA backend asks through the gateway; the person answers after longer than UPSTREAM_TIMEOUT_MS.
  const asking = scada('POST', `/session/${sessionId}/events/request`, { type: 'question.ask', payload: { text: 'Take your time' }, timeoutMs: UPSTREAM_TIMEOUT_MS * 4 });
  const ask = await ws.waitFor(isEvent('hub.request'));
  await new Promise((r) => setTimeout(r, UPSTREAM_TIMEOUT_MS + 500));
  const requestId = ask.payload.payload.requestId;
  expect((await scada('POST', `/session/${sessionId}/events/request/${requestId}/response`, { response: ['detailed'] })).status).toBe(200);
  const answered = await asking;
  expect(answered.status).toBe(200);
  expect(answered.json).toMatchObject({ sessionId, requestId, response: ['detailed'] });
  await ws.close();
  expect((await scada('DELETE', `/session/${sessionId}`)).status).toBe(204);
});

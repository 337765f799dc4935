/**
 * Document 004 through the gateway, as a SCADA frontend and its backend use it: bootstrap with the
 * platform token, then the `websocketUrl` opened exactly as handed out (it carries the session's
 * own token; the gateway lets the upgrade through for the bridge to check), the session routes
 * with the platform token alone, a request answered over the socket. The bridge is a real process
 * (its stand-in agent server in the bubblewrap sandbox) behind a real gateway.
 */
import { resolve } from 'node:path';
import { signToken } from '@tessera/kit';
import { call, closedPort, deleteTestKeys, testPrefix, TestSocket, entryOf } from '@tessera/kit/testing';
import { ROOT, spawnHttpService, type HttpService } from './stack';
import { SECRET, startTestGateway, type TestGateway } from './support';

const prefix = testPrefix('gw-bridge');
const HEARTBEAT_MS = 400;
let gw: TestGateway;
let bridge: HttpService;
let alice: string;
let bob: string;

beforeAll(async () => {
  const port = await closedPort();
  gw = await startTestGateway({ BRIDGE_URL: `http://127.0.0.1:${port}`, WS_HEARTBEAT_MS: String(HEARTBEAT_MS) });
  bridge = await spawnHttpService(
    'bridge',
    entryOf('bridge'),
    {
      BRIDGE_REDIS_PREFIX: prefix,
      OBSERVABILITY_URL: 'off',
      BACKEND_BRIDGE_PUBLIC_URL: `${gw.url}/api/bridge`,
      OPENCODE_COMMAND: process.execPath,
      OPENCODE_ARGS: `${resolve(ROOT, 'apps/bridge/test/fixtures/stand-in-agent.mjs')} --hostname {host} --port {port}`,
      OPENCODE_BASE_PORT: '31800',
      OPENCODE_MAX_PORT: '31819',
      WS_HEARTBEAT_MS: String(HEARTBEAT_MS),
    },
    port,
  );
  alice = await signToken(SECRET, { sub: 'alice', apps: ['demo-app'] });
  bob = await signToken(SECRET, { sub: 'bob', apps: ['demo-app'] });
});
afterAll(async () => {
  await bridge?.stop();
  await gw?.stop();
  await deleteTestKeys(`{${prefix}}:*`);
});

it('bootstrap → the websocketUrl as handed out → info, events and a request answered over it, with the platform token alone', async () => {
  const boot = await call(gw.url, 'POST', '/api/bridge/session/bootstrap', { token: alice, body: { scadaUrl: 'https://scada.example.com', accessToken: 'Bearer scada-at', sessionInfo: { tenantId: 't1' } } });
  expect(boot.status).toBe(200);
  const { sessionId, websocketUrl } = boot.json;
  expect(websocketUrl.startsWith(`${gw.url.replace(/^http/, 'ws')}/api/bridge/session/${sessionId}/ws?`)).toBe(true);

  // Opened as it is: nothing added.
  const ws = await TestSocket.connect(websocketUrl);
  expect((await ws.waitType('session.snapshot')).payload).toMatchObject({ sessionInfo: { tenantId: 't1' } });
  // Held past two heartbeats of both the gateway and the bridge: still open, still delivering.
  await new Promise((r) => setTimeout(r, HEARTBEAT_MS * 2.5));

  const info = await call(gw.url, 'PUT', `/api/bridge/session/${sessionId}/info`, { token: alice, body: { tenantId: 't2', entityType: 'signal' } });
  expect(info.status).toBe(200);
  expect((await ws.waitType('session.info.updated')).payload).toMatchObject({ tenantId: 't2', entityType: 'signal' });
  const pushed = await call(gw.url, 'POST', `/api/bridge/session/${sessionId}/events`, { token: alice, body: { type: 'entity.updated', payload: { entityId: 'signal-1' } } });
  expect(pushed.json).toEqual({ sessionId, deliveredTo: 1 });
  expect((await ws.waitFor((m) => m.type === 'session.event' && m.payload.type === 'entity.updated')).payload.payload).toEqual({ entityId: 'signal-1' });

  const asked = call(gw.url, 'POST', `/api/bridge/session/${sessionId}/events/request`, { token: alice, body: { type: 'question.ask', payload: { text: 'Which style?' }, timeoutMs: 20_000 } });
  const request = await ws.waitFor((m) => m.type === 'session.event' && m.payload.type === 'hub.request');
  ws.send({ type: 'hub.response', requestId: request.payload.payload.requestId, response: ['concise'] });
  const answered = await asked;
  expect(answered.status).toBe(200);
  expect(answered.json).toMatchObject({ sessionId, response: ['concise'] });
  await ws.close();
});

it("refuses the socket without the session's token (4401), to another user (4404), and with a forged platform token (4401)", async () => {
  const boot = await call(gw.url, 'POST', '/api/bridge/session/bootstrap', { token: alice, body: { scadaUrl: 'https://scada.example.com', accessToken: 'Bearer scada-at-2' } });
  const { sessionId, websocketUrl } = boot.json;
  const bare = websocketUrl.slice(0, websocketUrl.indexOf('?'));
  expect(await new TestSocket(bare).closed).toBe(4401);
  expect(await new TestSocket(`${websocketUrl}&access_token=${bob}`).closed).toBe(4404);
  const forged = await signToken('another-secret-of-at-least-32-characters!', { sub: 'alice', apps: ['demo-app'] });
  expect(await new TestSocket(`${websocketUrl}&access_token=${forged}`).closed).toBe(4401);
  // Another user's token on the session's routes: as for a session that does not exist.
  expect((await call(gw.url, 'GET', `/api/bridge/session/${sessionId}/info`, { token: bob })).status).toBe(404);
  expect((await call(gw.url, 'GET', `/api/bridge/session/${sessionId}/info`, { token: alice })).status).toBe(200);
});

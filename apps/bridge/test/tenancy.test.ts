/**
 * Who may have an agent server, and who may use one (issue 16's attack, step by step, against the
 * bridge as deployed: its own process, tokens checked by the bridge itself). A session belongs to
 * the app and user that bootstrapped it; another user's or another app's session looks exactly
 * like one that does not exist.
 */
import { testPrefix, TestSocket } from '@tessera/kit/testing';
import { APP, bootstrap, forget, http, SERVICE_KEY, sessionRoutes, socketOf, spawnBridge, STAND_IN, tokenOf } from './harness';

const BASE = 31600;
const prefix = testPrefix('bridge-tenancy');
type Bridge = Awaited<ReturnType<typeof spawnBridge>>;
let bridge: Bridge;
const tokens: Record<string, string> = {};
let alice: { sessionId: string; sessionToken: string; opencodeUrl: string; opencodeAuth: { password: string } };

const wsBase = () => bridge.url.replace(/^http/, 'ws');


beforeAll(async () => {
  bridge = await spawnBridge(prefix, BASE, STAND_IN);
  tokens.alice = await tokenOf('alice');
  tokens.bob = await tokenOf('bob');
  tokens.operator = await tokenOf('ops', { roles: ['operator'] });
  tokens.otherApp = await tokenOf('mallory', { apps: ['other-app'] });
  tokens.otherOperator = await tokenOf('other-ops', { apps: ['other-app'], roles: ['operator'] });
  tokens.twoApps = await tokenOf('carol', { apps: [APP, 'other-app'] });
  const r = await bootstrap(bridge.url, { scadaUrl: 'https://scada.example.com/?site=7', accessToken: 'Bearer shared-scada-token' }, { token: tokens.alice });
  expect(r.status).toBe(200);
  expect(r.body).toMatchObject({ appId: APP, userId: 'alice', isNew: true });
  alice = r.body;
});
afterAll(async () => {
  await bridge?.stop('SIGTERM');
  await forget(prefix);
});

describe('bootstrap', () => {
  it('refuses a request with no token at all (401), and a token that is not valid', async () => {
    const none = await bootstrap(bridge.url, { scadaUrl: 'https://scada.example.com', accessToken: 'x' }, { token: null });
    expect(none.status).toBe(401);
    expect(none.body.error.message).toMatch(/platform token .* or the service key/);
    expect((await bootstrap(bridge.url, { scadaUrl: 'https://scada.example.com', accessToken: 'x' }, { token: 'not.a.jwt' })).status).toBe(401);
    // Who asks is settled before what is asked: a bad body without a token is still a 401.
    expect((await bootstrap(bridge.url, { scadaUrl: 'not a url' }, { token: null })).status).toBe(401);
    expect((await bootstrap(bridge.url, { scadaUrl: 'not a url' }, { token: tokens.alice })).status).toBe(400);
    expect((await bootstrap(bridge.url, { scadaUrl: 'https://scada.example.com', accessToken: 'x' }, { token: null, headers: { 'x-tessera-service-key': 'wrong-key-0123456789' } })).status).toBe(401);
  });

  it("binds another app's user to their own app: they may not name ours, and never get our user's server", async () => {
    const named = await bootstrap(bridge.url, { scadaUrl: 'https://scada.example.com/?site=7', accessToken: 'Bearer shared-scada-token', appId: APP }, { token: tokens.otherApp });
    expect(named.status).toBe(403);
    const own = await bootstrap(bridge.url, { scadaUrl: 'https://scada.example.com/?site=7', accessToken: 'Bearer shared-scada-token' }, { token: tokens.otherApp });
    expect(own.status).toBe(200);
    expect(own.body).toMatchObject({ appId: 'other-app', userId: 'mallory', isNew: true });
    expect(own.body.sessionId).not.toBe(alice.sessionId);
    expect(own.body.opencodeAuth.password).not.toBe(alice.opencodeAuth.password);
    // A token may not speak for another user.
    expect((await bootstrap(bridge.url, { scadaUrl: 'https://scada.example.com', accessToken: 'x', userId: 'alice' }, { token: tokens.bob })).status).toBe(403);
  });

  it('gives two users of one app who send the same (scadaUrl, accessToken) two servers; the same user gets theirs back', async () => {
    const bob = await bootstrap(bridge.url, { scadaUrl: 'https://scada.example.com/?site=7', accessToken: 'Bearer shared-scada-token' }, { token: tokens.bob });
    expect(bob.body).toMatchObject({ isNew: true, userId: 'bob' });
    expect(bob.body.sessionId).not.toBe(alice.sessionId);
    expect(bob.body.opencodeUrl).not.toBe(alice.opencodeUrl);
    const again = await bootstrap(bridge.url, { scadaUrl: 'https://scada.example.com/?site=7', accessToken: 'shared-scada-token' }, { token: tokens.alice });
    expect(again.body).toMatchObject({ isNew: false, sessionId: alice.sessionId, opencodeAuth: { password: alice.opencodeAuth.password } });
  });

  it('asks a token that allows several apps to name one; the service key must name app and user', async () => {
    const unnamed = await bootstrap(bridge.url, { scadaUrl: 'https://scada.example.com', accessToken: 'c' }, { token: tokens.twoApps });
    expect(unnamed.status).toBe(400);
    expect(unnamed.body.error.message).toMatch(/appId/);
    const named = await bootstrap(bridge.url, { scadaUrl: 'https://scada.example.com', accessToken: 'c', appId: 'other-app' }, { token: tokens.twoApps });
    expect(named.body).toMatchObject({ appId: 'other-app', userId: 'carol' });
    const key = { 'x-tessera-service-key': SERVICE_KEY };
    const missing = await bootstrap(bridge.url, { scadaUrl: 'https://scada.example.com', accessToken: 'd' }, { token: null, headers: key });
    expect(missing.status).toBe(400);
    expect(missing.body.error.message).toMatch(/appId, userId/);
    const backend = await bootstrap(bridge.url, { scadaUrl: 'https://scada.example.com', accessToken: 'd', appId: APP, userId: 'dave' }, { token: null, headers: key });
    expect(backend.body).toMatchObject({ appId: APP, userId: 'dave', isNew: true });
    // dave's platform token reaches the server a backend started for him; alice's does not.
    expect((await http(bridge.url, 'GET', `/api/session/${backend.body.sessionId}/info`, { token: await tokenOf('dave') })).status).toBe(200);
    expect((await http(bridge.url, 'GET', `/api/session/${backend.body.sessionId}/info`, { token: tokens.alice })).status).toBe(404);
  });
});

describe("a session's routes, socket and password", () => {
  it("are refused to another user of the app, to another app's users and operators, exactly as for a session that does not exist", async () => {
    for (const who of ['bob', 'otherApp', 'otherOperator']) {
      for (const [method, path, body] of sessionRoutes(alice.sessionId)) {
        const theirs = await http(bridge.url, method, path, { body, token: tokens[who] });
        const missing = await http(bridge.url, method, path.replace(alice.sessionId, '00000000-0000-4000-8000-000000000000'), { body, token: tokens[who] });
        expect([who, method, path, theirs.status]).toEqual([who, method, path, 404]);
        expect(theirs.body.error.code).toBe(missing.body.error.code);
        expect(theirs.body.error.message.replace(alice.sessionId, 'ID')).toBe(missing.body.error.message.replace('00000000-0000-4000-8000-000000000000', 'ID'));
      }
      const foreign = new TestSocket(`${wsBase()}/api/session/${alice.sessionId}/ws?access_token=${tokens[who]}`);
      expect(await foreign.closed).toBe(4404);
      expect(await socketOf(bridge.url, alice.sessionId).closed).toBe(4401);
    }
  });

  it("are the owner's, with their platform token alone (as through the gateway), and their app's operators'", async () => {
    expect((await http(bridge.url, 'GET', `/api/session/${alice.sessionId}/info`, { token: tokens.alice })).status).toBe(200);
    expect((await http(bridge.url, 'GET', `/api/session/${alice.sessionId}/info`, { token: tokens.operator })).status).toBe(200);
    const ws = new TestSocket(`${wsBase()}/api/session/${alice.sessionId}/ws?access_token=${tokens.alice}`);
    expect((await ws.waitType('session.snapshot')).payload.opencodeUrl).toBe(alice.opencodeUrl);
    await ws.close();
  });
});

describe('the servers list', () => {
  it('refuses no token (401) and a plain user (403)', async () => {
    expect((await http(bridge.url, 'GET', '/api/session/servers')).status).toBe(401);
    expect((await http(bridge.url, 'GET', '/api/session/servers', { token: tokens.alice })).status).toBe(403);
    expect((await http(bridge.url, 'GET', '/api/session/servers', { token: tokens.otherApp })).status).toBe(403);
  });

  it("shows an operator their apps' servers only, with owners and without the SCADA URL's query string", async () => {
    const mine = await http(bridge.url, 'GET', '/api/session/servers', { token: tokens.operator });
    expect(mine.status).toBe(200);
    const entries = mine.body.servers as { sessionId: string; appId: string; userId: string; scadaUrl: string }[];
    expect(entries.length).toBeGreaterThan(0);
    expect(entries.every((e) => e.appId === APP)).toBe(true);
    expect(entries.find((e) => e.sessionId === alice.sessionId)).toMatchObject({ userId: 'alice', scadaUrl: 'https://scada.example.com' });
    expect(mine.text).not.toContain('site=7');
    expect(mine.text).not.toContain(alice.opencodeAuth.password);
    const theirs = await http(bridge.url, 'GET', '/api/session/servers', { token: tokens.otherOperator });
    expect((theirs.body.servers as { appId: string }[]).every((e) => e.appId === 'other-app')).toBe(true);
    expect(theirs.text).not.toContain(alice.sessionId);
  });
});

/**
 * Tenant keying: a chat of another user or app is never reachable, on any route, and tokens are
 * checked on every one.
 */
import { TestSocket as TestClient } from '@tessera/kit/testing';
import { http, startRuntime, testEnv, token, wsUrl, SERVICE_KEY, SECRET, type Env, type RuntimeInstance } from './harness';
import { signToken } from '@tessera/kit';

let env: Env;
let rt: RuntimeInstance;
let alice: string;
let mallory: string;
let chatId: string;
let toolEventId: string;

beforeAll(async () => {
  env = await testEnv('access');
  rt = await startRuntime(env);
  alice = await token('alice', ['app1']);
  mallory = await token('mallory', ['app1', 'app2']);
  const r = await http(rt.url, 'POST', '/api/chats/app1/ask_user/start', { user_id: 'alice' }, alice);
  chatId = r.body.chat_id;
  const c = await TestClient.connect(wsUrl(rt.wsUrl, 'ask_user', 'app1', chatId, 'alice', alice));
  c.send({ type: 'user.input.submit', text: 'hi' });
  toolEventId = (await c.waitType('chat.tool_call')).data.event_id;
  await c.waitType('chat.run_complete');
  await c.close();
});
afterAll(async () => {
  await rt?.close();
  await env?.dropSchema();
});

test("another user's chat is refused on every HTTP route", async () => {
  const as = (method: string, path: string, body?: unknown) => http(rt.url, method, path, body, mallory);
  // Naming alice in the path or body: the token's subject must match.
  expect((await as('GET', '/api/sessions/app1/alice')).status).toBe(403);
  expect((await as('GET', '/api/sessions/recent/app1/alice')).status).toBe(403);
  expect((await as('POST', '/api/chats/app1/assistant/start', { user_id: 'alice' })).status).toBe(403);
  expect((await as('POST', '/api/chat/start', { app_id: 'app1', user_id: 'alice', workflow_name: 'assistant' })).status).toBe(403);
  expect((await as('POST', `/chat/app1/${chatId}/alice/input`, { message: 'x', workflow_name: 'ask_user' })).status).toBe(403);
  // Naming themselves, with alice's chat id: not found (ids of other users' chats cannot be probed).
  expect((await as('POST', `/chat/app1/${chatId}/mallory/input`, { message: 'x', workflow_name: 'ask_user' })).status).toBe(404);
  expect((await as('GET', `/api/chats/meta/app1/ask_user/${chatId}`)).status).toBe(404);
  expect((await as('POST', '/api/tool-call/respond', { event_id: toolEventId, response_data: { answer: 'pwned' } })).status).toBe(404);
  expect((await as('POST', `/api/chats/app1/${chatId}/stop`)).status).toBe(404);
  const form = new FormData();
  form.set('file', new Blob(['x']), 'x.txt');
  form.set('appId', 'app1');
  form.set('userId', 'mallory');
  form.set('chatId', chatId);
  const up = await fetch(`${rt.url}/api/chat/upload`, { method: 'POST', body: form, headers: { authorization: `Bearer ${mallory}` } });
  expect(up.status).toBe(404);
  // Nothing of it reached alice's chat.
  expect((await rt.s.chats.get(chatId))!.status).toBe('awaiting_input');
  expect((await rt.s.toolCalls.find(toolEventId))!.status).toBe('awaiting');
  expect(await rt.s.db.prisma.attachment.count({ where: { chatId } })).toBe(0);
  // Her own sessions do not list alice's chat.
  expect((await as('GET', '/api/sessions/app1/mallory')).body).toEqual([]);
});

test('an app the token does not allow is refused', async () => {
  const r = await http(rt.url, 'POST', '/api/chats/app2/assistant/start', { user_id: 'alice' }, alice);
  expect(r.status).toBe(403);
  expect(r.body.error.message).toContain('app2');
  expect((await http(rt.url, 'GET', `/api/chats/meta/app2/ask_user/${chatId}`, undefined, alice)).status).toBe(404);
});

test('missing, expired and tampered tokens get 401', async () => {
  const missing = await http(rt.url, 'GET', '/api/sessions/app1/alice');
  expect(missing.status).toBe(401);
  expect(missing.body.error).toMatchObject({ code: 'UNAUTHORIZED', message: 'missing token' });
  const expired = await signToken(SECRET, { sub: 'alice', apps: ['app1'] }, { expiresIn: -10 });
  expect((await http(rt.url, 'GET', '/api/sessions/app1/alice', undefined, expired)).body.error.message).toBe('token expired');
  const [h, p, s] = alice.split('.');
  const forged = Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(p, 'base64url').toString()), sub: 'mallory' })).toString('base64url');
  expect((await http(rt.url, 'GET', '/api/sessions/app1/mallory', undefined, `${h}.${forged}.${s}`)).status).toBe(401);
});

test("another user's chat socket closes with 1008 and sends nothing of the chat", async () => {
  const cases = [
    wsUrl(rt.wsUrl, 'ask_user', 'app1', chatId, 'alice', mallory), // someone else's token
    wsUrl(rt.wsUrl, 'ask_user', 'app1', chatId, 'mallory', mallory), // own user id, alice's chat
    wsUrl(rt.wsUrl, 'ask_user', 'app2', chatId, 'alice', alice), // wrong app
    wsUrl(rt.wsUrl, 'ask_user', 'app1', chatId, 'alice'), // no token
    wsUrl(rt.wsUrl, 'ask_user', 'app1', chatId, 'alice', 'garbage'), // bad token
  ];
  for (const url of cases) {
    const c = new TestClient(url);
    expect(await c.closed).toBe(1008);
    expect(c.messages).toEqual([]);
  }
});

test('backend context needs the service key; without it everything is client context', async () => {
  const trusted = await http(rt.url, 'POST', '/api/chat/start', { app_id: 'app1', user_id: 'alice', workflow_name: 'assistant', initial_context: { user_tier: 'pro' }, ui_context: { user_tier: 'enterprise', theme: 'dark' } }, alice, {
    'x-tessera-service-key': SERVICE_KEY,
  });
  expect(trusted.status).toBe(201);
  expect((await rt.s.chats.get(trusted.body.chat_id))!.context).toEqual({ user_tier: 'pro', ui_user_tier: 'enterprise', ui_theme: 'dark' });
  const untrusted = await http(rt.url, 'POST', '/api/chat/start', { app_id: 'app1', user_id: 'alice', workflow_name: 'assistant', initial_context: { user_tier: 'enterprise' } }, alice, {
    'x-tessera-service-key': 'guess-guess-guess-guess',
  });
  expect((await rt.s.chats.get(untrusted.body.chat_id))!.context).toEqual({ ui_user_tier: 'enterprise' });
});

import { Redis } from 'ioredis';
import { Channel } from '@tessera/contracts';
import { TEST_REDIS_URL, TestSocket } from '@tessera/kit/testing';
import { http, startRuntime, testEnv, token, wsUrl, type Env, type RuntimeInstance } from './harness';

/** What one client or one user can hold of a runtime: subscriptions, messages per user. */
let env: Env;
let rt: RuntimeInstance;
let redis: Redis;

beforeAll(async () => {
  env = await testEnv('limits');
  // A quiet chat's channel lingers subscribed CHAT_LINGER_MS after its last socket: short here, to see it end.
  rt = await startRuntime(env, { extra: { WS_USER_MESSAGES_PER_MINUTE: '6', CHAT_LINGER_MS: '300' } });
  redis = new Redis(TEST_REDIS_URL);
});
afterAll(async () => {
  await rt?.close();
  await redis?.quit();
  await env?.dropSchema();
});

async function chatOf(user: string, tok: string) {
  const r = await http(rt.url, 'POST', '/api/chats/app1/assistant/start', { user_id: user }, tok);
  expect(r.status).toBe(201);
  return r.body.chat_id as string;
}

const subscribers = async (chatId: string) => {
  const [, n] = (await redis.pubsub('SHARDNUMSUB', Channel.chatEvents.name(chatId))) as [string, number];
  return Number(n);
};

it('sockets that close while they are being opened leave no Redis subscription behind (once the chat’s linger is over)', async () => {
  const tok = await token('leaky');
  const chat = await chatOf('leaky', tok);
  const url = wsUrl(rt.wsUrl, 'assistant', 'app1', chat, 'leaky', tok);
  // Each is dropped at a different point of its opening (handshake, auth, subscribe, meta).
  await Promise.all(
    Array.from({ length: 40 }, async (_, i) => {
      const s = new TestSocket(url);
      await s.opened.catch(() => undefined);
      await new Promise((r) => setTimeout(r, i % 8));
      s.ws.terminate();
      await s.closed;
    }),
  );
  const deadline = Date.now() + 5_000;
  while ((await subscribers(chat)) > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  expect(await subscribers(chat)).toBe(0);
  // A socket that stays is subscribed, and unsubscribed once it leaves.
  const stays = await TestSocket.connect(url);
  await stays.waitType('chat_meta');
  expect(await subscribers(chat)).toBe(1);
  await stays.close();
  while ((await subscribers(chat)) > 0 && Date.now() < deadline + 5_000) await new Promise((r) => setTimeout(r, 50));
  expect(await subscribers(chat)).toBe(0);
});

it('a user has one budget of messages across all their sockets: past it, chat.error RATE_LIMITED', async () => {
  const tok = await token('busy');
  const [a, b] = [await chatOf('busy', tok), await chatOf('busy', tok)];
  const sa = await TestSocket.connect(wsUrl(rt.wsUrl, 'assistant', 'app1', a, 'busy', tok));
  const sb = await TestSocket.connect(wsUrl(rt.wsUrl, 'assistant', 'app1', b, 'busy', tok));
  await Promise.all([sa.waitType('chat_meta'), sb.waitType('chat_meta')]);
  for (let i = 0; i < 4; i++) {
    sa.send({ type: 'user.input.submit', text: `a${i}`, client_message_id: `a${i}` });
    sb.send({ type: 'user.input.submit', text: `b${i}`, client_message_id: `b${i}` });
  }
  // Every message is answered, an ack or an error, in order on its socket: wait for all eight answers.
  const answers = (s: TestSocket) => s.messages.filter((m) => m.type === 'ack.input' || (m.type === 'chat.error' && m.index === undefined)).length;
  await Promise.all([sa.waitFor(() => answers(sa) >= 4), sb.waitFor(() => answers(sb) >= 4)]);
  const acks = [...sa.messages, ...sb.messages].filter((m) => m.type === 'ack.input').length;
  const limited = [...sa.messages, ...sb.messages].filter((m) => m.type === 'chat.error' && m.data.error_code === 'RATE_LIMITED');
  expect(acks).toBe(6);
  expect(limited).toHaveLength(2);
  expect(limited[0].data.message).toMatch(/too many messages from this user; try again in \d+ s/);
  // Another user is not affected, and the limited sockets stay open.
  const other = await token('calm');
  const so = await TestSocket.connect(wsUrl(rt.wsUrl, 'assistant', 'app1', await chatOf('calm', other), 'calm', other));
  so.send({ type: 'user.input.submit', text: 'hi' });
  await so.waitType('ack.input');
  expect([sa.closeCode, sb.closeCode]).toEqual([null, null]);
  await Promise.all([sa.close(), sb.close(), so.close()]);
});

it('the budget is the user\'s whichever way a message comes: HTTP input, AG-UI and the socket draw on the same one', async () => {
  const tok = await token('everywhere');
  const chat = await chatOf('everywhere', tok);
  const sock = await TestSocket.connect(wsUrl(rt.wsUrl, 'assistant', 'app1', chat, 'everywhere', tok));
  await sock.waitType('chat_meta');
  for (let i = 0; i < 2; i++) {
    sock.send({ type: 'user.input.submit', text: `s${i}`, client_message_id: `s${i}` });
    await sock.waitFor((m) => m.type === 'ack.input' && m.data.client_message_id === `s${i}`);
  }
  const byHttp = (i: number) => http(rt.url, 'POST', `/chat/app1/${chat}/everywhere/input`, { message: `h${i}`, workflow_name: 'assistant' }, tok);
  expect((await byHttp(0)).status).toBe(202);
  expect((await byHttp(1)).status).toBe(202);
  const byAgui = (i: number) =>
    fetch(`${rt.url}/api/agui/app1/assistant`, {
      method: 'POST',
      headers: { authorization: `Bearer ${tok}`, 'content-type': 'application/json', accept: 'text/event-stream' },
      body: JSON.stringify({ threadId: chat, runId: `run-${i}`, messages: [{ id: `u${i}`, role: 'user', content: `g${i}` }], tools: [], context: [], state: {}, forwardedProps: {} }),
    });
  const ok = await byAgui(0);
  expect(ok.status).toBe(200);
  await ok.body?.cancel();
  // Five spent (2 socket, 2 HTTP, 1 AG-UI): the sixth passes, and past it each way is refused.
  const sixth = await byAgui(1);
  expect(sixth.status).toBe(200);
  await sixth.body?.cancel();
  const refusedAgui = await byAgui(2);
  expect(refusedAgui.status).toBe(429);
  expect(await refusedAgui.json()).toMatchObject({ error: { code: 'RATE_LIMITED' } });
  expect(await byHttp(2)).toMatchObject({ status: 429, body: { error: { code: 'RATE_LIMITED' } } });
  sock.send({ type: 'user.input.submit', text: 's-late', client_message_id: 's-late' });
  expect((await sock.waitFor((m) => m.type === 'chat.error')).data).toMatchObject({ error_code: 'RATE_LIMITED' });
  await sock.close();
});

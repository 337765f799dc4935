import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { pgConnectionString } from '@tessera/kit';
import { call, closedPort, TestSocket, type Envelope } from '@tessera/kit/testing';
import { SECRET, startTestGateway, token, type TestGateway } from './support';
import { startBrokerProcess, startRuntime, type HttpService, type RuntimeStack } from './stack';

/**
 * The whole path a frontend takes, with real processes: gateway (in this process) → broker
 * (child process) → runtime HTTP+WS and its turn worker (child processes), real Redis and
 * PostgreSQL.
 */
const SERVICE_KEY = 'e2e-service-key-0123456789abcdef';

describe('end to end through the gateway, with the real broker and runtime', () => {
  let runtime: RuntimeStack;
  let broker: HttpService;
  let gw: TestGateway;
  let dir: string;
  let alice: string;
  let bob: string;
  let aliceChat: { chat_id: string; websocket_url: string };
  const clients: TestSocket[] = [];

  const wsBase = () => gw.url.replace('http', 'ws');
  const post = (path: string, tok: string | undefined, body: unknown, headers: Record<string, string> = {}) => call(gw.url, 'POST', path, { token: tok, body, headers });
  const get = (path: string, tok?: string) => call(gw.url, 'GET', path, { token: tok });
  const open = async (url: string) => {
    const c = await TestSocket.connect(url);
    clients.push(c);
    return c;
  };
  /** Send a message and collect the turn's events up to chat.run_complete. */
  const turn = async (c: TestSocket, text: string, timeoutMs = 10_000) => {
    const from = c.messages.length;
    c.send({ type: 'user.input.submit', text });
    await c.waitFor((m) => m.type === 'chat.run_complete' && c.messages.indexOf(m) >= from, timeoutMs);
    return c.messages.slice(from);
  };
  const chatContext = async (chatId: string) => {
    const client = new pg.Client({ connectionString: pgConnectionString(runtime.databaseUrl) });
    await client.connect();
    try {
      const r = await client.query(`SELECT context FROM "${runtime.schema}".chats WHERE id = $1`, [chatId]);
      return r.rows[0]?.context as Record<string, unknown>;
    } finally {
      await client.end();
    }
  };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'gw-e2e-'));
    writeFileSync(join(dir, 'context.json'), JSON.stringify({ '*': { support_priority: 'normal' }, alice: { internal_customer_id: 'CUST-0001' } }));
    // Ports first: the gateway routes to both services, the broker hands out socket URLs on the gateway.
    const [brokerPort, runtimePort] = await Promise.all([closedPort(), closedPort()]);
    gw = await startTestGateway({ BROKER_URL: `http://127.0.0.1:${brokerPort}`, RUNTIME_URL: `http://127.0.0.1:${runtimePort}` });
    [runtime, broker] = await Promise.all([
      startRuntime({ JWT_SECRET: SECRET, SERVICE_KEY }, runtimePort),
      startBrokerProcess(
        {
          RUNTIME_URL: `http://127.0.0.1:${runtimePort}`,
          PUBLIC_WS_URL: wsBase(),
          JWT_SECRET: SECRET,
          SERVICE_KEY,
          APP_ID: 'demo-app',
          CONTEXT_FILE: join(dir, 'context.json'),
        },
        brokerPort,
      ),
    ]);
    [alice, bob] = await Promise.all([token('alice', { tier: 'pro' }), token('bob', { tier: 'free' })]);
  }, 30_000);

  afterAll(async () => {
    for (const c of clients) c.ws.terminate();
    await gw?.stop();
    await broker?.stop();
    await runtime?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('a signed-in user starts a session through the broker and chats over the returned socket', async () => {
    const r = await post('/api/mozaiks/session', alice, { workflow_name: 'assistant', client_request_id: 'first', context: { user_tier: 'enterprise' } });
    expect(r.status).toBe(200);
    expect(r.json).toMatchObject({ workflow_name: 'assistant', reused: false });
    expect(r.json.websocket_url).toBe(`${wsBase()}/ws/assistant/demo-app/${r.json.chat_id}/alice`);
    aliceChat = r.json;
    const again = await post('/api/mozaiks/session', alice, { workflow_name: 'assistant', client_request_id: 'first' });
    expect(again.json).toMatchObject({ chat_id: aliceChat.chat_id, reused: true });

    const c = await open(`${aliceChat.websocket_url}?access_token=${alice}`);
    const meta = await c.waitFor((m) => m.type === 'chat_meta');
    expect(meta.data).toMatchObject({ chat_id: aliceChat.chat_id, user_id: 'alice', app_id: 'demo-app' });
    const events = await turn(c, 'hi');
    const text = events.filter((m) => m.type === 'chat.text' && m.data.role === 'assistant');
    // A fast reply's deltas are coalesced into few events; together they are the whole reply.
    expect(text.length).toBeGreaterThanOrEqual(1);
    const last = text.at(-1)!;
    expect(last.data.done).toBe(true);
    expect(last.data.content).toContain('You said "hi"');
    expect(text.map((m) => m.data.delta).join('')).toBe(last.data.content);
    const indexes = events.filter((m) => m.index !== undefined).map((m) => m.index!);
    expect(indexes).toEqual([...indexes].sort((a, b) => a - b));
    expect(events.at(-1)!.data.status).toBe('completed');
  });

  it('backend context from the token and the context file reaches the chat; the client can neither see nor set it', async () => {
    const c = clients[0];
    const reply = c.messages.filter((m: Envelope) => m.type === 'chat.text' && m.data.done && m.data.role === 'assistant').at(-1)!;
    // The agent sees the backend's tier (token claim), not the one the client sent.
    expect(reply.data.content).toContain('Your plan: pro.');
    expect(await chatContext(aliceChat.chat_id)).toEqual({
      user_tier: 'pro',
      support_priority: 'normal',
      internal_customer_id: 'CUST-0001',
      ui_user_tier: 'enterprise',
    });
    // Nothing of it is sent to the client.
    expect(JSON.stringify(c.messages)).not.toContain('CUST-0001');
    const meta = await get(`/api/chats/meta/demo-app/assistant/${aliceChat.chat_id}`, alice);
    expect(meta.status).toBe(200);
    expect(meta.text).not.toContain('CUST-0001');

    // A client calling the runtime's backend start itself, even with a forged service key, is a client: ui_ prefix.
    const forged = await post(
      '/api/chat/start',
      alice,
      { app_id: 'demo-app', user_id: 'alice', workflow_name: 'assistant', initial_context: { user_tier: 'enterprise' } },
      { 'x-tessera-service-key': SERVICE_KEY },
    );
    expect(forged.status).toBe(201);
    expect(await chatContext(forged.json.chat_id)).toEqual({ ui_user_tier: 'enterprise' });
  });

  it('lists the user’s sessions and finds the recent one through the broker', async () => {
    const list = await get('/api/mozaiks/sessions', alice);
    expect(list.status).toBe(200);
    expect(list.json.map((s: { chat_id: string }) => s.chat_id)).toContain(aliceChat.chat_id);
    expect(list.json.every((s: { user_id: string }) => s.user_id === 'alice')).toBe(true);
    const recent = await get('/api/mozaiks/sessions/recent', alice);
    expect(recent.status).toBe(200);
    expect(recent.json).toMatchObject({ found: true, workflow_name: 'assistant' });
    const none = await get('/api/mozaiks/sessions/recent', await token('carol'));
    expect(none.json).toEqual({ found: false, chat_id: null, workflow_name: null });
  });

  it('refuses tampered, expired and missing tokens at the edge, on HTTP and on the socket', async () => {
    const expired = await token('alice', { tier: 'pro' }, Math.floor(Date.now() / 1000) - 60);
    const tampered = `${alice.slice(0, -6)}AAAAAA`;
    for (const t of [expired, tampered, undefined]) {
      expect((await post('/api/mozaiks/session', t, { workflow_name: 'assistant' })).status).toBe(401);
      expect((await get('/api/sessions/demo-app/alice', t)).status).toBe(401);
      const url = `${aliceChat.websocket_url}${t ? `?access_token=${t}` : ''}`;
      await expect(TestSocket.connect(url)).rejects.toMatchObject({ status: 401 });
    }
  });

  it('keeps another user’s chat out of reach on every route', async () => {
    const id = aliceChat.chat_id;
    expect((await get('/api/sessions/demo-app/alice', bob)).status).toBe(403);
    expect((await get('/api/sessions/recent/demo-app/alice', bob)).status).toBe(403);
    expect((await get(`/api/chats/meta/demo-app/assistant/${id}`, bob)).status).toBe(404);
    expect([403, 404]).toContain((await post(`/chat/demo-app/${id}/alice/input`, bob, { message: 'x', workflow_name: 'assistant' })).status);
    expect([403, 404]).toContain((await post(`/chat/demo-app/${id}/bob/input`, bob, { message: 'x', workflow_name: 'assistant' })).status);
    expect((await post('/api/chats/demo-app/assistant/start', bob, { user_id: 'alice' })).status).toBe(403);
    expect((await post('/api/chat/start', bob, { app_id: 'demo-app', user_id: 'alice', workflow_name: 'assistant' })).status).toBe(403);
    // Bob's own list never shows Alice's chat.
    const bobs = await get('/api/mozaiks/sessions', bob);
    expect(bobs.json.map((s: { chat_id: string }) => s.chat_id)).not.toContain(id);

    for (const path of [`/ws/assistant/demo-app/${id}/alice`, `/ws/assistant/demo-app/${id}/bob`]) {
      const c = await open(`${wsBase()}${path}?access_token=${bob}`);
      expect(await c.closed).toBe(1008);
      expect(c.messages).toEqual([]);
    }
  });

  it('a relayed socket survives a long streamed turn, and closes cleanly (1001) when the gateway shuts down', async () => {
    const own = await startTestGateway({ RUNTIME_URL: runtime.url, BROKER_URL: 'off' });
    try {
      const started = await call(own.url, 'POST', '/api/chats/demo-app/long/start', { token: alice, body: { user_id: 'alice' } });
      expect(started.status).toBe(201);
      const c = await open(`${own.url.replace('http', 'ws')}${started.json.websocket_url}?access_token=${alice}`);
      await c.waitFor((m) => m.type === 'chat_meta');
      const t0 = Date.now();
      const events = await turn(c, 'tell me a story', 15_000);
      const deltas = events.filter((m) => m.type === 'chat.text' && m.data.role === 'assistant');
      expect(Date.now() - t0).toBeGreaterThan(1_500);
      expect(deltas.length).toBeGreaterThan(200);
      expect(deltas.at(-1)!.data.content).toContain('The end.');

      // Mid-way through the next turn, the gateway stops.
      c.send({ type: 'user.input.submit', text: 'again' });
      const before = c.messages.length;
      await c.waitFor((m) => m.type === 'chat.text' && c.messages.indexOf(m) >= before + 20);
      await own.stop();
      await c.closed;
      expect({ code: c.closeCode, reason: c.closeReason }).toEqual({ code: 1001, reason: 'gateway shutting down' });
    } finally {
      await own.stop();
    }
  });

  it('with the runtime down: the broker answers 503 "AI service unavailable" and reports degraded', async () => {
    await runtime.api.stop();
    const r = await post('/api/mozaiks/session', alice, { workflow_name: 'assistant' });
    expect(r.status).toBe(503);
    expect(r.json).toEqual({ error: { code: 'SERVICE_UNAVAILABLE', message: 'AI service unavailable' } });
    expect(r.ms).toBeLessThan(3_000);
    const health = await call(broker.url, 'GET', '/health');
    expect(health.status).toBe(200);
    expect(health.json).toMatchObject({ status: 'degraded', checks: { runtime: { status: 'degraded' } } });
    // Routes straight to the runtime fail fast in the error shape too; the gateway stays up, degraded.
    const direct = await get('/api/sessions/demo-app/alice', alice);
    expect(direct.status).toBe(503);
    const ready = await call(gw.url, 'GET', '/ready');
    expect(ready.status).toBe(200);
    expect(ready.json.status).toBe('degraded');
    expect(ready.json.services.runtime.status).toBe('down');
    expect(ready.json.services.broker.status).toBe('degraded');
  });
});

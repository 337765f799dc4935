/**
 * A runtime chat as an operator sees it in observability, through the gateway (this process) with
 * the runtime, its turn worker and observability as child processes on one BullMQ prefix, real
 * Redis and PostgreSQL: a chat whose agent waits for the user's answer to a UI tool is `running`
 * (document 001 §1.1: running or finished, and stopped), and a stop from the operator cancels the
 * pending tool call and closes the turn.
 */
import { randomBytes } from 'node:crypto';
import { call, TestSocket } from '@tessera/kit/testing';
import { SECRET, startTestGateway, token, type TestGateway } from './support';
import { spawnObservability, startRuntime, type HttpService, type RuntimeStack } from './stack';

const SERVICE_KEY = 'obs-stop-service-key-0123456789abcdef';
let runtime: RuntimeStack;
let obs: HttpService;
let gw: TestGateway;
const sockets: TestSocket[] = [];

beforeAll(async () => {
  const bull = `test-gw-obs-${randomBytes(4).toString('hex')}`;
  [runtime, obs] = await Promise.all([startRuntime({ JWT_SECRET: SECRET, SERVICE_KEY, extra: { OBSERVABILITY_EVENTS: 'true', BULL_PREFIX: bull } }), spawnObservability('gw_obs', bull, SERVICE_KEY)]);
  gw = await startTestGateway({ RUNTIME_URL: runtime.url, BROKER_URL: 'off', OBSERVABILITY_URL: obs.url });
}, 90_000);
afterAll(async () => {
  for (const s of sockets) s.ws.terminate();
  await gw?.stop();
  await Promise.allSettled([runtime?.stop(), obs?.stop()]);
});

async function until<T>(what: string, read: () => Promise<T>, ok: (v: T) => boolean, ms = 20_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await read();
    if (ok(v)) return v;
    if (Date.now() > end) throw new Error(`${what}: still ${JSON.stringify(v)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

test('a chat waiting for a UI tool answer is running in observability; an operator stop dismisses the tool call and closes the turn', async () => {
  const alice = await token('alice');
  const operator = await token('ops', { roles: ['operator'] });
  const start = await call(gw.url, 'POST', '/api/chats/demo-app/ask_user/start', { token: alice, body: { user_id: 'alice' } });
  expect(start.status).toBe(201);
  const chatId = (start.json as { chat_id: string }).chat_id;
  const socket = await TestSocket.connect(`${gw.url.replace('http', 'ws')}/ws/ask_user/demo-app/${chatId}/alice?access_token=${alice}`);
  sockets.push(socket);
  socket.send({ type: 'user.input.submit', text: 'hello' });
  const toolCall = await socket.waitType('chat.tool_call', 20_000);
  const awaiting = await socket.waitType('chat.run_complete', 20_000);
  expect(awaiting.data).toMatchObject({ status: 'awaiting_input' });

  // Observability has the whole turn (its last event is the run's end), and the chat is running.
  const session = (await until(
    'the session in observability',
    () => call(gw.url, 'GET', `/api/observability/sessions/${chatId}`, { token: operator }),
    (r) => r.status === 200 && (r.json as { event_count: number }).event_count >= socket.timeline().length,
  )).json as Record<string, unknown>;
  expect(session).toMatchObject({ session_id: chatId, source: 'runtime', app_id: 'demo-app', status: 'running' });

  const stop = await call(gw.url, 'POST', `/api/observability/sessions/${chatId}/stop`, { token: operator });
  expect(stop.status).toBe(200);
  expect(stop.json).toMatchObject({ success: true, session_id: chatId });

  // The client sees the pending tool call dismissed, then the run's end as stopped.
  const from = socket.messages.indexOf(awaiting) + 1;
  const dismissed = await socket.waitType('chat.tool_call_dismiss', 20_000, from);
  expect(dismissed.data).toMatchObject({ event_id: toolCall.data.event_id, reason: 'chat stopped' });
  const ended = await socket.waitFor((m) => m.type === 'chat.run_complete' && m.data.status === 'stopped', 20_000, from);
  expect(ended.index).toBeGreaterThan(dismissed.index!);

  // The answer that comes too late is refused, and nothing runs: the chat stays stopped.
  const late = await call(gw.url, 'POST', '/api/tool-call/respond', { token: alice, body: { event_id: toolCall.data.event_id, response_data: { answer: 'Ada' } } });
  expect(late.status).toBe(409);
  const meta = await call(gw.url, 'GET', `/api/chats/meta/demo-app/ask_user/${chatId}`, { token: alice });
  expect(meta.json).toMatchObject({ status: 'stopped' });
  const stopped = await until(
    'the stopped session',
    () => call(gw.url, 'GET', `/api/observability/sessions/${chatId}`, { token: operator }),
    (r) => (r.json as { event_count: number }).event_count >= socket.timeline().length,
  );
  expect(stopped.json).toMatchObject({ status: 'stopped' });
  // A second stop: already stopped.
  expect((await call(gw.url, 'POST', `/api/observability/sessions/${chatId}/stop`, { token: operator })).status).toBe(409);
});

/**
 * PostgreSQL out of the worker's reach mid-turn for longer than BullMQ's retries last (about 8 s):
 * the turn's job is put back without using up its attempts, and once PostgreSQL is back the turn
 * runs again and completes (a re-run: the cut-off reply closed, then the reply whole). Before, the
 * job failed for good and the chat waited for ever.
 */
import type { ChildProcess } from 'node:child_process';
import { resolve } from 'node:path';
import { tcpRelay, TestSocket } from '@tessera/kit/testing';
import { http, spawnWorker, startRuntime, testEnv, transcript, wsUrl, type Env, type RuntimeInstance } from './harness';
import { newSlowChat, referenceTranscript, type StreamingChat } from './streaming-chats';

/** The turn completed as a re-run: the user's message, the reply cut off where the outage came, the reply whole, the end. */
async function expectReRun(c: TestSocket, reference: string[]): Promise<void> {
  const end = await c.waitType('chat.run_complete', 30_000);
  expect(end.data.status).toBe('completed');
  const [user, partial, ...rest] = transcript(c.timeline());
  expect([user, ...rest]).toEqual(reference);
  expect(reference[1].startsWith(partial)).toBe(true);
}

/** A socket on the chat whose message's reply has begun to stream. */
async function streaming(instance: RuntimeInstance, chat: StreamingChat): Promise<TestSocket> {
  const c = await TestSocket.connect(wsUrl(instance.wsUrl, 'slow', 'app1', chat.chatId, chat.user, chat.tok));
  await c.waitType('chat_meta');
  c.send({ type: 'user.input.submit', text: 'alpha', client_message_id: 'm-1' });
  await c.waitFor((m) => m.type === 'chat.text' && m.data.role === 'assistant', 20_000);
  return c;
}

const extra = { WORKFLOWS_DIR: resolve(__dirname, 'fixtures/workflows') };
let env: Env;
let api: RuntimeInstance;
let worker: ChildProcess;
let relay: Awaited<ReturnType<typeof tcpRelay>>;
/** An API instance whose PostgreSQL is the relay's too, with a heartbeat every 2 s. */
let cut: RuntimeInstance;

beforeAll(async () => {
  env = await testEnv('pgout');
  relay = await tcpRelay(new URL(env.DATABASE_URL));
  api = await startRuntime(env, { worker: false, extra });
  worker = await spawnWorker(env, { ...extra, DATABASE_URL: relay.url });
  cut = await startRuntime(env, { worker: false, extra: { ...extra, DATABASE_URL: relay.url, WS_HEARTBEAT_MS: '2000' } });
}, 60_000);
afterAll(async () => {
  worker?.kill('SIGKILL');
  await relay?.down();
  await cut?.close();
  await api?.close();
  await env?.dropSchema();
});

test('PostgreSQL away from the worker for 12 s mid-turn: the turn runs again once it is back, and completes', async () => {
  const reference = await referenceTranscript(api);
  const chat = await newSlowChat(api, 'outage');
  const c = await streaming(api, chat);
  await relay.down();
  await new Promise((r) => setTimeout(r, 12_000));
  await relay.up();

  await expectReRun(c, reference);
  const job = await api.s.turnQueue.queue.getJob((await api.s.db.prisma.chatInput.findFirstOrThrow({ where: { chatId: chat.chatId } })).id);
  expect(await job!.getState()).toBe('completed');
  await c.close();
}, 60_000);

test('PostgreSQL away from the API instance and the worker for 30 s: sockets stay open, messages get a clear "try again", and afterwards the turn completes and a message is taken', async () => {
  const reference = await referenceTranscript(api);
  const chat = await newSlowChat(api, 'outage-all');
  const c = await streaming(cut, chat);
  await relay.down();
  const downAt = Date.now();

  // While it is away: the socket's message and the HTTP one are refused with a retryable answer, never taken half.
  const from = c.messages.length;
  c.send({ type: 'user.input.submit', text: 'beta', client_message_id: 'm-2' });
  const refused = await c.waitType('chat.error', 20_000, from);
  expect(refused.data).toEqual({ error_code: 'UNAVAILABLE', message: 'storage unavailable; try again' });
  const viaHttp = await http(cut.url, 'POST', `/chat/app1/${chat.chatId}/${chat.user}/input`, { message: 'beta', workflow_name: 'slow', client_message_id: 'm-2' }, chat.tok);
  expect(viaHttp.status).toBe(503);
  expect(viaHttp.body).toMatchObject({ error: { message: 'storage unavailable; try again' } });
  // A client that connects meanwhile is told to come back (1013), not left hanging.
  const late = new TestSocket(wsUrl(cut.wsUrl, 'slow', 'app1', chat.chatId, chat.user, chat.tok));
  expect(await late.closed).toBe(1013);

  await new Promise((r) => setTimeout(r, Math.max(0, downAt + 30_000 - Date.now())));
  // Fifteen heartbeats went by: the socket is still open.
  expect(c.closeCode).toBeNull();
  await relay.up();

  await expectReRun(c, reference);
  // The message the outage refused, sent again, is taken once and answered.
  const again = c.messages.length;
  c.send({ type: 'user.input.submit', text: 'beta', client_message_id: 'm-2' });
  await c.waitType('ack.input', 20_000, again);
  await c.waitType('chat.run_complete', 30_000, again);
  const stored = await api.s.timeline.after(chat.chatId, 0, 10_000);
  expect(stored.filter((e) => e.type === 'chat.text' && e.data.role === 'user').map((e) => e.data.content)).toEqual(['alpha', 'beta']);
  await c.close();
}, 120_000);

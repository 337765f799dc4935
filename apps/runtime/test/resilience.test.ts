/**
 * What users rely on when things break: resume after random disconnects gives the same
 * transcript as never disconnecting; a socket on one instance gets a worker's events from
 * another process; a worker killed mid-turn loses nothing and repeats nothing; stop.
 */
import type { ChildProcess } from 'node:child_process';
import { resolve } from 'node:path';
import { TestSocket as TestClient, type Envelope } from '@tessera/kit/testing';
import { http, spawnWorker, startRuntime, testEnv, token, transcript, wsUrl, type Env, type RuntimeInstance } from './harness';

const SLOW = { WORKFLOWS_DIR: resolve(__dirname, 'fixtures/workflows') };
let env: Env;
let api: RuntimeInstance; // sockets + HTTP, no worker
let api2: RuntimeInstance; // a second instance, no worker
let worker: ChildProcess | null = null;

beforeAll(async () => {
  env = await testEnv('resil');
  api = await startRuntime(env, { worker: false, extra: SLOW });
  api2 = await startRuntime(env, { worker: false, extra: SLOW });
  worker = await spawnWorker(env, SLOW);
}, 60_000);
afterAll(async () => {
  worker?.kill('SIGKILL');
  await Promise.all([api?.close(), api2?.close()]);
  await env?.dropSchema();
});

async function newChat(user: string) {
  const tok = await token(user);
  const r = await http(api.url, 'POST', '/api/chats/app1/slow/start', { user_id: user }, tok);
  expect(r.status).toBe(201);
  return { tok, chatId: r.body.chat_id as string };
}

const MESSAGES = ['alpha', 'bravo', 'charlie'];

/** A client that never disconnects: the reference transcript. */
async function referenceRun(): Promise<string[]> {
  const { tok, chatId } = await newChat('ref');
  const c = await TestClient.connect(wsUrl(api.wsUrl, 'slow', 'app1', chatId, 'ref', tok));
  await c.waitType('chat_meta');
  for (const text of MESSAGES) {
    const from = c.messages.length;
    c.send({ type: 'user.input.submit', text });
    await c.waitType('chat.run_complete', 20_000, from);
  }
  await c.close();
  return transcript(c.timeline());
}

test('a client that drops at random points and resumes ends with the transcript of one that never dropped', async () => {
  const reference = await referenceRun();
  expect(reference.filter((l) => l.startsWith('assistant:'))).toHaveLength(3);

  const { tok, chatId } = await newChat('flaky');
  const applied = new Map<number, Envelope>();
  let received = 0;
  let connections = 0;
  let sent = 0;
  let completes = 0;
  const deadline = Date.now() + 40_000;
  let seed = 42;
  const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);

  while (completes < MESSAGES.length && Date.now() < deadline) {
    // Alternate instances: a reconnect may land anywhere.
    const base = connections % 2 === 0 ? api.wsUrl : api2.wsUrl;
    const c = await TestClient.connect(wsUrl(base, 'slow', 'app1', chatId, 'flaky', tok));
    connections++;
    const last = applied.size ? Math.max(...applied.keys()) : 0;
    c.send({ type: 'client.resume', chat_id: chatId, lastClientIndex: last });
    await c.waitType('chat.resume_boundary');
    // The pending-action queue: (re)send the next message, idempotently by client_message_id.
    if (sent < MESSAGES.length && completes === sent) sent++;
    if (sent > completes) c.send({ type: 'user.input.submit', text: MESSAGES[sent - 1], client_message_id: `flaky-${sent}` });
    await new Promise((r) => setTimeout(r, 20 + random() * 150));
    await c.close();
    for (const e of c.timeline()) {
      received++;
      expect(applied.has(e.index!)).toBe(false); // nothing twice
      applied.set(e.index!, e);
    }
    completes = [...applied.values()].filter((e) => e.type === 'chat.run_complete').length;
  }
  // Final resume picks up whatever is left.
  const c = await TestClient.connect(wsUrl(api.wsUrl, 'slow', 'app1', chatId, 'flaky', tok));
  c.send({ type: 'client.resume', lastClientIndex: Math.max(...applied.keys()) });
  await c.waitType('chat.resume_boundary');
  await c.close();
  for (const e of c.timeline()) {
    received++;
    expect(applied.has(e.index!)).toBe(false);
    applied.set(e.index!, e);
  }
  const indexes = [...applied.keys()].sort((a, b) => a - b);
  expect(indexes).toEqual(indexes.map((_, i) => i + 1)); // nothing lost
  expect(received).toBe(applied.size); // nothing twice
  expect(connections).toBeGreaterThan(3);
  expect(transcript([...applied.values()])).toEqual(reference);
}, 60_000);

test('the socket on one instance gets the events of a worker in another process; input may arrive at either instance', async () => {
  const { tok, chatId } = await newChat('cross');
  const c = await TestClient.connect(wsUrl(api.wsUrl, 'slow', 'app1', chatId, 'cross', tok));
  await c.waitType('chat_meta');
  const r = await http(api2.url, 'POST', `/chat/app1/${chatId}/cross/input`, { message: 'via instance two', workflow_name: 'slow' }, tok);
  expect(r.status).toBe(202);
  const done = await c.waitType('chat.run_complete', 20_000);
  expect(done.data.status).toBe('completed');
  expect(transcript(c.timeline())[0]).toBe('user:user: via instance two');
  await c.close();
});

test('a worker killed during a turn: another finishes it (the cut-off reply closed, then the reply whole), nothing lost, nothing twice', async () => {
  const { tok, chatId } = await newChat('crash');
  const c = await TestClient.connect(wsUrl(api.wsUrl, 'slow', 'app1', chatId, 'crash', tok));
  await c.waitType('chat_meta');
  c.send({ type: 'user.input.submit', text: 'alpha' });
  await c.waitFor((m) => m.type === 'chat.text' && m.index === 10, 20_000);
  worker!.kill('SIGKILL');
  await new Promise((r) => worker!.once('exit', r));
  worker = await spawnWorker(env, SLOW);
  const done = await c.waitType('chat.run_complete', 30_000);
  expect(done.data.status).toBe('completed');
  const tl = c.timeline();
  const idx = tl.map((e) => e.index);
  expect(new Set(idx).size).toBe(idx.length);
  expect(idx).toEqual(idx.map((_, i) => i + 1));
  const stored = await api.s.timeline.after(chatId, 0, 10_000);
  expect(stored.map((e) => e.index)).toEqual(idx);
  // The re-run answers afresh (a real model would not repeat itself): what the first worker had
  // streamed stays, closed as it was cut off, then the whole reply.
  const reference = await referenceRunOf('alpha');
  const lines = transcript(tl);
  expect(lines).toHaveLength(reference.length + 1);
  const [user, partial, ...rest] = lines;
  expect([user, ...rest]).toEqual(reference);
  const reply = reference[1].replace('assistant:narrator: ', '');
  expect(partial).toMatch(/^assistant:narrator: ./);
  expect(reply.startsWith(partial.replace('assistant:narrator: ', ''))).toBe(true);
  await c.close();
}, 60_000);

async function referenceRunOf(text: string) {
  const { tok, chatId } = await newChat('ref2');
  const c = await TestClient.connect(wsUrl(api.wsUrl, 'slow', 'app1', chatId, 'ref2', tok));
  await c.waitType('chat_meta');
  c.send({ type: 'user.input.submit', text });
  await c.waitType('chat.run_complete', 20_000);
  await c.close();
  return transcript(c.timeline());
}

test('the stop control message aborts the running turn within a second', async () => {
  const { tok, chatId } = await newChat('stopper');
  const c = await TestClient.connect(wsUrl(api.wsUrl, 'slow', 'app1', chatId, 'stopper', tok));
  await c.waitType('chat_meta');
  c.send({ type: 'user.input.submit', text: 'a long one' });
  await c.waitFor((m) => m.type === 'chat.text' && m.index === 5, 20_000);
  const t0 = Date.now();
  await api2.s.feed.publishControl({ action: 'stop', session_id: chatId, app_id: 'app1', reason: 'operator stop' });
  const done = await c.waitType('chat.run_complete', 5_000);
  expect(Date.now() - t0).toBeLessThan(1_000);
  expect(done.data.status).toBe('stopped');
  // The message in flight is closed with what was said so far.
  const closing = c.timeline().filter((e) => e.type === 'chat.text' && e.data.role === 'assistant' && e.data.done);
  expect(closing).toHaveLength(1);
  expect(closing[0].data.content.length).toBeGreaterThan(0);
  expect(closing[0].data.content.length).toBeLessThan(200);
  expect((await api.s.chats.get(chatId))!.status).toBe('stopped');
  const meta = await http(api.url, 'GET', `/api/chats/meta/app1/slow/${chatId}`, undefined, tok);
  expect(meta.body.status).toBe('stopped');

  // A new message resumes the chat.
  const from = c.messages.length;
  c.send({ type: 'user.input.submit', text: 'again' });
  expect((await c.waitType('chat.run_complete', 20_000, from)).data.status).toBe('completed');
  await c.close();
}, 30_000);

test('stopping an idle chat marks it stopped and says so', async () => {
  const { tok, chatId } = await newChat('idle');
  const c = await TestClient.connect(wsUrl(api.wsUrl, 'slow', 'app1', chatId, 'idle', tok));
  await c.waitType('chat_meta');
  const r = await http(api.url, 'POST', `/api/chats/app1/${chatId}/stop`, undefined, tok);
  expect(r.status).toBe(202);
  const done = await c.waitType('chat.run_complete', 5_000);
  expect(done.data.status).toBe('stopped');
  expect(c.timeline().filter((e) => e.type === 'chat.run_complete')).toHaveLength(1); // one instance answered
  expect((await api.s.chats.get(chatId))!.status).toBe('stopped');
  await c.close();
});

/**
 * The timeline's tail (EVENT_TAIL=on) when a writer dies or PostgreSQL goes away:
 * - a worker is `kill -9`ed while chats stream, with what it appended still in its write-behind
 *   (not yet in PostgreSQL). Its turns run again on the other worker; its events are in the tails,
 *   and the other worker's sweeper writes them to PostgreSQL;
 * - PostgreSQL is out of a worker's reach for 10 s mid-reply: the reply keeps streaming from the
 *   tail, the turn's end waits for PostgreSQL (its job put back), and the write-behind catches up.
 * Each client ends with the stored timeline once, and PostgreSQL ends with exactly what the
 * clients hold, index for index.
 */
import type { ChildProcess } from 'node:child_process';
import { resolve } from 'node:path';
import { TestSocket, until } from '@tessera/kit/testing';
import { spawnWorker, startRuntime, testEnv, token, transcript, wsUrl, type Env, type RuntimeInstance } from './harness';
import { pgRelay } from './pg-relay';
import { followChat, newSlowChat, problemsOf, referenceTranscript } from './streaming-chats';

const CHATS = 40;
const TAIL = { EVENT_TAIL: 'on', WORKFLOWS_DIR: resolve(__dirname, 'fixtures/workflows') };

let env: Env;
let api: RuntimeInstance;
const workers: ChildProcess[] = [];

beforeAll(async () => {
  env = await testEnv('tailcrash');
  api = await startRuntime(env, { worker: false, extra: TAIL });
  workers.push(await spawnWorker(env, TAIL), await spawnWorker(env, TAIL));
}, 60_000);
/** A chat's timeline as PostgreSQL alone holds it (not the tail): `index:type`, in order. */
const inPostgres = async (chatId: string) =>
  (await api.s.db.pool.query<{ idx: number; type: string }>('SELECT idx, type FROM chat_events WHERE chat_id = $1 ORDER BY idx', [chatId])).rows.map((r) => `${r.idx}:${r.type}`).join();

afterAll(async () => {
  for (const w of workers) w.kill('SIGKILL');
  await api?.close();
  await env?.dropSchema();
}, 60_000);

test(`a worker killed (kill -9) with events in its write-behind while ${CHATS} chats stream: the sweeper writes them from the tails; clients and PostgreSQL end with the same timelines`, async () => {
  const reference = await referenceTranscript(api);
  const chats = await Promise.all(Array.from({ length: CHATS }, (_, i) => newSlowChat(api, `tail-${i}`)));
  let streaming = 0;
  let killed = false;
  const kill = () => {
    if (killed || ++streaming < CHATS / 2) return;
    killed = true;
    workers[0].kill('SIGKILL');
  };
  const results = await Promise.all(chats.map((c) => followChat(api, c, kill)));
  expect(killed).toBe(true);
  const { problems } = await problemsOf(api, chats, results, reference);
  expect(problems).toEqual([]);

  // PostgreSQL alone (not the tails): every event each client holds, at its index, within a few sweeps.
  const held = results.map(({ applied }) => [...applied.values()].sort((a, b) => a.index! - b.index!).map((e) => `${e.index}:${e.type}`).join());
  await until(async () => (await Promise.all(chats.map((c) => inPostgres(c.chatId)))).every((rows, i) => rows === held[i]), 20_000, 'PostgreSQL to hold what the clients hold');
  // And the chats leave the flusher's marks: nothing of theirs waits anymore.
  const ours = new Set(chats.map((c) => c.chatId));
  await until(async () => !(await api.s.timeline.tail!.dirty(1_000)).some((d) => ours.has(d.chatId)), 10_000, 'the marks to be taken off');
}, 180_000);

test('PostgreSQL away from the worker for 10 s mid-reply: the reply keeps streaming from the tail, the turn ends once PostgreSQL is back, and PostgreSQL catches up', async () => {
  for (const w of workers.splice(0)) w.kill('SIGKILL');
  const relay = await pgRelay(new URL(env.DATABASE_URL));
  workers.push(await spawnWorker(env, { ...TAIL, DATABASE_URL: relay.url }));
  try {
    const { chat_id: chatId } = (await fetch(`${api.url}/api/chats/app1/long/start`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${await token('outage')}` }, body: '{"user_id":"outage"}' }).then((r) => r.json())) as { chat_id: string };
    const c = await TestSocket.connect(wsUrl(api.wsUrl, 'long', 'app1', chatId, 'outage', await token('outage')));
    await c.waitType('chat_meta');
    c.send({ type: 'user.input.submit', text: 'alpha', client_message_id: 'm-1' });
    await c.waitFor((m) => m.type === 'chat.text' && m.data.role === 'assistant', 20_000);
    await relay.down();
    const downAt = Date.now();
    await new Promise((r) => setTimeout(r, 10_000));
    // Events went on arriving while PostgreSQL was away: the reply streamed from the tail.
    const during = c.timeline().filter((e) => Date.parse(e.timestamp!) > downAt + 500);
    expect(during.filter((e) => e.type === 'chat.text').length).toBeGreaterThan(5);
    await relay.up();

    await c.waitType('chat.run_complete', 60_000);
    const lines = transcript(c.timeline());
    expect(lines[0]).toBe('user:user: alpha');
    expect(lines[lines.length - 1]).toBe('chat.run_complete');
    const held = c.timeline().map((e) => `${e.index}:${e.type}`).join();
    expect(new Set(c.timeline().map((e) => e.index)).size).toBe(c.timeline().length);
    await until(async () => (await inPostgres(chatId)) === held, 20_000, 'PostgreSQL to catch up with what the client holds');
    await c.close();
  } finally {
    await relay.down().catch(() => undefined);
  }
}, 120_000);

/**
 * The timeline's tail (EVENT_TAIL=on) when a writer dies or PostgreSQL goes away:
 * - a worker is `kill -9`ed while chats stream, with what it appended still in its write-behind
 *   (not yet in PostgreSQL). Its turns run again on the other worker; its events are in the tails,
 *   and the other worker's sweeper writes them to PostgreSQL;
 * - PostgreSQL is out of reach of a worker and an API instance for 30 s while chats stream: the
 *   replies keep streaming from the tails, what needs PostgreSQL (a new message, a new chat) is
 *   refused clearly, the turns' ends wait for PostgreSQL (their jobs put back), and the
 *   write-behind catches up.
 * Each client ends with the stored timeline once, and PostgreSQL ends with exactly what the
 * clients hold, index for index.
 */
import type { ChildProcess } from 'node:child_process';
import { resolve } from 'node:path';
import { tcpRelay, TestSocket, until } from '@tessera/kit/testing';
import { http, spawnWorker, startRuntime, testEnv, token, transcript, wsUrl, type Env, type RuntimeInstance } from './harness';
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

const OUTAGE_CHATS = 8;
const OUTAGE_MS = 30_000;

test(`PostgreSQL away for ${OUTAGE_MS / 1000} s from a worker and an API instance while ${OUTAGE_CHATS} chats stream: replies keep streaming from the tails, a new message is refused as UNAVAILABLE, a new chat gets a 503, and once PostgreSQL is back every turn ends and PostgreSQL holds what the clients hold`, async () => {
  for (const w of workers.splice(0)) w.kill('SIGKILL');
  const relay = await tcpRelay(new URL(env.DATABASE_URL));
  workers.push(await spawnWorker(env, { ...TAIL, DATABASE_URL: relay.url }));
  // The clients' API instance reaches PostgreSQL through the relay too; chats are made on `api`.
  const away = await startRuntime({ ...env, DATABASE_URL: relay.url }, { worker: false, extra: TAIL });
  const sockets: TestSocket[] = [];
  try {
    const tok = await token('outage');
    const chatIds = await Promise.all(
      Array.from({ length: OUTAGE_CHATS }, async () => ((await http(api.url, 'POST', '/api/chats/app1/long/start', { user_id: 'outage' }, tok)).body as { chat_id: string }).chat_id),
    );
    for (const chatId of chatIds) {
      const c = await TestSocket.connect(wsUrl(away.wsUrl, 'long', 'app1', chatId, 'outage', tok));
      await c.waitType('chat_meta');
      c.send({ type: 'user.input.submit', text: 'alpha', client_message_id: 'm-1' });
      sockets.push(c);
    }
    await Promise.all(sockets.map((c) => c.waitFor((m) => m.type === 'chat.text' && m.data.role === 'assistant', 20_000)));
    await relay.down();
    const downAt = Date.now();

    // What needs PostgreSQL is refused in the protocol's own words, and nothing is half-written.
    const before = sockets[0].messages.length;
    sockets[0].send({ type: 'user.input.submit', text: 'beta', client_message_id: 'm-2' });
    const refused = await sockets[0].waitType('chat.error', 10_000, before);
    expect(refused.data).toEqual({ error_code: 'UNAVAILABLE', message: 'storage unavailable; try again' });
    const start = await http(away.url, 'POST', '/api/chats/app1/long/start', { user_id: 'outage' }, tok);
    expect(start.status).toBe(503);

    await new Promise((r) => setTimeout(r, OUTAGE_MS - (Date.now() - downAt)));
    // Every reply went on streaming while PostgreSQL was away: from the tail, through Redis.
    for (const c of sockets) expect(c.timeline().filter((e) => e.type === 'chat.text' && Date.parse(e.timestamp!) > downAt + 500).length).toBeGreaterThan(5);
    await relay.up();

    // The refused message, sent again as a client does, is taken and answered.
    sockets[0].send({ type: 'user.input.submit', text: 'beta', client_message_id: 'm-2' });
    await Promise.all(sockets.map((c) => c.waitType('chat.run_complete', 60_000)));
    await sockets[0].waitFor((m) => m.type === 'chat.run_complete' && m.data.status === 'completed' && m.index! > sockets[0].timeline().find((e) => e.type === 'chat.run_complete')!.index!, 60_000);
    for (const [i, c] of sockets.entries()) {
      const lines = transcript(c.timeline());
      expect(lines[0]).toBe('user:user: alpha');
      expect(lines[lines.length - 1]).toBe('chat.run_complete');
      if (i === 0) expect(lines).toContain('user:user: beta');
      expect(new Set(c.timeline().map((e) => e.index)).size).toBe(c.timeline().length);
    }
    // PostgreSQL alone, index for index, holds what each client holds.
    await until(
      async () => (await Promise.all(chatIds.map((id) => inPostgres(id)))).every((rows, i) => rows === sockets[i].timeline().map((e) => `${e.index}:${e.type}`).join()),
      20_000,
      'PostgreSQL to catch up with what the clients hold',
    );
  } finally {
    await Promise.all(sockets.map((c) => c.close()));
    await relay.down().catch(() => undefined);
    await away.close();
  }
}, 150_000);

/**
 * Issue 13's test of the client core: a chat survives 100 random socket drops and a crash of the
 * runtime (its process killed mid-chat and started again on the same port, database and queue)
 * with a transcript identical to an undisturbed run. Real runtime, Redis and PostgreSQL.
 */
import { ChatConnection, TesseraApi, type ChatIds, type TimelineEvent } from '../src';
import { completed, droppableSockets, hostFor, memoryStorage, record, replayAll, transcript, waitFor } from './helpers';
import { startRuntimeProcess, type RuntimeProcess } from './runtime-process';

jest.setTimeout(150_000);
let rt: RuntimeProcess;
beforeAll(async () => {
  rt = await startRuntimeProcess();
});
afterAll(async () => {
  await rt?.stop();
});

const FAST = { backoff: { initialMs: 10, maxMs: 250 } };
const DROPS = 100;
const TURNS = 12;
/** The turn whose message is sent while the runtime is down. */
const CRASH_TURN = 6;

async function newChat(user: string): Promise<ChatIds> {
  const api = new TesseraApi(hostFor(rt, user, memoryStorage()));
  const chat = await api.startChat({ appId: 'app1', userId: user, workflowName: 'assistant', forceNew: true });
  return { appId: 'app1', userId: user, chatId: chat.chat_id, workflowName: 'assistant' };
}

test(`a chat survives ${DROPS} random socket drops and a runtime crash with the transcript of an undisturbed run`, async () => {
  const t0 = Date.now();
  const sockets = droppableSockets();
  const ids = await newChat('survivor');
  const r = record(new ChatConnection(hostFor(rt, ids.userId, memoryStorage(), sockets.ctor), ids, FAST));
  r.conn.connect();

  // Drop the client's socket at random moments while the conversation runs, and now and then make
  // the runtime replay events the client already has (every event of such a replay must be ignored).
  let drops = 0;
  let rewinds = 0;
  let dropping = true;
  const dropper = (async () => {
    while (dropping) {
      await new Promise((res) => setTimeout(res, 5 + Math.random() * 30));
      const ws = sockets.current();
      if (!dropping || !ws || ws.readyState !== ws.OPEN) continue;
      if (Math.random() < 0.2) {
        ws.send(JSON.stringify({ type: 'client.resume', chat_id: ids.chatId, lastClientIndex: Math.floor(Math.random() * r.conn.lastAppliedIndex) }));
        rewinds++;
      } else {
        ws.terminate();
        drops++;
      }
    }
  })();

  let turns = 0;
  let crashedAt = -1;
  while (turns < TURNS || drops < DROPS) {
    turns++;
    if (turns === CRASH_TURN) {
      // The process dies between two turns, the client live on it; the next message is sent while
      // it is down. (A turn cut mid-stream is re-run by design: the runtime closes the cut message
      // and answers anew, which no undisturbed run says; the runtime's own tests cover that.) The
      // pause lets the last turn's bookkeeping (one UPDATE after its run_complete) land first.
      await new Promise((res) => setTimeout(res, 1_000));
      crashedAt = r.conn.lastAppliedIndex;
      await rt.restart('SIGKILL', async () => {
        r.conn.send(`message number ${turns}`);
        await waitFor(() => r.conn.status !== 'live', 'the client to notice');
      });
    } else {
      r.conn.send(`message number ${turns}`);
    }
    await waitFor(() => completed(r.timeline) === turns, `turn ${turns}`, 60_000);
  }
  dropping = false;
  await dropper;
  await waitFor(() => r.conn.pendingActions.length === 0 && r.conn.status === 'live', 'queue drained');
  await waitFor(() => !r.conn.processing, 'processing cleared');
  r.conn.close();
  const disturbedMs = Date.now() - t0;

  console.log(`drops ${drops}, rewinds ${rewinds}, crash after index ${crashedAt}, turns ${turns}, sockets ${sockets.all.length}, events ${r.timeline.length}, ${disturbedMs} ms`);
  expect(drops).toBeGreaterThanOrEqual(DROPS);
  expect(sockets.all.length).toBeGreaterThan(DROPS); // it really reconnected each time
  // Applied once each, in order, from 1 with no gap, and exactly what the runtime holds.
  expect(r.timeline.map((e: TimelineEvent) => e.index)).toEqual(r.timeline.map((_, i) => i + 1));
  expect(r.timeline).toEqual(await replayAll(rt, ids));

  // The same conversation without drops or crash.
  const calm = await newChat('calm-survivor');
  const c = record(new ChatConnection(hostFor(rt, calm.userId, memoryStorage()), calm, FAST));
  c.conn.connect();
  for (let i = 1; i <= turns; i++) {
    c.conn.send(`message number ${i}`);
    await waitFor(() => completed(c.timeline) === i, `calm turn ${i}`);
  }
  c.conn.close();
  const t = transcript(r.timeline);
  expect(t).toEqual(transcript(c.timeline));
  expect(t.filter((l) => l.startsWith('user:'))).toEqual(Array.from({ length: turns }, (_, i) => `user:user: message number ${i + 1}`));
  expect(t.filter((l) => l === 'chat.run_complete')).toHaveLength(turns);
});

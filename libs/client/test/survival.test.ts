/**
 * Issue 13's test of the client core: a chat survives 100 random socket drops and two crashes of
 * the runtime's API process, one between turns and one while a reply streams, each followed by a
 * message sent while it is down, with a transcript identical to an undisturbed run. The runtime
 * runs as in production: an API process and a separate turn worker, which goes on writing the
 * turn the API died in. Real runtime, Redis and PostgreSQL.
 */
import { ChatConnection, type TimelineEvent } from '../src';
import { completed, droppableSockets, hostFor, memoryStorage, newChat, record, replayAll, transcript, waitFor } from './helpers';
import { runtimeForThisFile, type RuntimeProcess } from './runtime-process';

jest.setTimeout(150_000);
let rt: RuntimeProcess;
runtimeForThisFile((started) => (rt = started));

const FAST = { backoff: { initialMs: 10, maxMs: 250 } };
const DROPS = 100;
const TURNS = 12;
/** The turn whose message is sent while the API is down after a crash between turns. */
const CRASH_TURN = 4;
/** The turn during whose reply the API is killed; the next message is sent while it is down. */
const CUT_TURN = 8;
/** A word every 20 ms (libs/client/test/workflows): a reply streams for about 0.9 s. */
const WORKFLOW = 'storyteller';

test(`a chat survives ${DROPS} random socket drops and API crashes between turns and mid-reply with the transcript of an undisturbed run`, async () => {
  const t0 = Date.now();
  const sockets = droppableSockets();
  const ids = await newChat(rt, 'survivor', WORKFLOW);
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
  /** The API's mid-reply crash: the message it cut, the client's last index then, when it died and came back. */
  let cut: { messageId: string; index: number; killedAt: number; backAt: number } | null = null;
  while (turns < TURNS || drops < DROPS) {
    turns++;
    if (turns === CRASH_TURN) {
      // The API dies between two turns, the client live on it; the next message goes out at once,
      // into a socket that is dying.
      crashedAt = r.conn.lastAppliedIndex;
      await rt.restart('SIGKILL', async () => {
        r.conn.send(`message number ${turns}`);
        await waitFor(() => r.conn.status !== 'live', 'the client to notice');
      });
    } else if (turns === CUT_TURN) {
      // The API dies at the first words of the reply the client sees; the worker goes on writing
      // the reply meanwhile. Once the client knows it is cut off, the next message is sent.
      let restarted: Promise<void> | null = null;
      const off = r.conn.on((e) => {
        if (restarted || e.kind !== 'timeline' || e.event.type !== 'chat.text' || e.event.data.role !== 'assistant' || e.event.data.done) return;
        const c = { messageId: e.event.data.message_id, index: e.event.index, killedAt: Date.now(), backAt: 0 };
        cut = c;
        restarted = rt.restart('SIGKILL', async () => {
          await waitFor(() => r.conn.status !== 'live', 'the client to notice');
          turns++;
          r.conn.send(`message number ${turns}`);
        });
        void restarted.then(() => (c.backAt = Date.now()));
      });
      r.conn.send(`message number ${turns}`);
      await waitFor(() => restarted !== null, `the reply of turn ${turns} to start`, 60_000);
      off();
      await restarted;
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

  // The reply really was cut: the worker wrote its end after the API had died.
  const c = cut as { messageId: string; index: number; killedAt: number; backAt: number } | null;
  expect(c).not.toBeNull();
  const end = r.timeline.find((e) => e.type === 'chat.text' && e.data.message_id === c!.messageId && e.data.done);
  expect(end).toBeDefined();
  const endMs = Date.parse(end!.timestamp);
  console.log(
    `drops ${drops}, rewinds ${rewinds}, crash after index ${crashedAt}, cut at index ${c!.index} (reply ended ${endMs - c!.killedAt} ms after the kill, API back after ${c!.backAt - c!.killedAt} ms), ` +
      `turns ${turns}, sockets ${sockets.all.length}, events ${r.timeline.length}, ${disturbedMs} ms`,
  );
  expect(endMs).toBeGreaterThan(c!.killedAt);
  expect(end!.index).toBeGreaterThan(c!.index);

  expect(drops).toBeGreaterThanOrEqual(DROPS);
  expect(sockets.all.length).toBeGreaterThan(DROPS); // it really reconnected each time
  // Applied once each, in order, from 1 with no gap, and exactly what the runtime holds.
  expect(r.timeline.map((e: TimelineEvent) => e.index)).toEqual(r.timeline.map((_, i) => i + 1));
  expect(r.timeline).toEqual(await replayAll(rt, ids));

  // The same conversation without drops or crashes.
  const calm = await newChat(rt, 'calm-survivor', WORKFLOW);
  const u = record(new ChatConnection(hostFor(rt, calm.userId, memoryStorage()), calm, FAST));
  u.conn.connect();
  for (let i = 1; i <= turns; i++) {
    u.conn.send(`message number ${i}`);
    await waitFor(() => completed(u.timeline) === i, `calm turn ${i}`);
  }
  u.conn.close();
  const t = transcript(r.timeline);
  expect(t).toEqual(transcript(u.timeline));
  expect(t.filter((l) => l.startsWith('user:'))).toEqual(Array.from({ length: turns }, (_, i) => `user:user: message number ${i + 1}`));
  expect(t.filter((l) => l.startsWith('assistant:'))).toHaveLength(turns);
  expect(t.filter((l) => l === 'chat.run_complete')).toHaveLength(turns);
});

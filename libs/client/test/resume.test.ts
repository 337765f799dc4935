/**
 * Issue 19 item 1: how many `client.resume` frames a chat sends, against the real runtime (API and
 * turn worker as processes, real Redis and PostgreSQL). A new chat starts the client at index -1
 * and the runtime's boundary reports 0: that must not read as "short, ask again". Every frame the
 * client sends is recorded on its socket; the runtime answers a burst of more than 40 messages
 * with RATE_LIMITED.
 */
import { ChatConnection, type ChatIds, type TimelineEvent } from '../src';
import { completed, droppableSockets, hostFor, memoryStorage, newChat, record, replayAll, waitFor } from './helpers';
import { runtimeForThisFile, type RuntimeProcess } from './runtime-process';

jest.setTimeout(120_000);
let rt: RuntimeProcess;
runtimeForThisFile((started) => (rt = started));

const FAST = { backoff: { initialMs: 10, maxMs: 200 } };
/** Every connection a test opened, closed after it even when it fails midway. */
const opened: ChatConnection[] = [];
afterEach(() => opened.splice(0).forEach((c) => c.close()));
function connection(ids: ChatIds, WS: ReturnType<typeof droppableSockets>['ctor']) {
  const r = record(new ChatConnection(hostFor(rt, ids.userId, memoryStorage(), WS), ids, FAST));
  opened.push(r.conn);
  return r;
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const errors = (r: ReturnType<typeof record>) => r.all.flatMap((e) => (e.kind === 'control' && e.event.type === 'chat.error' ? [e.event.data.error_code] : []));
const boundaries = (r: ReturnType<typeof record>) => r.all.filter((e) => e.kind === 'control' && e.event.type === 'chat.resume_boundary').length;
const expectContiguous = (tl: TimelineEvent[]) => expect(tl.map((e) => e.index)).toEqual(tl.map((_, i) => i + 1));

test.each([
  ['an empty chat', 'assistant'],
  ['a chat whose agent speaks first', 'greeter'],
])('%s: a fresh client sends exactly one client.resume, and no RATE_LIMITED follows', async (_, workflow) => {
  const sockets = droppableSockets();
  const ids = await newChat(rt, `fresh-${workflow}`, workflow);
  const r = connection(ids, sockets.ctor);
  expect(r.conn.lastAppliedIndex).toBe(-1);
  r.conn.connect();
  await waitFor(() => r.conn.status === 'live', 'live');

  expect(sockets.resumes().map((f) => f.frame)).toEqual([{ type: 'client.resume', chat_id: ids.chatId, lastClientIndex: -1 }]);
  expect(boundaries(r)).toBe(1);
  expect(errors(r)).toEqual([]);
  expect(sockets.all).toHaveLength(1);

  // The chat still works: a message gets its turn, the timeline is the runtime's. The turn's end,
  // on the same socket, comes after whatever the runtime answered the resume with: a resume loop
  // or a RATE_LIMITED would show by then.
  const greeting = workflow === 'greeter' ? 1 : 0;
  await waitFor(() => completed(r.timeline) === greeting, 'the greeting');
  r.conn.send('hello');
  await waitFor(() => completed(r.timeline) === greeting + 1 && r.conn.pendingActions.length === 0, 'the turn');
  expect(r.conn.status).toBe('live'); // no new socket on its way
  r.conn.close();
  expect(sockets.resumes()).toHaveLength(1);
  expect(sockets.all).toHaveLength(1);
  expect(boundaries(r)).toBe(1);
  expect(errors(r)).toEqual([]);
  expectContiguous(r.timeline);
  expect(r.timeline).toEqual(await replayAll(rt, ids));
});

test('a drop mid-reply: one client.resume per socket, from the last applied index, and the timeline whole', async () => {
  const sockets = droppableSockets();
  const ids = await newChat(rt, 'dropped', 'storyteller');
  const r = connection(ids, sockets.ctor);
  let cut = false;
  let droppedAt = -1;
  r.conn.on((e) => {
    if (e.kind === 'socket_closed' && droppedAt < 0) droppedAt = r.conn.lastAppliedIndex;
    if (cut || e.kind !== 'timeline' || e.event.type !== 'chat.text' || e.event.data.role !== 'assistant') return;
    cut = true;
    sockets.current()!.terminate();
  });
  r.conn.connect();
  r.conn.send('tell me a story');
  await waitFor(() => completed(r.timeline) === 1 && r.conn.status === 'live', 'the turn after the drop');
  // Nothing to wait for: a socket resumes once, so another resume needs a new socket, which needs
  // a retry (the status would not be live) or an event still to come (none: run_complete ends the
  // turn, and the timeline below is the runtime's whole one).
  r.conn.close();

  expect(droppedAt).toBeGreaterThan(0);
  expect(sockets.all).toHaveLength(2);
  expect(sockets.resumes().map((f) => [f.socket, f.frame.lastClientIndex])).toEqual([
    [0, -1],
    [1, droppedAt],
  ]);
  expect(errors(r)).toEqual([]);
  expectContiguous(r.timeline);
  expect(r.timeline).toEqual(await replayAll(rt, ids));
});

test('a resume that reaches the runtime after it went live (a slow network) still ends whole, with a bounded number of resumes', async () => {
  const sockets = droppableSockets();
  const ids = await newChat(rt, 'slow-resume', 'storyteller');
  const r = connection(ids, sockets.ctor);
  r.conn.connect();
  await waitFor(() => r.conn.status === 'live', 'live');
  // A long message makes a long reply (the story quotes it, a word every 20 ms: about 4 s).
  r.conn.send(Array.from({ length: 150 }, (_, i) => `word${i}`).join(' '));
  await waitFor(() => r.timeline.some((e) => e.type === 'chat.text' && e.data.role === 'assistant'), 'the reply to begin');

  // Offline for a moment while the reply goes on being written; then the next socket's resume is
  // held back past the runtime's 1 s grace, so the runtime sends live events first (beyond what the
  // client has: a gap it must not apply), then the replay, then a boundary short of what it sent.
  r.conn.setOnline(false);
  const applied = r.conn.lastAppliedIndex;
  await sleep(300);
  let held = 0;
  sockets.holdBack((f) => (f.type === 'client.resume' && held++ === 0 ? 2000 : 0));
  r.conn.setOnline(true);
  await waitFor(() => completed(r.timeline) === 1 && r.conn.status === 'live', 'the reply to end', 30_000);
  // As above: live and the timeline whole, so no further socket or resume can follow.
  r.conn.close();

  expect(held).toBeGreaterThan(0);
  const resumes = sockets.resumes();
  console.log(`slow resume: ${resumes.length} resumes on ${sockets.all.length} sockets, applied ${applied} before going offline, ${r.timeline.length} events in all`);
  // One resume per socket: the first, the held one (its boundary short of what the socket had
  // sent live before it), and the new socket's, which completes the timeline.
  expect(resumes.map((f) => f.socket)).toEqual([0, 1, 2]);
  expect(sockets.all).toHaveLength(3);
  expect(errors(r)).toEqual([]);
  expectContiguous(r.timeline);
  expect(r.timeline).toEqual(await replayAll(rt, ids));
});

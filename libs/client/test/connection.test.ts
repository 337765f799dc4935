/**
 * The client core against the real runtime (child process, real Redis and PostgreSQL): messages
 * sent offline, a new client over the same storage, UI tools, socket commands. The 100 drops and
 * the runtime crash are in survival.test.ts.
 */
import { ChatConnection, TesseraApi, UiToolRegistry, fallbackText, type TimelineEvent } from '../src';
import { completed, droppableSockets, hostFor, memoryStorage, newChat, record, replayAll, transcript, waitFor } from './helpers';
import { runtimeForThisFile, type RuntimeProcess } from './runtime-process';

jest.setTimeout(120_000);
let rt: RuntimeProcess;
runtimeForThisFile((started) => (rt = started));

const FAST = { backoff: { initialMs: 10, maxMs: 200 } };

/** Indices applied by a client: each once, in order, from 1 with no gap. */
function expectContiguous(tl: TimelineEvent[], from = 1) {
  expect(tl.map((e) => e.index)).toEqual(tl.map((_, i) => from + i));
}

test('messages sent offline arrive once, in order, even when the connection is cut right after one is sent', async () => {
  const sockets = droppableSockets();
  const ids = await newChat(rt, 'offline-user');
  const r = record(new ChatConnection(hostFor(rt, ids.userId, memoryStorage(), sockets.ctor), ids, FAST));
  r.conn.connect();
  await waitFor(() => r.conn.status === 'live', 'live');

  r.conn.setOnline(false);
  expect(r.conn.status).toBe('offline');
  expect(r.conn.processing).toBe(false);
  const sent = ['first offline', 'second offline', 'third offline'].map((t) => r.conn.send(t));
  expect(r.conn.pendingActions.map((a) => a.client_message_id)).toEqual(sent);
  await new Promise((res) => setTimeout(res, 300));
  expect(sockets.all.length).toBe(1); // offline: no reconnect attempts
  expect(r.timeline.filter((e) => e.type === 'chat.text')).toHaveLength(0);

  // Back online; the first flush is cut right after the second message leaves (its ack is lost),
  // so the queue sends it again on the next socket: the runtime must keep one.
  let cut = false;
  sockets.cutAfter((f) => !cut && f.type === 'user.input.submit' && f.text === 'second offline' && (cut = true));
  r.conn.setOnline(true);
  await waitFor(() => completed(r.timeline) === 3, 'three turns');
  await waitFor(() => r.conn.pendingActions.length === 0, 'queue drained');
  expect(cut).toBe(true);
  r.conn.close();

  const users = transcript(await replayAll(rt, ids)).filter((l) => l.startsWith('user:'));
  expect(users).toEqual(['user:user: first offline', 'user:user: second offline', 'user:user: third offline']);
  expectContiguous(r.timeline);
});

test('a new client over the same storage resumes where the first left off: no event twice, none missed', async () => {
  const storage = memoryStorage();
  const ids = await newChat(rt, 'restart-user');
  const first = record(new ChatConnection(hostFor(rt, ids.userId, storage), ids, FAST));
  // Kill "the app" in the middle of the turn's stream (at its first assistant text), with a message still queued offline.
  first.conn.on((e) => {
    if (e.kind !== 'timeline' || e.event.type !== 'chat.text' || e.event.data.role !== 'assistant' || first.conn.status === 'closed') return;
    first.conn.setOnline(false);
    first.conn.send('queued across the restart');
    first.conn.close();
  });
  first.conn.connect();
  first.conn.send('before the restart');
  await waitFor(() => first.conn.status === 'closed', 'the first client gone');
  expect(first.timeline.some((e) => e.type === 'chat.run_complete')).toBe(false);
  expect(first.conn.processing).toBe(false); // cleared on close
  const seen = first.timeline.length;
  console.log(`first client saw ${seen} events`);
  expect(seen).toBeGreaterThan(0);

  const second = record(new ChatConnection(hostFor(rt, ids.userId, storage), ids, FAST));
  expect(second.conn.lastAppliedIndex).toBe(first.timeline.at(-1)!.index);
  expect(second.conn.pendingActions.map((a) => a.kind === 'message' && a.text)).toEqual(['queued across the restart']);
  second.conn.connect();
  // It asked only for what it had not applied (the boundary counts the replay).
  await waitFor(() => second.all.some((e) => e.kind === 'control' && e.event.type === 'chat.resume_boundary'), 'boundary');
  const boundary = second.all.find((e) => e.kind === 'control' && e.event.type === 'chat.resume_boundary');
  if (boundary?.kind !== 'control' || boundary.event.type !== 'chat.resume_boundary') throw new Error('unreachable');
  expect(boundary.event.data.replayed_messages).toBe(boundary.event.data.last_message_index - first.timeline.at(-1)!.index);
  await waitFor(() => completed([...first.timeline, ...second.timeline]) === 2, 'both turns');
  await waitFor(() => second.conn.pendingActions.length === 0, 'queue drained');
  second.conn.close();

  expectContiguous(second.timeline, first.timeline.at(-1)!.index + 1);
  const both = [...first.timeline, ...second.timeline];
  expect(both).toEqual(await replayAll(rt, ids));
  expect(transcript(both).filter((l) => l.startsWith('user:'))).toEqual(['user:user: before the restart', 'user:user: queued across the restart']);
});

test('UI tools: a composer tool takes the next message as its answer; an unknown component falls back', async () => {
  const ids = await newChat(rt, 'tool-user', 'ask_user');
  const r = record(new ChatConnection(hostFor(rt, ids.userId, memoryStorage()), ids, FAST));
  const registry = new UiToolRegistry<string>((call) => `fallback: ${fallbackText(call)}`).register('Known', () => 'known');
  r.conn.connect();
  r.conn.send('I need help');
  expect(r.conn.processing).toBe(true);
  await waitFor(() => r.conn.composerToolCall !== null && !r.conn.processing, 'the tool call');
  const call = r.timeline.find((e) => e.type === 'chat.tool_call')!;
  if (call.type !== 'chat.tool_call') throw new Error('unreachable');
  expect(UiToolRegistry.routesComposer(call.data)).toBe(true);
  expect(registry.render(call.data, () => undefined)).toBe('fallback: What name should I call you? (this app cannot show UserInputRequest; answer in the message box)');
  expect(registry.render({ ...call.data, component: 'Known' }, () => undefined)).toBe('known');

  r.conn.send('Ada'); // the composer answers the tool instead of starting a new message
  await waitFor(() => completed(r.timeline) === 2, 'the answered turn');
  r.conn.close();
  expect(r.conn.composerToolCall).toBeNull();
  const t = transcript(r.timeline);
  expect(t).toContain('chat.tool_call_complete');
  expect(t.at(-2)).toMatch(/^assistant:concierge: Nice to meet you, Ada!/);
  expect(t.filter((l) => l.startsWith('user:'))).toEqual(['user:user: I need help']);
});

test('socket commands: switch workflow, general mode, start chats; a refusal and a command while offline are errors', async () => {
  const ids = await newChat(rt, 'command-user');
  const r = record(new ChatConnection(hostFor(rt, ids.userId, memoryStorage()), ids, FAST));
  await expect(r.conn.enterGeneralMode()).rejects.toMatchObject({ name: 'CommandFailed', code: 'NOT_CONNECTED' });
  r.conn.connect();
  await waitFor(() => r.conn.status === 'live', 'live');

  expect(await r.conn.switchWorkflow('ask_user')).toEqual({ mode: 'workflow', workflow_name: 'ask_user' });
  r.conn.send('I need help'); // now the ask_user workflow answers: with its UI tool
  await waitFor(() => r.conn.composerToolCall !== null && !r.conn.processing, 'the tool call');

  const started = await r.conn.startWorkflow('greeter');
  expect(started.workflowName).toBe('greeter');
  expect(started.chatId).not.toBe(ids.chatId);
  const [a, b] = await r.conn.startWorkflowBatch(['assistant', 'ask_user']);
  expect([a.workflowName, b.workflowName]).toEqual(['assistant', 'ask_user']);
  const general = await r.conn.startGeneralChat();
  expect(general.workflowName).toBe('assistant'); // the entry point
  const sessions = await new TesseraApi(hostFor(rt, ids.userId, memoryStorage())).sessions('app1', ids.userId);
  expect(sessions.map((s) => s.chat_id).sort()).toEqual([ids.chatId, started.chatId, a.chatId, b.chatId, general.chatId].sort());

  // Refused: the promise says why, and the next command still gets its own answer.
  await expect(r.conn.startWorkflowBatch(['assistant', 'no_such_workflow'])).rejects.toMatchObject({ code: 'WORKFLOW_NOT_FOUND' });
  await r.conn.enterGeneralMode();
  expect(r.all.some((e) => e.kind === 'control' && e.event.type === 'chat.mode_changed' && e.event.data.mode === 'general')).toBe(true);
  expect(r.conn.composerToolCall).not.toBeNull(); // commands did not touch the pending tool call
  r.conn.close();
});

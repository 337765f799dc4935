/**
 * A turn whose worker goes away mid-reply, as separate worker processes (as deployed):
 * SIGTERM (a rolling deploy) hands the turn to another worker and leaves the chat alone;
 * SIGKILL (a crash) with a model that answers differently the second time gives a closed
 * partial message, then the new reply whole, never two replies spliced into one message.
 */
import type { ChildProcess } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createLogger } from '@tessera/kit';
import { until, type Envelope } from '@tessera/kit/testing';
import { createRuntimeServices, type RuntimeServices } from '../src/services';
import type { StoredEvent } from '../src/store/timeline';
import { configFor, spawnWorker, testEnv, transcript, type Env } from './harness';
import { openAiChunk, pause, sendData, startSseServer, type SseServer } from './providers/sse-server';

let env: Env;
let s: RuntimeServices;
let model: SseServer;
let workflowsDir: string;
const workers: ChildProcess[] = [];
let extra: Record<string, string>;

/** A model that streams "one" until its client goes away the first time, and a short different answer after. */
async function startModel(): Promise<SseServer> {
  const chunk = (delta: Record<string, unknown>, finish_reason: string | null = null) => openAiChunk(delta, finish_reason, 'm');
  let calls = 0;
  return startSseServer(async (_req, res: ServerResponse) => {
    const first = ++calls === 1;
    sendData(res, chunk({ role: 'assistant', content: '' }));
    if (first) {
      for (let i = 0; i < 2_000 && !res.destroyed; i++) {
        sendData(res, chunk({ content: 'one ' }));
        await pause(15);
      }
      return;
    }
    for (const piece of ['A ', 'different ', 'answer.']) sendData(res, chunk({ content: piece }));
    sendData(res, chunk({}, 'stop'));
    sendData(res, '[DONE]');
    res.end();
  });
}

beforeAll(async () => {
  env = await testEnv('rerun');
  model = await startModel();
  workflowsDir = mkdtempSync(join(tmpdir(), 'tessera-rerun-'));
  for (const name of ['slow', 'long']) cpSync(resolve(__dirname, 'fixtures/workflows', name), join(workflowsDir, name), { recursive: true });
  mkdirSync(join(workflowsDir, 'live'));
  writeFileSync(
    join(workflowsDir, 'live', 'workflow.json'),
    JSON.stringify({
      name: 'live',
      description: 'A model server that answers differently each time',
      starting_agent: 'writer',
      agents: [{ name: 'writer', system_prompt: 'Write.', model: { provider: 'openai-compatible', model: 'm' } }],
    }),
  );
  extra = { WORKFLOWS_DIR: workflowsDir, OPENAI_BASE_URL: `${model.url}/v1`, OPENAI_API_KEY: 'sk-test' };
  s = createRuntimeServices(configFor(env, extra), createLogger('rerun-test', 'silent'), 'api');
}, 60_000);

afterAll(async () => {
  for (const w of workers) w.kill('SIGKILL');
  await s?.close();
  await model?.close();
  rmSync(workflowsDir, { recursive: true, force: true });
  await env?.dropSchema();
});

async function worker(): Promise<ChildProcess> {
  const w = await spawnWorker(env, extra);
  workers.push(w);
  return w;
}


/** The turn is over as its client sees it: its input done and its chat.run_complete on the timeline (with the timeline's tail, appended just after the input's save). */
const finished = async (inputId: string, chatId: string) =>
  (await s.inputs.get(inputId))!.status === 'done' && (await s.timeline.after(chatId, 0, 10_000)).some((e) => e.type === 'chat.run_complete');

const envelopes = (events: StoredEvent[]) => events.map((e) => ({ type: e.type, data: e.data, index: e.index }) as Envelope);

/** Every assistant message ends with exactly one closing event, and its content is what its deltas said. */
function expectEveryMessageClosed(events: StoredEvent[]) {
  const texts = events.filter((e) => e.type === 'chat.text' && e.data.role === 'assistant');
  const ids = [...new Set(texts.map((e) => e.data.message_id as string))];
  for (const id of ids) {
    const of = texts.filter((e) => e.data.message_id === id);
    const closing = of.filter((e) => e.data.done);
    expect({ id, closings: closing.length }).toEqual({ id, closings: 1 });
    expect(of[of.length - 1]).toBe(closing[0]);
    expect(closing[0].data.content).toBe(of.map((e) => e.data.delta).join(''));
  }
  return ids.length;
}

test('SIGTERM on a worker mid-turn hands the turn to another worker: the chat is never stopped and the reply is complete', async () => {
  const a = await worker();
  const { chat } = await s.starter.start({ appId: 'app1', userId: 'u1', workflowName: 'slow', backendContext: null, uiContext: null });
  const statuses = new Set<string>();
  const watch = setInterval(() => void s.chats.get(chat.id).then((c) => c && statuses.add(c.status), () => undefined), 20);
  try {
    const { input } = await s.chatInputs.submitMessage(chat, 'alpha');
    await until(async () => (await s.timeline.lastIndex(chat.id)) >= 10, 20_000, 'the reply to start');
    const exited = new Promise<number | null>((r) => a.once('exit', (code) => r(code)));
    a.kill('SIGTERM');
    expect(await exited).toBe(0);
    // Handed back as after a crash: the input is still being processed, the chat untouched.
    expect((await s.inputs.get(input.id))!.status).toBe('processing');
    expect((await s.chats.get(chat.id))!.status).toBe('in_progress');

    await worker();
    await until(async () => await finished(input.id, chat.id), 30_000, 'the second worker to finish the turn');
    const events = await s.timeline.after(chat.id, 0, 10_000);
    const completes = events.filter((e) => e.type === 'chat.run_complete');
    expect(completes.map((e) => e.data.status)).toEqual(['completed']);
    expect(expectEveryMessageClosed(events)).toBe(2);
    const full =
      'Once upon a time a message named alpha travelled through a gateway, a broker, a runtime and a worker, and every word of it was written down before anyone was told, so that nobody who listened ever missed a word or heard one twice, even when their connection dropped in the middle of the story and came back somewhere else entirely.';
    const lines = transcript(envelopes(events));
    expect(lines).toHaveLength(4);
    expect(lines[0]).toBe('user:user: alpha');
    const partial = lines[1].replace('assistant:narrator: ', '');
    expect(partial.length).toBeGreaterThan(0);
    expect(full.startsWith(partial)).toBe(true);
    expect(lines.slice(2)).toEqual([`assistant:narrator: ${full}`, 'chat.run_complete']);
    expect(statuses.has('stopped')).toBe(false);
    expect((await s.chats.get(chat.id))!.status).toBe('in_progress');
  } finally {
    clearInterval(watch);
  }
}, 60_000);

test('a worker killed mid-reply, a model that answers differently the second time: the partial reply is closed, the new one stored whole', async () => {
  for (const w of workers.splice(0)) w.kill('SIGKILL');
  const a = await worker();
  const { chat } = await s.starter.start({ appId: 'app1', userId: 'u2', workflowName: 'live', backendContext: null, uiContext: null });
  const { input } = await s.chatInputs.submitMessage(chat, 'write');
  await until(async () => (await s.timeline.lastIndex(chat.id)) >= 6, 20_000, 'the first reply to stream');
  a.kill('SIGKILL');
  await new Promise((r) => a.once('exit', r));
  await worker();
  await until(async () => await finished(input.id, chat.id), 30_000, 'the re-run to finish');

  const events = await s.timeline.after(chat.id, 0, 10_000);
  expect(expectEveryMessageClosed(events)).toBe(2);
  const lines = transcript(envelopes(events));
  expect(lines[0]).toBe('user:user: write');
  expect(lines[1]).toMatch(/^assistant:writer: (one )+$/);
  expect(lines.slice(2)).toEqual(['assistant:writer: A different answer.', 'chat.run_complete']);
  expect(events.filter((e) => e.type === 'chat.run_complete').map((e) => e.data.status)).toEqual(['completed']);
  // The conversation the next turn builds on holds the answer that was completed, once.
  const state = (await s.chats.get(chat.id))!.state as { messages: { role: string; content: string }[] };
  expect(state.messages.map((m) => `${m.role}: ${m.content}`)).toEqual(['user: write', 'assistant: A different answer.']);
}, 60_000);

test('a turn cut off by a lost lease, whose input a newer message cancels before it runs again, is ended by its job: the reply closed, then chat.run_complete (interrupted)', async () => {
  for (const w of workers.splice(0)) w.kill('SIGKILL');
  await worker();
  const { chat } = await s.starter.start({ appId: 'app1', userId: 'u3', workflowName: 'long', backendContext: null, uiContext: null });
  const { input } = await s.chatInputs.submitMessage(chat, 'alpha');
  await until(async () => (await s.timeline.lastIndex(chat.id)) >= 6, 20_000, 'the reply to stream');
  // Another holder takes the chat's lease (as after a pause longer than its TTL): the worker's
  // next renewal fails, its turn is handed back, and the job waits for the lease.
  await s.redis.set(s.lease.key(chat.id), 'another-holder', 'PX', 30_000);
  await until(async () => (await s.turnQueue.queue.getJobState(input.id)) === 'delayed', 10_000, 'the turn to be handed back');
  // A newer message supersedes the input meanwhile (what ChatInputs does for `interrupt`).
  expect(await s.inputs.supersede(chat.id, input.seq + 1n)).toEqual({ running: true, dropped: [] });
  await s.redis.del(s.lease.key(chat.id));

  await until(async () => (await s.timeline.after(chat.id, 0, 10_000)).some((e) => e.type === 'chat.run_complete'), 20_000, 'the cut-off turn to end');
  const events = await s.timeline.after(chat.id, 0, 10_000);
  expect(events.filter((e) => e.type === 'chat.run_complete').map((e) => [e.data.turn_id, e.data.status])).toEqual([[input.id, 'interrupted']]);
  expect(expectEveryMessageClosed(events)).toBe(1);
  const lines = transcript(envelopes(events));
  expect(lines[0]).toBe('user:user: alpha');
  expect(lines[1]).toMatch(/^assistant:narrator: Once upon a time/);
  expect(lines.slice(2)).toEqual(['chat.run_complete']);
  expect((await s.inputs.get(input.id))!.status).toBe('cancelled');
}, 60_000);

/**
 * A stop is never lost or undone: it is made durable before anyone acts on it, so a turn that
 * takes the chat's lease around it either never runs or is stopped, and nothing overwrites it.
 */
import { resolve } from 'node:path';
import { createLogger } from '@tessera/kit';
import { ChatLease, type HeldLease } from '../src/turns/chat-lease';
import { createRuntimeServices, type RuntimeServices } from '../src/services';
import type { ChatRow } from '../src/store/chats';
import { stopIdleChat } from '../src/turns/stop';
import { TurnRunner } from '../src/turns/turn-runner';
import { configFor, testEnv, type Env } from './harness';

const SLOW = { WORKFLOWS_DIR: resolve(__dirname, 'fixtures/workflows') };
let env: Env;
let s: RuntimeServices;

beforeAll(async () => {
  env = await testEnv('stop');
  s = createRuntimeServices(configFor(env, SLOW), createLogger('stop-test', 'silent'), 'api');
});
afterAll(async () => {
  await s?.close();
  await env?.dropSchema();
});

/** A lease that runs `window` right after it is taken: the moment between a worker's lease and its turn. */
class LeaseWithWindow extends ChatLease {
  window: (() => Promise<void>) | null = null;
  override async acquire(chatId: string): Promise<HeldLease | null> {
    const held = await super.acquire(chatId);
    if (held && this.window) await this.window();
    return held;
  }
}

function runnerWith(lease: ChatLease = s.lease) {
  return new TurnRunner({ ...s, lease, workflows: s.workflows, providers: s.providers, logger: s.logger, observe: s.observe });
}

let n = 0;
async function newChat(): Promise<ChatRow> {
  const { chat } = await s.starter.start({ appId: 'app1', userId: `u${++n}`, workflowName: 'slow', backendContext: null, uiContext: null });
  return chat;
}

async function outcome(chatId: string) {
  const events = await s.timeline.after(chatId, 0, 10_000);
  return {
    status: (await s.chats.get(chatId))!.status,
    runCompletes: events.filter((e) => e.type === 'chat.run_complete').map((e) => e.data.status),
    assistantText: events.some((e) => e.type === 'chat.text' && e.data.role === 'assistant'),
  };
}

test('a stop that comes after a worker took the lease but before its turn started: the turn never runs, the chat is stopped once', async () => {
  const chat = await newChat();
  const { input } = await s.chatInputs.submitMessage(chat, 'hello');
  const lease = new LeaseWithWindow(s.redis, s.config.BULL_PREFIX);
  const runner = runnerWith(lease);
  let stopping: Promise<boolean> | undefined;
  lease.window = async () => {
    lease.window = null;
    // What every process does with the control message: the worker aborts a turn it runs (none
    // yet), an API instance stops the chat.
    runner.stop(chat.id);
    stopping = stopIdleChat(s, chat.id);
    await Promise.race([stopping, new Promise((r) => setTimeout(r, 300))]);
  };
  await runner.process({ chat_id: chat.id, app_id: chat.appId, input_id: input.id });
  await stopping;
  expect(await outcome(chat.id)).toEqual({ status: 'stopped', runCompletes: ['stopped'], assistantText: false });
  expect((await s.inputs.get(input.id))!.status).toBe('cancelled');
}, 20_000);

test('a stop and a starting turn racing for an idle chat: never both win (one stop, the chat stays stopped)', async () => {
  const chats = await Promise.all(Array.from({ length: 8 }, () => newChat()));
  const runner = runnerWith();
  await Promise.all(
    chats.map(async (chat, i) => {
      const { input } = await s.chatInputs.submitMessage(chat, 'hello');
      // Staggered so that the stop lands at different points of the turn's start.
      await new Promise((r) => setTimeout(r, i));
      await Promise.all([
        runner.process({ chat_id: chat.id, app_id: chat.appId, input_id: input.id }),
        new Promise((r) => setTimeout(r, i * 2)).then(async () => {
          runner.stop(chat.id);
          await stopIdleChat(s, chat.id);
          runner.stop(chat.id);
        }),
      ]);
    }),
  );
  for (const chat of chats) {
    const o = await outcome(chat.id);
    expect({ status: o.status, runCompletes: o.runCompletes }).toEqual({ status: 'stopped', runCompletes: ['stopped'] });
  }
}, 30_000);

test('a stop whose control message never reached the worker is still carried out: the turn ends stopped', async () => {
  const chat = await newChat();
  const { input } = await s.chatInputs.submitMessage(chat, 'hello');
  const runner = runnerWith();
  const turn = runner.process({ chat_id: chat.id, app_id: chat.appId, input_id: input.id });
  while (!(await s.timeline.after(chat.id, 0, 100)).some((e) => e.type === 'chat.text' && e.data.role === 'assistant')) await new Promise((r) => setTimeout(r, 10));
  // Only an API instance hears of the stop; the worker is never told.
  const stopped = stopIdleChat(s, chat.id, 'operator stop');
  await turn;
  expect(await stopped).toBe(false); // the turn carried it out
  const o = await outcome(chat.id);
  expect(o).toEqual({ status: 'stopped', runCompletes: ['stopped'], assistantText: true });
  const complete = (await s.timeline.after(chat.id, 0, 10_000)).find((e) => e.type === 'chat.run_complete')!;
  expect(complete.data.reason).toBe('operator stop');
}, 20_000);

test('a cancelled input is never revived by a turn that takes it', async () => {
  const chat = await newChat();
  const { input } = await s.chatInputs.submitMessage(chat, 'hello');
  await s.inputs.cancelPending(chat.id);
  expect(await s.inputs.take(chat.id)).toBeNull();
  expect((await s.inputs.get(input.id))!.status).toBe('cancelled');
  await s.inputs.markDone(input.id);
  expect((await s.inputs.get(input.id))!.status).toBe('cancelled');
});

test('a turn that saves after its chat was stopped leaves it stopped', async () => {
  const chat = await newChat();
  await s.chatInputs.submitMessage(chat, 'hello');
  const taken = (await s.inputs.take(chat.id))!.input;
  expect(await s.chats.transition(chat.id, ['created'], 'stopped')).toBe(true);
  await s.turnEnd.finish(chat.id, taken, { state: { current_agent: 'narrator', messages: [], turns: 1, usage: {} }, usage: {}, status: 'in_progress' }, [], s.feed);
  expect((await s.chats.get(chat.id))!.status).toBe('stopped');
});

test('after a stop, a new message runs as usual', async () => {
  const chat = await newChat();
  await stopIdleChat(s, chat.id);
  const { input } = await s.chatInputs.submitMessage(chat, 'again');
  await runnerWith().process({ chat_id: chat.id, app_id: chat.appId, input_id: input.id });
  expect(await outcome(chat.id)).toEqual({ status: 'in_progress', runCompletes: ['stopped', 'completed'], assistantText: true });
}, 20_000);

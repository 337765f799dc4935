/**
 * A chat that answers fast cannot keep a worker to itself: while other chats' jobs wait, the job
 * that ran a chat's turn does not also run the chat's next input; that input's own job does, in
 * its turn. Without a backlog the job runs it at once (no wait for a job to come round).
 */
import type { Job } from 'bullmq';
import { createLogger } from '@tessera/kit';
import { createRuntimeServices, type RuntimeServices } from '../src/services';
import { TurnRunner } from '../src/turns/turn-runner';
import { configFor, testEnv, type Env } from './harness';

let env: Env;
let s: RuntimeServices;

beforeAll(async () => {
  env = await testEnv('fairness');
  s = createRuntimeServices(configFor(env), createLogger('fairness-test', 'silent'), 'api');
});
afterAll(async () => {
  await s?.close();
  await env?.dropSchema();
});

/** What BullMQ hands the processor: a job on its first attempt. */
const firstAttempt = { attemptsStarted: 1 } as unknown as Job;

async function chatWithTwoInputs(user: string) {
  const { chat } = await s.starter.start({ appId: 'app1', userId: user, workflowName: 'assistant', backendContext: null, uiContext: null });
  const { input: one } = await s.chatInputs.submitMessage(chat, 'one');
  const { input: two } = await s.chatInputs.submitMessage(chat, 'two');
  return { chat, one, two };
}

test('while other chats wait, the next input of the chat is left to its own job', async () => {
  const { chat, one, two } = await chatWithTwoInputs('busy');
  const runner = new TurnRunner({ ...s });
  runner.setBacklogged(() => true);
  await runner.process({ chat_id: chat.id, app_id: chat.appId, input_id: one.id }, firstAttempt);
  expect((await s.inputs.get(one.id))!.status).toBe('done');
  expect((await s.inputs.get(two.id))!.status).toBe('pending');
  // Its own job comes round and runs it.
  await runner.process({ chat_id: chat.id, app_id: chat.appId, input_id: two.id }, firstAttempt);
  expect((await s.inputs.get(two.id))!.status).toBe('done');
}, 20_000);

test('with no backlog, the job that ran a turn runs the chat’s next input at once', async () => {
  const { chat, one, two } = await chatWithTwoInputs('idle');
  const runner = new TurnRunner({ ...s });
  runner.setBacklogged(() => false);
  await runner.process({ chat_id: chat.id, app_id: chat.appId, input_id: one.id }, firstAttempt);
  expect((await s.inputs.get(two.id))!.status).toBe('done');
  const completes = (await s.timeline.after(chat.id, 0, 1000)).filter((e) => e.type === 'chat.run_complete');
  expect(completes.map((e) => e.data.turn_id)).toEqual([one.id, two.id]);
}, 20_000);

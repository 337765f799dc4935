/**
 * A long chat's conversation state (rewritten by every turn, sent to the model) stays bounded:
 * the newest CONVERSATION_MAX_MESSAGES, starting at a user message.
 */
import { createLogger } from '@tessera/kit';
import { createRuntimeServices, type RuntimeServices } from '../src/services';
import { startTurnWorker } from '../src/turns/turn-worker';
import { configFor, testEnv, type Env } from './harness';

let env: Env;
let s: RuntimeServices;
let worker: Awaited<ReturnType<typeof startTurnWorker>>;

beforeAll(async () => {
  env = await testEnv('history');
  s = createRuntimeServices(configFor(env, { CONVERSATION_MAX_MESSAGES: '6' }), createLogger('history-test', 'silent'), 'api');
  worker = await startTurnWorker(s);
});
afterAll(async () => {
  await worker?.close();
  await s?.close();
  await env?.dropSchema();
});

test('after 12 turns the stored conversation holds the newest 6 messages, from a user message on', async () => {
  const { chat } = await s.starter.start({ appId: 'app1', userId: 'u1', workflowName: 'assistant', backendContext: null, uiContext: null });
  const sizes: number[] = [];
  for (let i = 1; i <= 12; i++) {
    const { input } = await s.chatInputs.submitMessage(chat, `message ${i}`);
    while ((await s.inputs.get(input.id))!.status !== 'done') await new Promise((r) => setTimeout(r, 20));
    sizes.push(JSON.stringify((await s.chats.get(chat.id))!.state).length);
  }
  const state = (await s.chats.get(chat.id))!.state as { messages: { role: string; content: string }[]; turns: number };
  expect(state.turns).toBe(12);
  expect(state.messages.map((m) => m.role)).toEqual(['user', 'assistant', 'user', 'assistant', 'user', 'assistant']);
  expect(state.messages.filter((m) => m.role === 'user').map((m) => m.content)).toEqual(['message 10', 'message 11', 'message 12']);
  // The row stops growing once the window is full.
  expect(sizes[11]).toBeLessThanOrEqual(sizes[5] + 20);
  // The whole transcript is still in the timeline.
  const texts = (await s.timeline.after(chat.id, 0, 10_000)).filter((e) => e.type === 'chat.text' && e.data.done);
  expect(texts).toHaveLength(24);
}, 30_000);

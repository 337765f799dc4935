/**
 * What a client sends into a chat is stored atomically: the client context merge loses no update
 * and never replaces a backend value; a tool call is answered only together with its input; a
 * retried submit whose first enqueue failed is queued; a chat's waiting inputs are capped.
 */
import { Pool } from 'pg';
import { Queue, WsErrorCode } from '@tessera/contracts';
import { bullConnection, createLogger, TypedQueue } from '@tessera/kit';
import { closedPort } from '@tessera/kit/testing';
import { createRuntimeServices, type RuntimeServices } from '../src/services';
import { InputStore } from '../src/store/inputs';
import { ChatInputs, InputRefused } from '../src/turns/chat-inputs';
import { configFor, testEnv, type Env } from './harness';

let env: Env;
let s: RuntimeServices;
const logger = createLogger('inputs-test', 'silent');

beforeAll(async () => {
  env = await testEnv('inputs');
  // No worker: inputs stay pending.
  s = createRuntimeServices(configFor(env, { MAX_PENDING_INPUTS: '5' }), logger, 'api');
});
afterAll(async () => {
  await s?.close();
  await env?.dropSchema();
});

let n = 0;
async function newChat(backendContext: Record<string, unknown> | null = null) {
  const { chat } = await s.starter.start({ appId: 'app1', userId: `u${++n}`, workflowName: 'assistant', backendContext, uiContext: null });
  return chat;
}

test('concurrent submits with context each keep their keys, under ui_, and never replace a backend value', async () => {
  const chat = await newChat({ user_tier: 'pro', ui_theme_backend: 'kept' });
  await Promise.all(
    Array.from({ length: 5 }, (_, i) => s.chatInputs.submitMessage(chat, `m${i}`, undefined, { [`k${i}`]: i, user_tier: `client-${i}` })),
  );
  const context = (await s.chats.get(chat.id))!.context as Record<string, unknown>;
  expect(context.user_tier).toBe('pro');
  expect(context.ui_theme_backend).toBe('kept');
  for (let i = 0; i < 5; i++) expect(context[`ui_k${i}`]).toBe(i);
  expect(String(context.ui_user_tier)).toMatch(/^client-\d$/);
});

test('the context is in place before the input can be taken', async () => {
  const chat = await newChat();
  const { input } = await s.chatInputs.submitMessage(chat, 'hi', 'with-ctx', { page: 'billing' });
  // What a turn reads once its input exists.
  expect((await s.inputs.take(chat.id))!.input.id).toBe(input.id);
  expect(((await s.chats.get(chat.id))!.context as Record<string, unknown>).ui_page).toBe('billing');
});

test('a tool call is never answered without its input: a failed answer leaves it awaiting, and a retry is accepted', async () => {
  const chat = await newChat();
  await s.toolCalls.record({ eventId: `${chat.id}:tc1`, chatId: chat.id, toolCallId: 'call_1', toolName: 'ask', agent: 'assistant', awaiting: true });
  // The database connection of the input store breaks mid-request.
  const broken = new Pool({ connectionString: `postgresql://x:y@127.0.0.1:${await closedPort()}/none`, connectionTimeoutMillis: 500 });
  const failing = new ChatInputs({ ...s, inputs: new InputStore(s.db.prisma, broken) });
  await expect(failing.respondToolCall(chat, 'call_1', { answer: 'yes' }, () => undefined)).rejects.toThrow();
  await broken.end();
  expect((await s.toolCalls.find('call_1', chat.id))!.status).toBe('awaiting');

  const { input } = await s.chatInputs.respondToolCall(chat, 'call_1', { answer: 'yes' }, () => undefined);
  expect((await s.toolCalls.find('call_1', chat.id))!.status).toBe('answered');
  expect(input.payload).toMatchObject({ kind: 'tool_response', event_id: `${chat.id}:tc1`, response: { answer: 'yes' } });
  expect(await s.turnQueue.queue.getJob(input.id)).toBeDefined();
  // Answered once: a second answer is refused and adds nothing.
  await expect(s.chatInputs.respondToolCall(chat, 'call_1', { answer: 'no' }, () => undefined)).rejects.toMatchObject({ status: 409 });
  expect((await s.db.prisma.chatInput.findMany({ where: { chatId: chat.id } })).length).toBe(1);
});

test('a retried submit whose first enqueue failed is queued by the retry', async () => {
  const chat = await newChat();
  // Redis went away between the insert and the enqueue.
  const down = new TypedQueue(Queue.RuntimeTurns, bullConnection(s.config.REDIS_URL), logger, { prefix: s.config.BULL_PREFIX });
  await down.close();
  const failing = new ChatInputs({ ...s, turnQueue: down });
  await expect(failing.submitMessage(chat, 'hello', 'client-1')).rejects.toThrow();

  const { input, duplicate } = await s.chatInputs.submitMessage(chat, 'hello', 'client-1');
  expect(duplicate).toBe(true);
  expect(input.status).toBe('pending');
  expect(await s.turnQueue.queue.getJob(input.id)).toBeDefined();
}, 20_000);

test('a chat with MAX_PENDING_INPUTS waiting refuses one more with RATE_LIMITED (429); a duplicate still answers', async () => {
  const chat = await newChat();
  for (let i = 0; i < 5; i++) await s.chatInputs.submitMessage(chat, `m${i}`, `c${i}`, { [`n${i}`]: i });
  const refused = await s.chatInputs.submitMessage(chat, 'one too many', 'c5', { extra: true }).catch((e: unknown) => e);
  expect(refused).toBeInstanceOf(InputRefused);
  expect(refused).toMatchObject({ status: 429, code: WsErrorCode.RateLimited });
  expect((refused as Error).message).toMatch(/too many messages waiting/);
  // Nothing of the refused submit was kept.
  expect(((await s.chats.get(chat.id))!.context as Record<string, unknown>).ui_extra).toBeUndefined();
  expect(await s.db.prisma.chatInput.count({ where: { chatId: chat.id } })).toBe(5);
  expect((await s.chatInputs.submitMessage(chat, 'm0', 'c0')).duplicate).toBe(true);
  // Another chat is not affected.
  await expect(s.chatInputs.submitMessage(await newChat(), 'hi')).resolves.toMatchObject({ duplicate: false });
});

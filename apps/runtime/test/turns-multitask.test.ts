/**
 * Two messages at once ("double-texting"): what a message that arrives while a turn of its chat
 * runs does, by the request's `multitask_strategy` or the workflow's: enqueue, reject, interrupt,
 * rollback. Over the 003 socket and over AG-UI (`@ag-ui/client`'s HttpAgent), with the turn worker
 * in its own process as deployed, so that a cut-off travels over Redis like in production.
 */
import type { ChildProcess } from 'node:child_process';
import { resolve } from 'node:path';
import { Role, TaskState, type Message, type StreamResponse, type Task } from '@a2a-js/sdk';
import { ClientFactory, DefaultAgentCardResolver, JsonRpcTransportFactory } from '@a2a-js/sdk/client';
import { EventType, HttpAgent, type BaseEvent, type RunFinishedEvent } from '@ag-ui/client';
import { Client as McpClient } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { TestSocket, type Envelope } from '@tessera/kit/testing';
import type { ConversationState } from '../src/engine/types';
import { http, spawnWorker, startRuntime, testEnv, token, transcript, wsUrl, type Env, type RuntimeInstance } from './harness';

const WORKFLOWS = { WORKFLOWS_DIR: resolve(__dirname, 'fixtures/multitask') };
let env: Env;
let rt: RuntimeInstance;
let worker: ChildProcess;

beforeAll(async () => {
  env = await testEnv('multitask');
  rt = await startRuntime(env, { worker: false, extra: WORKFLOWS });
  worker = await spawnWorker(env, WORKFLOWS);
}, 60_000);
afterAll(async () => {
  worker?.kill('SIGTERM');
  await rt?.close();
  await env?.dropSchema();
});

let n = 0;
async function openChat(workflow = 'long') {
  const user = `u${++n}`;
  const tok = await token(user);
  const r = await http(rt.url, 'POST', `/api/chats/app1/${workflow}/start`, { user_id: user }, tok);
  expect(r.status).toBe(201);
  const chatId = r.body.chat_id as string;
  const socket = await TestSocket.connect(wsUrl(rt.wsUrl, workflow, 'app1', chatId, user, tok));
  await socket.waitType('chat_meta');
  return { user, tok, chatId, socket };
}

const submit = (text: string, strategy?: string) => ({ type: 'user.input.submit', text, client_message_id: `c-${text}`, ...(strategy && { multitask_strategy: strategy }) });
const isAssistantDelta = (m: Envelope) => m.type === 'chat.text' && m.data.role === 'assistant' && !m.data.done;
const runCompletes = (socket: TestSocket) => socket.timeline().filter((e) => e.type === 'chat.run_complete').map((e) => e.data.status as string);
const stateOf = async (chatId: string) => (await rt.s.chats.get(chatId))!.state as unknown as ConversationState;
const conversation = async (chatId: string) =>
  (await stateOf(chatId)).messages.map((m) => `${m.role}: ${m.content.replace(/ travelled .*/, ' …')}`);

/** Waits until the chat's turns are all over: the `count`th chat.run_complete arrived (else says what the chat holds). */
async function settled(socket: TestSocket, count: number): Promise<void> {
  await socket.waitFor(() => runCompletes(socket).length >= count, 30_000).catch(async (e: Error) => {
    const chatId = socket.messages.find((m) => m.type === 'chat_meta')?.data.chat_id as string;
    const inputs = await rt.s.db.prisma.chatInput.findMany({ where: { chatId }, orderBy: { seq: 'asc' } });
    const stored = await rt.s.timeline.after(chatId, 0, 10_000);
    throw new Error(
      `${e.message.slice(0, 300)}\nrun_completes heard: ${runCompletes(socket).join(', ')}\ninputs: ${inputs.map((i) => `${i.clientMessageId}=${i.status}`).join(', ')}` +
        `\nstored: ${stored.map((x) => `${x.index}:${x.type}${x.type === 'chat.run_complete' ? `(${String(x.data.status)})` : ''}`).join(' ')}\nheard indexes: ${socket.timeline().map((m) => m.index).join(',')}`,
    );
  });
}

test('enqueue (the default): the second message waits and runs after the first turn, which finishes whole', async () => {
  const { chatId, socket } = await openChat();
  socket.send(submit('first'));
  await socket.waitFor(isAssistantDelta);
  socket.send(submit('second short'));
  await socket.waitType('ack.input', 10_000, socket.messages.findIndex((m) => m.type === 'ack.input') + 1);
  await settled(socket, 2);
  expect(runCompletes(socket)).toEqual(['completed', 'completed']);
  expect(await conversation(chatId)).toEqual(['user: first', 'assistant: Once upon a time a message named first …', 'user: second short', 'assistant: A short answer to second short.']);
  await socket.close();
}, 40_000);

test('reject: a message sent while a turn runs is refused with CHAT_BUSY (socket and HTTP) and leaves no trace; once the turn ended it is taken', async () => {
  const { user, tok, chatId, socket } = await openChat();
  socket.send(submit('first'));
  await socket.waitFor(isAssistantDelta);
  socket.send(submit('too soon', 'reject'));
  const refused = await socket.waitFor((m) => m.type === 'chat.error' && m.index === undefined);
  expect(refused.data).toMatchObject({ error_code: 'CHAT_BUSY' });
  expect(refused.data.message).toMatch(/reject/);
  const byHttp = await http(rt.url, 'POST', `/chat/app1/${chatId}/${user}/input`, { message: 'too soon by http', workflow_name: 'long', multitask_strategy: 'reject' }, tok);
  expect(byHttp).toMatchObject({ status: 409, body: { error: { code: 'CHAT_BUSY' } } });
  await settled(socket, 1);
  expect(runCompletes(socket)).toEqual(['completed']);
  expect((await rt.s.db.prisma.chatInput.findMany({ where: { chatId } })).length).toBe(1);

  socket.send(submit('now short', 'reject'));
  await settled(socket, 2);
  expect(runCompletes(socket)).toEqual(['completed', 'completed']);
  expect((await conversation(chatId)).slice(2)).toEqual(['user: now short', 'assistant: A short answer to now short.']);
  await socket.close();
}, 40_000);

test('a workflow whose multitask_strategy is reject refuses a second message that names no strategy; one that says enqueue waits', async () => {
  const { chatId, socket } = await openChat('long-reject');
  socket.send(submit('first'));
  await socket.waitFor(isAssistantDelta);
  socket.send(submit('no strategy short'));
  expect((await socket.waitFor((m) => m.type === 'chat.error' && m.index === undefined)).data).toMatchObject({ error_code: 'CHAT_BUSY' });
  socket.send(submit('queued short', 'enqueue'));
  await settled(socket, 2);
  expect(await conversation(chatId)).toEqual(['user: first', 'assistant: Once upon a time a message named first …', 'user: queued short', 'assistant: A short answer to queued short.']);
  await socket.close();
}, 40_000);

test('interrupt: the running turn is cut off (what it said stays, closed, in the conversation too) and the new message runs', async () => {
  const { chatId, socket } = await openChat();
  socket.send(submit('first'));
  await socket.waitFor(isAssistantDelta);
  socket.send(submit('second short', 'interrupt'));
  await settled(socket, 2);
  expect(runCompletes(socket)).toEqual(['interrupted', 'completed']);
  const lines = transcript(socket.timeline());
  const cut = lines.find((l) => l.startsWith('assistant:narrator: Once'))!;
  expect(cut.length).toBeLessThan('assistant:narrator: '.length + 600); // not the whole story
  expect(lines).toEqual(['user:user: first', cut, 'chat.run_complete', 'user:user: second short', 'assistant:narrator: A short answer to second short.', 'chat.run_complete']);
  const said = await stateOf(chatId);
  expect(said.messages.map((m) => m.role)).toEqual(['user', 'assistant', 'user', 'assistant']);
  expect(`assistant:narrator: ${said.messages[1].content}`).toBe(cut);
  expect((await rt.s.chats.get(chatId))!.status).toBe('in_progress');
  await socket.close();
}, 40_000);

test('rollback: the running turn is cut off and dropped: its message and what it said leave the conversation', async () => {
  const { chatId, socket } = await openChat();
  socket.send(submit('before short'));
  await settled(socket, 1);
  const from = socket.messages.length;
  socket.send(submit('first'));
  await socket.waitFor(isAssistantDelta, 10_000, from);
  socket.send(submit('instead short', 'rollback'));
  await settled(socket, 3);
  expect(runCompletes(socket)).toEqual(['completed', 'rolled_back', 'completed']);
  const rolledBack = socket.timeline().find((e) => e.type === 'chat.run_complete' && e.data.status === 'rolled_back')!;
  // What a client drops: the rolled-back turn's messages, whose ids start with its turn id.
  const dropped = socket.timeline().filter((e) => e.type === 'chat.text' && String(e.data.message_id).startsWith(`${rolledBack.data.turn_id}:`));
  expect(new Set(dropped.map((e) => e.data.role))).toEqual(new Set(['user', 'assistant']));
  expect(await conversation(chatId)).toEqual(['user: before short', 'assistant: A short answer to before short.', 'user: instead short', 'assistant: A short answer to instead short.']);
  await socket.close();
}, 40_000);

test('interrupt with a message still waiting: the newest wins; the waiting one never runs and ends on the timeline', async () => {
  const { chatId, socket } = await openChat();
  socket.send(submit('first'));
  await socket.waitFor(isAssistantDelta);
  socket.send(submit('waiting short'));
  await socket.waitFor((m) => m.type === 'ack.input' && m.data.client_message_id === 'c-waiting short');
  socket.send(submit('newest short', 'interrupt'));
  await settled(socket, 3);
  const ends = socket.timeline().filter((e) => e.type === 'chat.run_complete');
  expect(ends.map((e) => e.data.status)).toEqual(['interrupted', 'interrupted', 'completed']);
  const waiting = (await rt.s.db.prisma.chatInput.findFirst({ where: { chatId, clientMessageId: 'c-waiting short' } }))!;
  expect(waiting.status).toBe('cancelled');
  expect(ends.find((e) => e.data.turn_id === waiting.id)?.data.reason).toBe('dropped: a newer message superseded it');
  expect(transcript(socket.timeline()).filter((l) => l.startsWith('user:'))).toEqual(['user:user: first', 'user:user: newest short']);
  await socket.close();
}, 40_000);

describe('over AG-UI (HttpAgent)', () => {
  function agent(tok: string, threadId: string) {
    const a = new HttpAgent({ url: `${rt.url}/api/agui/app1/long`, headers: { authorization: `Bearer ${tok}` }, threadId });
    const events: BaseEvent[] = [];
    a.subscribe({ onEvent: ({ event }) => void events.push(event) });
    return { a, events };
  }
  const outcome = (events: BaseEvent[]) => (events.find((e) => e.type === EventType.RUN_FINISHED) as RunFinishedEvent | undefined)?.outcome;

  test.each(['interrupt', 'rollback'])('%s: the running run finishes cancelled, the new one answers', async (strategy) => {
    const tok = await token(`agui-${strategy}`);
    const threadId = `thread-${strategy}-${Date.now()}`;
    const first = agent(tok, threadId);
    first.a.addMessage({ id: 'u1', role: 'user', content: 'first' });
    const running = first.a.runAgent();
    await waitUntil(() => first.events.some((e) => e.type === EventType.TEXT_MESSAGE_CONTENT));

    const second = agent(tok, threadId);
    second.a.addMessage({ id: 'u2', role: 'user', content: 'second short' });
    const { newMessages } = await second.a.runAgent({ forwardedProps: { multitask_strategy: strategy } });
    await running;
    expect(outcome(first.events)).toEqual({ type: 'cancelled' });
    expect(outcome(second.events)).toEqual({ type: 'success' });
    expect(newMessages.filter((m) => m.role === 'assistant').map((m) => m.content)).toEqual(['A short answer to second short.']);
    const chat = (await rt.s.db.pool.query('SELECT id FROM chats WHERE client_request_id = $1', [`agui:${threadId}`])).rows[0];
    const roles = (await conversation(chat.id)).map((l) => l.split(':')[0]);
    expect(roles).toEqual(strategy === 'interrupt' ? ['user', 'assistant', 'user', 'assistant'] : ['user', 'assistant']);
  }, 40_000);

  test('reject: the second run is a 409 CHAT_BUSY, the first runs to the end', async () => {
    const tok = await token('agui-reject');
    const threadId = `thread-reject-${Date.now()}`;
    const first = agent(tok, threadId);
    first.a.addMessage({ id: 'u1', role: 'user', content: 'first' });
    const running = first.a.runAgent();
    await waitUntil(() => first.events.some((e) => e.type === EventType.TEXT_MESSAGE_CONTENT));
    const r = await fetch(`${rt.url}/api/agui/app1/long`, {
      method: 'POST',
      headers: { authorization: `Bearer ${tok}`, 'content-type': 'application/json', accept: 'text/event-stream' },
      body: JSON.stringify({ threadId, runId: 'run-2', messages: [{ id: 'u2', role: 'user', content: 'second' }], tools: [], context: [], state: {}, forwardedProps: { multitask_strategy: 'reject' } }),
    });
    expect(r.status).toBe(409);
    expect(await r.json()).toMatchObject({ error: { code: 'CHAT_BUSY' } });
    await running;
    expect(outcome(first.events)).toEqual({ type: 'success' });
    const bad = await fetch(`${rt.url}/api/agui/app1/long`, {
      method: 'POST',
      headers: { authorization: `Bearer ${tok}`, 'content-type': 'application/json' },
      body: JSON.stringify({ threadId, runId: 'run-3', messages: [{ id: 'u3', role: 'user', content: 'x' }], tools: [], context: [], state: {}, forwardedProps: { multitask_strategy: 'sometimes' } }),
    });
    expect(bad.status).toBe(400);
    expect(JSON.stringify(await bad.json())).toContain('forwardedProps.multitask_strategy');
  }, 40_000);
});

describe('over A2A (@a2a-js/sdk client), the rule in message.metadata', () => {
  async function client(tok: string) {
    const fetchImpl: typeof fetch = (u, init) => fetch(u, { ...init, headers: { ...Object.fromEntries(new Headers(init?.headers).entries()), authorization: `Bearer ${tok}` } });
    const factory = new ClientFactory({ transports: [new JsonRpcTransportFactory({ fetchImpl })], cardResolver: new DefaultAgentCardResolver({ fetchImpl }) });
    return factory.createFromUrl(`${rt.url}/api/a2a/app1/long/`);
  }
  const message = (text: string, contextId = '', metadata?: Record<string, unknown>): Message => ({
    messageId: `m-${text}-${Date.now()}`,
    contextId,
    taskId: '',
    role: Role.ROLE_USER,
    parts: [{ content: { $case: 'text', value: text }, metadata: undefined, filename: '', mediaType: 'text/plain' }],
    metadata,
    extensions: [],
    referenceTaskIds: [],
  });
  const send = (m: Message) => ({ tenant: '', message: m, configuration: undefined, metadata: undefined });
  const states = (events: StreamResponse[]) =>
    events.flatMap((e) => (e.payload?.$case === 'statusUpdate' ? [e.payload.value.status?.state] : e.payload?.$case === 'task' ? [e.payload.value.status?.state] : []));

  test('interrupt cancels the running task, reject is refused in A2A words', async () => {
    const a2a = await client(await token('a2a-multitask'));
    const events: StreamResponse[] = [];
    const first = (async () => {
      for await (const e of a2a.sendMessageStream(send(message('first')))) events.push(e);
    })();
    await waitUntil(() => events.some((e) => e.payload?.$case === 'artifactUpdate'));
    const contextId = events.flatMap((e) => (e.payload?.$case === 'task' ? [e.payload.value.contextId] : e.payload?.$case === 'statusUpdate' ? [e.payload.value.contextId] : []))[0]!;

    await expect(a2a.sendMessage(send(message('busy', contextId, { multitask_strategy: 'reject' })))).rejects.toThrow(/CHAT_BUSY/);
    await expect(a2a.sendMessage(send(message('odd', contextId, { multitask_strategy: 'sometimes' })))).rejects.toThrow(/multitask_strategy/);
    const second = (await a2a.sendMessage(send(message('second short', contextId, { multitask_strategy: 'interrupt' })))) as Task;
    await first;
    expect(states(events).at(-1)).toBe(TaskState.TASK_STATE_CANCELED);
    expect(second.status?.state).toBe(TaskState.TASK_STATE_COMPLETED);
    expect(second.artifacts.flatMap((a) => a.parts.map((p) => (p.content?.$case === 'text' ? p.content.value : ''))).join('')).toBe('A short answer to second short.');
  }, 40_000);
});

test('over MCP, the workflow\'s rule (reject): a call on a chat whose turn runs is a tool error naming CHAT_BUSY', async () => {
  const tok = await token('mcp-multitask');
  const client = new McpClient({ name: 'multitask-test', version: '1.0.0' });
  await client.connect(new StreamableHTTPClientTransport(new URL(`${rt.url}/api/mcp/app1`), { requestInit: { headers: { authorization: `Bearer ${tok}` } } }));
  let streamed = '';
  const first = client.callTool({ name: 'long-reject', arguments: { message: 'first' } }, undefined, {
    onprogress: (p) => void (streamed += p.message ?? ''),
    timeout: 30_000,
  });
  await waitUntil(() => streamed.length > 0);
  const chatId: string = (await rt.s.db.pool.query("SELECT id FROM chats WHERE user_id = 'mcp-multitask'")).rows[0].id;
  const busy = await client.callTool({ name: 'long-reject', arguments: { message: 'second', chat_id: chatId } });
  expect(busy.isError).toBe(true);
  expect(JSON.stringify(busy.content)).toContain('CHAT_BUSY');
  const done = await first;
  expect(done.structuredContent).toMatchObject({ chat_id: chatId, status: 'completed' });
  expect(String((done.structuredContent as { reply: string }).reply)).toMatch(/^Once upon a time a message named first/);
  await client.close();
}, 40_000);

async function waitUntil(cond: () => boolean, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 20));
  }
}

import { randomBytes } from 'node:crypto';
import { Role, TaskState, type AgentCard, type Message, type StreamResponse, type Task } from '@a2a-js/sdk';
import { ClientFactory, DefaultAgentCardResolver, JsonRpcTransportFactory, type Client } from '@a2a-js/sdk/client';
import { call } from '@tessera/kit/testing';
import { token, type TestGateway } from './support';
import { startTwoInstanceStack, type HttpService, type TwoInstanceStack } from './stack';

/**
 * A2A over Tessera chats (apps/runtime/src/a2a), as an A2A client sees it: @a2a-js/sdk's own
 * client (JSON-RPC binding, A2A 1.0) reads the Agent Card through the gateway and talks to the
 * real runtime (two API instances and a worker) behind it.
 */

const SERVICE_KEY = 'a2a-service-key-0123456789abcdef';
const APP = 'demo-app';

let stack: TwoInstanceStack;
let second: HttpService;
let gw: TestGateway;
let alice: string;
let bob: string;

const uid = (p: string) => `${p}-${randomBytes(4).toString('hex')}`;
const authFetch =
  (who: string): typeof fetch =>
  (input, init) =>
    fetch(input, { ...init, headers: { ...Object.fromEntries(new Headers(init?.headers).entries()), authorization: `Bearer ${who}` } });

function factory(who: string): ClientFactory {
  return new ClientFactory({
    transports: [new JsonRpcTransportFactory({ fetchImpl: authFetch(who) })],
    cardResolver: new DefaultAgentCardResolver({ fetchImpl: authFetch(who) }),
  });
}

/** A client of one workflow, made the way an A2A client starts: from its base URL (the card is `{base}/.well-known/agent-card.json`). */
const clientFor = (workflow: string, who: string): Promise<Client> =>
  factory(who).createFromUrl(`${gw.url}/api/a2a/${APP}/${workflow}/`);

function message(text: string, ids: { contextId?: string; taskId?: string } = {}): Message {
  return {
    messageId: uid('m'),
    contextId: ids.contextId ?? '',
    taskId: ids.taskId ?? '',
    role: Role.ROLE_USER,
    parts: [{ content: { $case: 'text', value: text }, metadata: undefined, filename: '', mediaType: 'text/plain' }],
    metadata: undefined,
    extensions: [],
    referenceTaskIds: [],
  };
}
const send = (m: Message) => ({ tenant: '', message: m, configuration: undefined, metadata: undefined });

const textOf = (t: Task) => t.artifacts.flatMap((a) => a.parts.map((p) => (p.content?.$case === 'text' ? p.content.value : ''))).join('');
/** What a client reads of a stream: the reply text (artifact chunks in order) and the states it went through. */
function read(events: StreamResponse[]) {
  let text = '';
  const states: TaskState[] = [];
  for (const e of events) {
    if (e.payload?.$case === 'artifactUpdate') text += e.payload.value.artifact?.parts.map((p) => (p.content?.$case === 'text' ? p.content.value : '')).join('') ?? '';
    if (e.payload?.$case === 'statusUpdate') states.push(e.payload.value.status?.state as TaskState);
    if (e.payload?.$case === 'task') states.push(e.payload.value.status?.state as TaskState);
  }
  return { text, states };
}
async function collect(stream: AsyncGenerator<StreamResponse>): Promise<StreamResponse[]> {
  const out: StreamResponse[] = [];
  for await (const e of stream) out.push(e);
  return out;
}

beforeAll(async () => {
  // Two API instances behind the gateway: a resubscribe may land on either.
  stack = await startTwoInstanceStack('a2a', SERVICE_KEY);
  ({ second, gw } = stack);
  [alice, bob] = await Promise.all([token('alice', { apps: [APP] }), token('bob', { apps: [APP] })]);
}, 90_000);

afterAll(() => stack?.stop());

test('the Agent Cards: per workflow (its JSON-RPC endpoint through the gateway, bearer security) and per app (a skill per workflow)', async () => {
  const client = await clientFor('greeter', alice);
  const card: AgentCard = await client.getAgentCard();
  expect(card.name).toBe('greeter');
  expect(card.supportedInterfaces).toEqual([expect.objectContaining({ url: `${gw.url}/api/a2a/${APP}/greeter`, protocolBinding: 'JSONRPC', protocolVersion: '1.0' })]);
  expect(card.skills.map((s) => s.id)).toEqual(['greeter']);
  expect(card.capabilities?.streaming).toBe(true);
  expect(card.securitySchemes.bearer?.scheme).toMatchObject({ $case: 'httpAuthSecurityScheme', value: { scheme: 'bearer' } });

  const appCard = await call(gw.url, 'GET', `/api/a2a/${APP}/.well-known/agent-card.json`, { token: alice });
  expect(appCard.status).toBe(200);
  const workflowList = await call(gw.url, 'GET', '/api/workflows', { token: alice });
  const skills = (appCard.json as { skills: { id: string }[] }).skills.map((s) => s.id);
  expect(skills.sort()).toEqual(Object.keys(workflowList.json as object).sort());
  expect(skills).toEqual(expect.arrayContaining(['greeter', 'long', 'ask_user']));

  // No token: the gateway's 401; another app: 403 like every app route; no such workflow: 404.
  expect((await call(gw.url, 'GET', `/api/a2a/${APP}/greeter/.well-known/agent-card.json`)).status).toBe(401);
  const outsider = await token('carol', { apps: ['other-app'] });
  expect([403, 404]).toContain((await call(gw.url, 'GET', `/api/a2a/${APP}/greeter/.well-known/agent-card.json`, { token: outsider })).status);
  expect((await call(gw.url, 'GET', `/api/a2a/${APP}/no_such_workflow/.well-known/agent-card.json`, { token: alice })).status).toBe(404);
}, 30_000);

test('SendMessage: a task whose artifact is the reply; the context goes on as the same chat; GetTask reads it again', async () => {
  const client = await clientFor('greeter', alice);
  const result = await client.sendMessage(send(message('I build dashboards')));
  expect('status' in result).toBe(true);
  const task = result as Task;
  expect(task.status?.state).toBe(TaskState.TASK_STATE_COMPLETED);
  expect(textOf(task)).toBe('Noted: "I build dashboards". A teammate agent can take it from here.');
  expect(task.contextId).toBeTruthy();

  const next = (await client.sendMessage(send(message('and reports', { contextId: task.contextId })))) as Task;
  expect(next.contextId).toBe(task.contextId);
  expect(next.id).not.toBe(task.id);
  expect(textOf(next)).toBe('Noted: "and reports". A teammate agent can take it from here.');
  // The context is the chat: the platform's own chat routes show both turns.
  const got = await client.getTask({ tenant: '', id: task.id });
  expect(textOf(got)).toBe(textOf(task));
  expect(got.status?.state).toBe(TaskState.TASK_STATE_COMPLETED);
}, 30_000);

test('SendStreamingMessage: the task first, the reply in many artifact chunks, then the completed status', async () => {
  const client = await clientFor('greeter', alice);
  const events = await collect(client.sendMessageStream(send(message('stream it'))));
  expect(events[0].payload?.$case).toBe('task');
  const chunks = events.filter((e) => e.payload?.$case === 'artifactUpdate');
  expect(chunks.length).toBeGreaterThan(5);
  const { text, states } = read(events);
  expect(text).toBe('Noted: "stream it". A teammate agent can take it from here.');
  expect(states.at(-1)).toBe(TaskState.TASK_STATE_COMPLETED);
}, 30_000);

test('CancelTask stops a long turn mid-reply: canceled, and the reply stops short', async () => {
  const client = await clientFor('long', alice);
  const events: StreamResponse[] = [];
  let canceled: Promise<Task> | undefined;
  for await (const e of client.sendMessageStream(send(message('tell me a story')))) {
    events.push(e);
    const taskId = e.payload?.$case === 'task' ? e.payload.value.id : undefined;
    if (e.payload?.$case === 'artifactUpdate') canceled ??= client.cancelTask({ tenant: '', id: e.payload.value.taskId, metadata: undefined });
    void taskId;
  }
  const task = await (canceled as Promise<Task>);
  expect(task.status?.state).toBe(TaskState.TASK_STATE_CANCELED);
  const { text, states } = read(events);
  expect(states.at(-1)).toBe(TaskState.TASK_STATE_CANCELED);
  expect(text.length).toBeGreaterThan(0);
  expect(text).not.toContain('The end.');
  // A finished task cannot be canceled again.
  await expect(client.cancelTask({ tenant: '', id: task.id, metadata: undefined })).rejects.toThrow(/cancel/i);
}, 30_000);

test('a UI tool awaiting its answer is INPUT_REQUIRED with its question; the next message with the task id answers it and the task completes', async () => {
  const client = await clientFor('ask_user', alice);
  const first = (await client.sendMessage(send(message('Help me plan a trip')))) as Task;
  expect(first.status?.state).toBe(TaskState.TASK_STATE_INPUT_REQUIRED);
  const question = first.status?.message?.parts[0]?.content;
  expect(question).toEqual({ $case: 'text', value: 'What name should I call you?' });

  const events = await collect(client.sendMessageStream(send(message('Ada', { taskId: first.id, contextId: first.contextId }))));
  const { text, states } = read(events);
  expect(states.at(-1)).toBe(TaskState.TASK_STATE_COMPLETED);
  expect(text).toContain('Nice to meet you, Ada! I will remember that for the rest of our chat.');
  const done = await client.getTask({ tenant: '', id: first.id });
  expect(done.status?.state).toBe(TaskState.TASK_STATE_COMPLETED);
  // Answering again: the task no longer awaits input.
  await expect(client.sendMessage(send(message('Bob', { taskId: first.id })))).rejects.toThrow(/not awaiting input/);
}, 30_000);

test('CancelTask while input is required: the question is dismissed, the task canceled', async () => {
  const client = await clientFor('ask_user', alice);
  const asking = (await client.sendMessage(send(message('Help me plan a trip')))) as Task;
  expect(asking.status?.state).toBe(TaskState.TASK_STATE_INPUT_REQUIRED);
  const canceled = await client.cancelTask({ tenant: '', id: asking.id, metadata: undefined });
  expect(canceled.status?.state).toBe(TaskState.TASK_STATE_CANCELED);
  expect((await client.getTask({ tenant: '', id: asking.id })).status?.state).toBe(TaskState.TASK_STATE_CANCELED);
  await expect(client.sendMessage(send(message('Ada', { taskId: asking.id })))).rejects.toThrow(/not awaiting input/);
}, 30_000);

test('SubscribeToTask after a cut, on the other instance: the task from its first event, nothing lost, the same text as GetTask', async () => {
  const client = await clientFor('long', alice);
  const before: StreamResponse[] = [];
  let taskId = '';
  for await (const e of client.sendMessageStream(send(message('tell me a story')))) {
    before.push(e);
    if (e.payload?.$case === 'task') taskId = e.payload.value.id;
    if (before.filter((x) => x.payload?.$case === 'artifactUpdate').length >= 5) break; // the cut: the client stops reading
  }
  expect(taskId).toBeTruthy();
  // The other API instance, straight (not the one the gateway picked): its card names the same endpoint there.
  const card = await client.getAgentCard();
  const elsewhere = await factory(alice).createFromAgentCard({ ...card, supportedInterfaces: [{ ...card.supportedInterfaces[0], url: `${second.url}/api/a2a/${APP}/long` }] });
  const after = await collect(elsewhere.resubscribeTask({ tenant: '', id: taskId }));
  const resumed = read(after);
  expect(resumed.states.at(-1)).toBe(TaskState.TASK_STATE_COMPLETED);
  // What came before the cut is where the replay starts: nothing lost, nothing reordered.
  expect(resumed.text.startsWith(read(before).text)).toBe(true);
  expect(resumed.text).toContain('The end.');
  expect(resumed.text).toBe(textOf(await client.getTask({ tenant: '', id: taskId })));
  // And once more, now that it is finished: the same.
  expect(read(await collect(client.resubscribeTask({ tenant: '', id: taskId }))).text).toBe(resumed.text);
}, 60_000);

test('tenancy: another user’s task and context are "task not found", as for an id that does not exist', async () => {
  const mine = await clientFor('greeter', alice);
  const task = (await mine.sendMessage(send(message('mine')))) as Task;
  const theirs = await clientFor('greeter', bob);
  const missing = (await theirs.getTask({ tenant: '', id: 'no-such-task' }).catch((e: Error) => e)) as Error;
  expect(missing).toBeInstanceOf(Error);
  for (const attempt of [
    theirs.getTask({ tenant: '', id: task.id }),
    theirs.cancelTask({ tenant: '', id: task.id, metadata: undefined }),
    collect(theirs.resubscribeTask({ tenant: '', id: task.id })),
    theirs.sendMessage(send(message('hijack', { contextId: task.contextId }))),
  ]) {
    const e = (await (attempt as Promise<unknown>).catch((x: Error) => x)) as Error;
    expect(e).toBeInstanceOf(Error);
    expect(e.constructor.name).toBe(missing.constructor.name);
  }
  // Raw JSON-RPC: not JSON-RPC is a 400 naming the field; an unknown method is JSON-RPC's -32601.
  const bad = await call(gw.url, 'POST', `/api/a2a/${APP}/greeter`, { token: alice, body: { jsonrpc: '1.0', method: 'SendMessage' } });
  expect(bad.status).toBe(400);
  expect(bad.text).toContain('jsonrpc');
  const v1 = { 'a2a-version': '1.0' };
  const unknown = await call(gw.url, 'POST', `/api/a2a/${APP}/greeter`, { token: alice, headers: v1, body: { jsonrpc: '2.0', id: 1, method: 'NoSuchMethod', params: {} } });
  expect(unknown.status).toBe(200);
  expect((unknown.json as { error: { code: number } }).error.code).toBe(-32601);
  // No A2A-Version header means 0.3 (the SDK's reading of the spec), which this endpoint does not speak: VersionNotSupported.
  const old = await call(gw.url, 'POST', `/api/a2a/${APP}/greeter`, { token: alice, body: { jsonrpc: '2.0', id: 2, method: 'GetTask', params: { id: task.id } } });
  expect((old.json as { error: { code: number } }).error.code).toBe(-32009);
  // Raw GetTask with the header: the task as JSON, its state by name.
  const raw = await call(gw.url, 'POST', `/api/a2a/${APP}/greeter`, { token: alice, headers: v1, body: { jsonrpc: '2.0', id: 3, method: 'GetTask', params: { id: task.id } } });
  expect(raw.json).toMatchObject({ jsonrpc: '2.0', id: 3, result: { id: task.id, contextId: task.contextId, status: { state: 'TASK_STATE_COMPLETED' } } });
}, 30_000);

test('hostile input: text the database cannot store, no text, a huge id: a JSON-RPC error naming what is wrong, never a 5xx', async () => {
  const client = await clientFor('greeter', alice);
  await expect(client.sendMessage(send(message('a\u0000b')))).rejects.toThrow(/params\.message\.parts/);
  await expect(client.sendMessage(send({ ...message(''), parts: [] }))).rejects.toThrow(/no text part/);
  await expect(client.sendMessage(send(message('hi', { contextId: 'x'.repeat(5000) })))).rejects.toThrow(/no context/);
  await expect(client.getTask({ tenant: '', id: 'x'.repeat(5000) })).rejects.toThrow(/no task/);
  const v1 = { 'a2a-version': '1.0' };
  for (const body of [{ jsonrpc: '2.0', id: 1, method: 'SendMessage', params: { message: 'not an object' } }, { jsonrpc: '2.0', id: 1, method: 'GetTask', params: { id: 42 } }]) {
    const r = await call(gw.url, 'POST', `/api/a2a/${APP}/greeter`, { token: alice, headers: v1, body });
    expect(r.status).toBeLessThan(500);
    expect((r.json as { error?: { code: number; message: string } }).error?.message).toBeTruthy();
  }
}, 30_000);

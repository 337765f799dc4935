/**
 * Workflow agents declared by `blueprint` run on the agent manager's blueprints: a real runtime
 * (this process, its turn worker in it) and a real agent manager (its own process) on one Redis.
 * An edit, through the API or by hand in the files, reaches the next turn without a restart; an
 * inactive, missing or unreachable blueprint is a clear chat.error; the agent manager refuses to
 * delete or deactivate a blueprint an open chat uses, naming the chat. Blueprints are an app's:
 * a chat runs its own app's blueprint of that name, and a 409 names only that app's chats.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Channel } from '@tessera/contracts';
import { createLogger, createRedis, signToken, type RedisClient } from '@tessera/kit';
import { closedPort, spawnService, TEST_REDIS_URL, type ServiceProcess, entryOf } from '@tessera/kit/testing';
import type { ChatRow } from '../src/store/chats';
import { http, ROOT, SECRET, SERVICE_KEY, startRuntime, testEnv, type Env, type RuntimeInstance } from './harness';

const RUN = Math.random().toString(36).slice(2, 8);
const BP = `helper-${RUN}`;
let env: Env;
let rt: RuntimeInstance;
let am: ServiceProcess;
let amUrl: string;
let tmp: string;
/** app1's operator (the chats of these tests are app1's), and app2's, who has a blueprint of the same name. */
let op: string;
let op2: string;
let bus: RedisClient;
const announced: { app_id?: string; name: string; version: number; source: string }[] = [];
/** The system prompt of every model call, as the provider received it. */
const systems: string[] = [];

function workflow(name: string, blueprint: string) {
  return { name, description: 'runs on a blueprint', entry_point: true, starting_agent: 'helper', agents: [{ name: 'helper', blueprint, model: { provider: 'scripted', script: [{ text: 'Done: {{last_user_message}}' }] } }] };
}

beforeAll(async () => {
  env = await testEnv('blueprints');
  tmp = await mkdtemp(join(tmpdir(), 'rt-blueprints-'));
  for (const [name, bp] of [['bp-flow', BP], ['bp-missing', `missing-${RUN}`], ['bp-other', `other-${RUN}`]]) {
    await mkdir(join(tmp, 'workflows', name), { recursive: true });
    await writeFile(join(tmp, 'workflows', name, 'workflow.json'), JSON.stringify(workflow(name, bp)));
  }
  const port = await closedPort();
  amUrl = `http://127.0.0.1:${port}`;
  // A cache that outlives the test: whatever reaches a turn got there by an announcement.
  rt = await startRuntime(env, { extra: { WORKFLOWS_DIR: join(tmp, 'workflows'), AGENTS_URL: amUrl, BLUEPRINT_CACHE_MS: '600000' } });
  const providers = rt.s.providers;
  const get = providers.get.bind(providers);
  providers.get = (name) => {
    const p = get(name);
    return { ...p, stream: (req, signal) => (systems.push(req.system), p.stream(req, signal)) };
  };
  am = await spawnService({
    name: 'agent-manager',
    entry: resolve(ROOT, entryOf('agent-manager')),
    cwd: ROOT,
    env: { NODE_ENV: 'test', REDIS_URL: TEST_REDIS_URL, JWT_SECRET: SECRET, SERVICE_KEY, AGENT_MANAGER_PROJECT_DIR: join(tmp, 'project'), RUNTIME_URL: rt.url, OBSERVABILITY_URL: 'off', PORT: String(port), HOST: '127.0.0.1', LOG_LEVEL: 'warn' },
    ready: { url: `${amUrl}/health` },
    timeoutMs: 20_000,
  });
  op = await signToken(SECRET, { sub: 'op-1', roles: ['operator'], apps: ['app1'] }, { expiresIn: '1h' });
  op2 = await signToken(SECRET, { sub: 'op-2', roles: ['operator'], apps: ['app2'] }, { expiresIn: '1h' });
  bus = createRedis(TEST_REDIS_URL, createLogger('blueprints-test', 'silent'), 'blueprints-test-bus', { maxRetriesPerRequest: null });
  bus.on('smessage', (_c: string, m: string) => announced.push(JSON.parse(m)));
  await bus.ssubscribe(Channel.agentChanges.name());
}, 60_000);
afterAll(async () => {
  await bus?.quit();
  await am?.stop();
  await rt?.close();
  await env?.dropSchema();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

async function newChat(workflowName = 'bp-flow', appId = 'app1'): Promise<ChatRow> {
  return (await rt.s.starter.start({ appId, userId: 'u1', workflowName, backendContext: null, uiContext: null })).chat;
}

/** One user message and what the turn made the user see. */
async function turn(chat: ChatRow, text: string) {
  const from = (await rt.s.chats.get(chat.id))!.lastIndex;
  const { input } = await rt.s.chatInputs.submitMessage(chat, text);
  for (let i = 0; (await rt.s.inputs.get(input.id))!.status !== 'done'; i++) {
    if (i > 400) throw new Error('turn did not finish');
    await new Promise((r) => setTimeout(r, 25));
  }
  const events = await rt.s.timeline.after(chat.id, from, 1000);
  const data = (type: string) => events.find((e) => e.type === type)?.data as any;
  return { error: data('chat.error'), run: data('chat.run_complete'), usage: data('chat.usage_delta'), reply: events.find((e) => e.type === 'chat.text' && (e.data as any).role === 'assistant' && (e.data as any).done)?.data as any };
}

/** The announcement of `version` of app1's blueprint reached Redis (the runtime's worker subscribes to the same channel). */
async function announcedVersion(version: number, source = 'api', app = 'app1') {
  for (let i = 0; !announced.some((c) => c.app_id === app && c.name === BP && c.version === version && c.source === source); i++) {
    if (i > 200) throw new Error(`version ${version} of ${BP} was not announced`);
    await new Promise((r) => setTimeout(r, 25));
  }
  await new Promise((r) => setTimeout(r, 50));
}

/** The scripted provider's count (scripted.ts): reply priming, then per message 3 of framing and a token per 4 characters. */
const promptTokens = (...messages: string[]) => 3 + messages.reduce((n, m) => n + 3 + Math.ceil(m.length / 4), 0);

test('an edited system prompt, through the API or by hand in the files, reaches the next turn without a restart', async () => {
  const created = await http(amUrl, 'POST', '/agents', { name: BP, description: 'helps', system_prompt: 'You are version one.' }, op);
  expect(created.status).toBe(201);
  const chat = await newChat();

  const one = await turn(chat, 'hi');
  expect(one.reply.content).toBe('Done: hi');
  expect(systems.at(-1)).toBe('You are version one.');
  // What the client sees: the prompt is in the usage the turn reports.
  expect(one.usage.prompt_tokens).toBe(promptTokens('You are version one.', 'hi'));

  expect((await http(amUrl, 'PATCH', `/agents/${BP}`, { system_prompt: 'You are version two, edited through the API.' }, op)).status).toBe(200);
  await announcedVersion(2);
  await turn(chat, 'again');
  expect(systems.at(-1)).toBe('You are version two, edited through the API.');

  await writeFile(join(tmp, 'project/.agent-orchestrator/apps/app1/agents', BP, 'agent.system-prompt.md'), 'You are version three, written by hand in the file.');
  await announcedVersion(3, 'files');
  const three = await turn(chat, 'once more');
  expect(systems.at(-1)).toBe('You are version three, written by hand in the file.');
  expect(three.error).toBeUndefined();
  expect(three.run.status).toBe('completed');
});

test("a chat runs its own app's blueprint: the same name in another app, and that app's edits, do not reach it", async () => {
  const other = await http(amUrl, 'POST', '/agents', { name: BP, description: "app2's", system_prompt: 'You are app2’s helper.' }, op2);
  expect(other.status).toBe(201);
  const mine = await newChat();
  const theirs = await newChat('bp-flow', 'app2');
  await turn(mine, 'hi');
  expect(systems.at(-1)).toBe('You are version three, written by hand in the file.');
  await turn(theirs, 'hi');
  expect(systems.at(-1)).toBe('You are app2’s helper.');

  // app2's edit is announced with its app: app2's next turn has it, app1's copy stays.
  expect((await http(amUrl, 'PATCH', `/agents/${BP}`, { system_prompt: 'You are app2’s helper, edited.' }, op2)).status).toBe(200);
  await announcedVersion(2, 'api', 'app2');
  await turn(theirs, 'again');
  expect(systems.at(-1)).toBe('You are app2’s helper, edited.');
  await turn(mine, 'again');
  expect(systems.at(-1)).toBe('You are version three, written by hand in the file.');

  // app2 deactivates its own: app1's chat goes on; app2's is refused.
  expect((await http(amUrl, 'PATCH', `/agents/${BP}/status?force=true`, { status: 'inactive' }, op2)).status).toBe(200);
  await announcedVersion(3, 'api', 'app2');
  expect((await turn(mine, 'still?')).reply.content).toBe('Done: still?');
  expect((await turn(theirs, 'still?')).error.error_code).toBe('BLUEPRINT_INACTIVE');
  expect((await http(amUrl, 'PATCH', `/agents/${BP}/status`, { status: 'active' }, op2)).status).toBe(200);
  await announcedVersion(4, 'api', 'app2');
});

test('while a chat uses the blueprint, delete and deactivation are refused naming it; forced inactive, the next turn fails with BLUEPRINT_INACTIVE', async () => {
  const chat = await newChat();
  await turn(chat, 'hello');

  const internal = await http(rt.url, 'GET', `/api/internal/blueprints/${BP}/active-chats?app_id=app1`, undefined, undefined, { 'x-tessera-service-key': SERVICE_KEY });
  expect(internal.status).toBe(200);
  // The workflows with an agent on it, and the chat with the agent itself (agent.<name>).
  expect(internal.body).toMatchObject({ blueprint: BP, workflows: ['bp-flow', `agent.${BP}`], chats: expect.arrayContaining([expect.objectContaining({ chat_id: chat.id, workflow_name: 'bp-flow', app_id: 'app1' })]) });
  expect(internal.body.chats.every((c: any) => c.app_id === 'app1')).toBe(true);
  // The app is asked for: without it, a 400.
  expect((await http(rt.url, 'GET', `/api/internal/blueprints/${BP}/active-chats`, undefined, undefined, { 'x-tessera-service-key': SERVICE_KEY })).status).toBe(400);
  expect((await http(rt.url, 'GET', `/api/internal/blueprints/${BP}/active-chats`)).status).toBe(401);
  expect((await http(rt.url, 'GET', `/api/internal/blueprints/${BP}/active-chats`, undefined, undefined, { 'x-tessera-service-key': 'wrong-key-0123456789abc' })).status).toBe(401);

  const theirs = await newChat('bp-flow', 'app2');
  const del = await http(amUrl, 'DELETE', `/agents/${BP}`, undefined, op);
  expect(del.status).toBe(409);
  expect(del.body.error.message).toContain(chat.id);
  // Only app1's chats: app2's open chat on its own blueprint of that name is not named.
  expect(del.body.error.details.sessions.map((x: any) => x.app_id)).toEqual(expect.arrayContaining(['app1']));
  expect(del.body.error.details.sessions.every((x: any) => x.app_id === 'app1')).toBe(true);
  expect(JSON.stringify(del.body)).not.toContain(theirs.id);
  const del2 = await http(amUrl, 'DELETE', `/agents/${BP}`, undefined, op2);
  expect(del2.status).toBe(409);
  expect(del2.body.error.details.sessions.map((x: any) => x.session_id)).toEqual(expect.arrayContaining([theirs.id]));
  expect(del2.body.error.details.sessions.every((x: any) => x.app_id === 'app2')).toBe(true);
  expect(JSON.stringify(del2.body)).not.toContain(chat.id);
  expect(del.body.error.details.sessions).toEqual(expect.arrayContaining([{ session_id: chat.id, source: 'runtime', workflow: 'bp-flow', app_id: 'app1', status: 'in_progress' }]));
  const off = await http(amUrl, 'PATCH', `/agents/${BP}/status`, { status: 'inactive' }, op);
  expect(off.status).toBe(409);
  expect(off.body.error.message).toContain(chat.id);
  expect((await http(amUrl, 'GET', `/agents/${BP}`, undefined, op)).body.status).toBe('active');

  const forced = await http(amUrl, 'PATCH', `/agents/${BP}/status?force=true`, { status: 'inactive' }, op);
  expect(forced.status).toBe(200);
  await announcedVersion(4);
  const refused = await turn(chat, 'are you there?');
  expect(refused.error).toEqual({ error_code: 'BLUEPRINT_INACTIVE', message: `Agent "helper": blueprint "${BP}" is inactive in the agent manager: new turns are refused until an operator activates it` });
  expect(refused.run.status).toBe('failed');
  expect(refused.reply).toBeUndefined();

  // Active again: the same chat goes on.
  expect((await http(amUrl, 'PATCH', `/agents/${BP}/status`, { status: 'active' }, op)).status).toBe(200);
  await announcedVersion(5);
  expect((await turn(chat, 'back?')).reply.content).toBe('Done: back?');
});

test('a missing blueprint and an unreachable agent manager are clear chat.errors; the runtime keeps serving', async () => {
  const missing = await turn(await newChat('bp-missing'), 'hi');
  expect(missing.error).toEqual({ error_code: 'BLUEPRINT_NOT_FOUND', message: `Agent "helper": blueprint "missing-${RUN}" does not exist in the agent manager` });

  // Deletion once no open chat uses it (the chats of the earlier tests are closed).
  await rt.s.db.pool.query(`UPDATE chats SET status = 'completed' WHERE workflow_name = 'bp-flow'`);
  expect((await http(amUrl, 'DELETE', `/agents/${BP}`, undefined, op)).body).toEqual({ success: true, message: 'Agent deleted successfully' });

  await am.stop();
  const down = await turn(await newChat('bp-other'), 'hi');
  expect(down.error.error_code).toBe('BLUEPRINT_UNAVAILABLE');
  expect(down.error.message).toContain(`blueprint "other-${RUN}" could not be loaded: the agent manager is unreachable (ECONNREFUSED)`);
  expect(down.run.status).toBe('failed');
  expect((await http(rt.url, 'GET', '/health')).status).toBe(200);
});

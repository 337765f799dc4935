/**
 * Observability with a real runtime (spawned as `npm start` runs it, its turn worker embedded) on
 * the same Redis and BullMQ prefix: the runtime's chats show up as sessions, and a stop sent
 * through observability ends the runtime's turn.
 */
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { signToken } from '@tessera/kit';
import { closedPort, freshSchema, spawnService, TEST_REDIS_URL, TestSocket, type Envelope, type ServiceProcess, entryOf } from '@tessera/kit/testing';
import { http, operator, ROOT, SECRET, SERVICE_KEY, startObservability, testEnv, until, type Env, type Instance } from './harness';

let env: Env;
let obs: Instance;
let runtime: ServiceProcess & { url: string };
let dropRuntime: () => Promise<void>;
let workflows: string;
let op: string;
let user: string;

beforeAll(async () => {
  env = await testEnv('runtime');
  obs = await startObservability(env);
  op = await operator(['app1']);
  user = await signToken(SECRET, { sub: 'u1', apps: ['app1'] }, { expiresIn: '1h' });
  const schema = await freshSchema(join(ROOT, 'apps/runtime/prisma/migrations'), 'obs_rt');
  dropRuntime = schema.drop;
  workflows = mkdtempSync(join(tmpdir(), 'obs-workflows-'));
  cpSync(join(ROOT, 'apps/runtime/workflows'), workflows, { recursive: true });
  cpSync(resolve(__dirname, 'fixtures/workflows'), workflows, { recursive: true });
  const port = await closedPort();
  const proc = await spawnService({
    name: 'runtime',
    entry: join(ROOT, entryOf('runtime')),
    cwd: ROOT,
    env: {
      NODE_ENV: 'test',
      LOG_LEVEL: 'warn',
      REDIS_URL: TEST_REDIS_URL,
      DATABASE_URL: schema.url,
      BULL_PREFIX: env.BULL_PREFIX,
      JWT_SECRET: SECRET,
      SERVICE_KEY,
      OBSERVABILITY_EVENTS: 'true',
      EMBEDDED_WORKER: 'true',
      WORKFLOWS_DIR: workflows,
      HOST: '127.0.0.1',
      PORT: String(port),
      SHUTDOWN_TIMEOUT_MS: '3000',
    },
    ready: { url: `http://127.0.0.1:${port}/ready` },
  });
  runtime = { ...proc, url: `http://127.0.0.1:${port}` };
}, 60_000);
afterAll(async () => {
  await runtime?.stop();
  await obs?.close();
  await dropRuntime?.();
  await env?.dropSchema();
  if (workflows) rmSync(workflows, { recursive: true, force: true });
});

async function chatWith(workflow: string): Promise<{ chat: string; socket: TestSocket }> {
  const r = await http(runtime.url, 'POST', `/api/chats/app1/${workflow}/start`, { token: user, body: { user_id: 'u1', force_new: true } });
  expect(r.status).toBe(201);
  const chat = r.body.chat_id as string;
  const socket = await TestSocket.connect(`${runtime.url.replace('http', 'ws')}/ws/${workflow}/app1/${chat}/u1?access_token=${encodeURIComponent(user)}`);
  return { chat, socket };
}

const isRunComplete = (m: Envelope) => m.type === 'chat.run_complete';

test("a runtime chat shows up as a session with its events, in the timeline's order, and its token usage", async () => {
  const { chat, socket } = await chatWith('assistant');
  try {
    socket.send({ type: 'user.input.submit', text: 'hello observability' });
    await socket.waitFor(isRunComplete, 20_000);
    // The socket saw the whole timeline; the session must hold exactly those events.
    const lastIndex = Math.max(...socket.timeline().map((m) => m.index!));
    const session = await until(async () => {
      const r = await http(obs.url, 'GET', `/sessions/${chat}`, { token: op });
      return r.status === 200 && r.body.event_count === lastIndex && r.body;
    }, 15_000, 'the chat as a session with every event');
    // The agent is the one that answered, not the user who wrote first (issue 19, item 2).
    expect(session).toMatchObject({ session_id: chat, source: 'runtime', app_id: 'app1', user_id: 'u1', workflow: 'assistant', agent_name: 'assistant', status: 'finished', error_count: 0 });
    expect(session.usage.total_tokens).toBeGreaterThan(0);
    expect(session.usage.total_tokens).toBe(session.usage.input_tokens + session.usage.output_tokens);
    const events = (await http(obs.url, 'GET', `/events/${chat}?limit=1000`, { token: op })).body.events as { seq: number; event_type: string; event_id: string; attributes: Record<string, unknown> }[];
    const timeline = [...new Map(socket.timeline().map((m) => [m.index!, m])).values()].sort((a, b) => a.index! - b.index!);
    expect(events.map((e) => [e.seq, e.event_id, e.event_type])).toEqual(timeline.map((m, i) => [i + 1, `rt:${m.index}`, m.type]));
    expect(events.every((e) => e.attributes['gen_ai.conversation.id'] === chat)).toBe(true);
    const replies = events.filter((e) => e.event_type === 'chat.text' && e.attributes['gen_ai.agent.name'] !== undefined);
    expect(replies.length).toBeGreaterThan(0);
    // The usage rolled up equals what the runtime reported per model call.
    const deltas = timeline.filter((m) => m.type === 'chat.usage_delta');
    expect(session.usage.input_tokens).toBe(deltas.reduce((n, m) => n + Number(m.data.prompt_tokens), 0));
    expect(session.usage.output_tokens).toBe(deltas.reduce((n, m) => n + Number(m.data.completion_tokens), 0));
  } finally {
    await socket.close();
  }
}, 60_000);

test("stop through observability ends the runtime's turn within a second, and both say stopped", async () => {
  const { chat, socket } = await chatWith('slow');
  try {
    socket.send({ type: 'user.input.submit', text: 'a long story' });
    await socket.waitFor((m) => m.type === 'chat.text' && m.data.role === 'assistant', 20_000);
    // The session exists once the runtime's first events are stored (its queue gathers them for 250 ms).
    await until(async () => (await http(obs.url, 'GET', `/sessions/${chat}`, { token: op })).body.status === 'running', 10_000, 'the running session');
    const t0 = Date.now();
    const stop = await http(obs.url, 'POST', `/sessions/${chat}/stop`, { token: op });
    expect(stop.status).toBe(200);
    const done = await socket.waitFor(isRunComplete, 5_000);
    expect(Date.now() - t0).toBeLessThan(1_000);
    expect(done.data.status).toBe('stopped');
    const meta = await http(runtime.url, 'GET', `/api/chats/meta/app1/slow/${chat}`, { token: user });
    expect(meta.body.status).toBe('stopped');
    // The runtime's own run_complete arrives later on the queue and leaves the session stopped.
    await until(async () => {
      const ev = (await http(obs.url, 'GET', `/events/${chat}?event_type=chat.run_complete`, { token: op })).body.events;
      return ev?.length === 1;
    }, 10_000, "the runtime's run_complete stored");
    expect((await http(obs.url, 'GET', `/sessions/${chat}`, { token: op })).body.status).toBe('stopped');
    expect((await http(obs.url, 'POST', `/sessions/${chat}/stop`, { token: op })).status).toBe(409);
  } finally {
    await socket.close();
  }
}, 60_000);

/**
 * The example workflows as a client meets them: the agent that speaks first, a handoff between
 * agents within one turn, and backend context reaching the agent's words.
 */
import { TestSocket } from '@tessera/kit/testing';
import { loadWorkflows } from '../src/engine/workflows';
import { http, SERVICE_KEY, startRuntime, testEnv, token, transcript, wsUrl, type Env, type RuntimeInstance } from './harness';

let env: Env;
let rt: RuntimeInstance;

beforeAll(async () => {
  env = await testEnv('wf');
  rt = await startRuntime(env);
});
afterAll(async () => {
  await rt?.close();
  await env?.dropSchema();
});

test('the greeter speaks first when the first socket connects, and only once', async () => {
  const tok = await token('gina');
  const { body } = await http(rt.url, 'POST', '/api/chats/app1/greeter/start', { user_id: 'gina' }, tok);
  const c = await TestSocket.connect(wsUrl(rt.wsUrl, 'greeter', 'app1', body.chat_id, 'gina', tok));
  c.send({ type: 'client.resume', lastClientIndex: 0 });
  const done = await c.waitType('chat.run_complete', 15_000);
  expect(done.data.status).toBe('completed');
  const lines = transcript(c.timeline());
  expect(lines[0]).toMatch(/^assistant:/); // no user message before it
  await c.close();
  const again = await TestSocket.connect(wsUrl(rt.wsUrl, 'greeter', 'app1', body.chat_id, 'gina', tok));
  again.send({ type: 'client.resume', lastClientIndex: 0 });
  await again.waitType('chat.resume_boundary');
  // A message after it: handled once the socket has opened (a second greeting would have been
  // queued then), and a chat's inputs are taken in order, so a greeting would end before its turn.
  again.send({ type: 'user.input.submit', text: 'hello again' });
  const answered = () => {
    const tl = again.timeline();
    const asked = tl.findIndex((e) => e.type === 'chat.text' && e.data.role === 'user');
    return asked >= 0 && tl.slice(asked).some((e) => e.type === 'chat.run_complete');
  };
  await again.waitFor(answered, 15_000);
  expect(again.timeline().filter((e) => e.type === 'chat.run_complete')).toHaveLength(2);
  await again.close();
});

test('a handoff moves the conversation to the specialist within the turn', async () => {
  const tok = await token('hank');
  const { body } = await http(rt.url, 'POST', '/api/chats/app1/handoff/start', { user_id: 'hank' }, tok);
  const c = await TestSocket.connect(wsUrl(rt.wsUrl, 'handoff', 'app1', body.chat_id, 'hank', tok));
  c.send({ type: 'user.input.submit', text: 'I have a billing question' });
  await c.waitType('chat.run_complete');
  const handoff = c.timeline().find((e) => e.type === 'chat.custom_event');
  expect(handoff?.data).toEqual({ kind: 'handoff', payload: { from: 'triage', to: 'specialist' } });
  const agents = c.timeline().filter((e) => e.type === 'chat.text' && e.data.done && e.data.role === 'assistant').map((e) => e.data.agent);
  expect(agents).toEqual(['triage', 'specialist']);
  await c.close();
});

test('the handoff example hands over on billing words besides "billing" (its description names them)', async () => {
  const tok = await token('hope');
  for (const text of ['I was charged twice', 'Where is my invoice?', 'Can I get a refund?']) {
    const { body } = await http(rt.url, 'POST', '/api/chats/app1/handoff/start', { user_id: 'hope', force_new: true }, tok);
    const c = await TestSocket.connect(wsUrl(rt.wsUrl, 'handoff', 'app1', body.chat_id, 'hope', tok));
    c.send({ type: 'user.input.submit', text });
    await c.waitType('chat.run_complete');
    const agents = c.timeline().filter((e) => e.type === 'chat.text' && e.data.done && e.data.role === 'assistant').map((e) => e.data.agent);
    expect({ text, agents }).toEqual({ text, agents: ['triage', 'specialist'] });
    await c.close();
  }
});

test('each workflow says in the list what it needs and when it acts: a model server, a blueprint, the words its script hands over on', async () => {
  const listed = (await http(rt.url, 'GET', '/api/workflows')).body as Record<string, { description: string }>;
  const files = loadWorkflows(rt.s.config.WORKFLOWS_DIR);
  expect(Object.keys(listed).sort()).toEqual([...files.keys()].sort());
  const missing: string[] = [];
  for (const w of files.values()) {
    const says = listed[w.name].description;
    if (w.agents.some((a) => a.model.provider !== 'scripted') && !/needs a model server/i.test(says)) missing.push(`${w.name}: that it needs a model server`);
    for (const a of w.agents) {
      if (a.blueprint !== undefined && !says.includes(`"${a.blueprint}"`)) missing.push(`${w.name}: the blueprint "${a.blueprint}" its agent runs on`);
      // Scripted handoffs on a keyword: the words a user must say.
      for (const r of a.model.script ?? [])
        if (r.when && !r.when.startsWith('@') && r.tool_calls?.some((t) => t.tool.startsWith('transfer_to_')) && !says.includes(r.when)) missing.push(`${w.name}: the word "${r.when}" its agent ${a.name} hands over on`);
    }
  }
  expect(missing).toEqual([]);
});

test("backend context reaches the agent's words; client context cannot pose as it", async () => {
  const tok = await token('ivy');
  const start = await http(rt.url, 'POST', '/api/chat/start', { app_id: 'app1', user_id: 'ivy', workflow_name: 'assistant', initial_context: { user_tier: 'enterprise' } }, tok, {
    'x-tessera-service-key': SERVICE_KEY,
  });
  const c = await TestSocket.connect(wsUrl(rt.wsUrl, 'assistant', 'app1', start.body.chat_id, 'ivy', tok));
  c.send({ type: 'user.input.submit', text: 'what plan am I on?', context: { user_tier: 'free' } });
  await c.waitType('chat.run_complete');
  const reply = transcript(c.timeline()).find((l) => l.startsWith('assistant:'))!;
  expect(reply).toContain('enterprise');
  expect(reply).not.toContain('free');
  expect((await rt.s.chats.get(start.body.chat_id))!.context).toMatchObject({ user_tier: 'enterprise', ui_user_tier: 'free' });
  await c.close();
});

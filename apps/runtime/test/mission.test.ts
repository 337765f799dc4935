/**
 * Mission Ally (document 002) on a real runtime with its worker: the conversation, checkpoints,
 * completion, handover, queued messages, bad messages, refusals, and history from another instance.
 */
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { signToken } from '@tessera/kit';
import { http, startRuntime, testEnv, token, type Env, type RuntimeInstance } from './harness';
import { createMission, Learner, MISSION, missionUrl, operatorToken } from './mission-client';

let env: Env;
let rt: RuntimeInstance;
let rt2: RuntimeInstance;
let workflows: string;

beforeAll(async () => {
  env = await testEnv('mission');
  // The shipped workflows and the fixtures' slow one (a mission may name any workflow as its tutor).
  workflows = mkdtempSync(join(tmpdir(), 'mission-workflows-'));
  cpSync(resolve(__dirname, '../workflows'), workflows, { recursive: true });
  cpSync(resolve(__dirname, 'fixtures/workflows'), workflows, { recursive: true });
  const extra = { WORKFLOWS_DIR: workflows };
  [rt, rt2] = await Promise.all([startRuntime(env, { extra }), startRuntime(env, { worker: false, extra })]);
});
afterAll(async () => {
  await Promise.allSettled([rt?.close(), rt2?.close()]);
  await env?.dropSchema();
  if (workflows) rmSync(workflows, { recursive: true, force: true });
});

const agentText = (l: Learner) => l.messages.filter((m) => m.type === 'agent_message').map((m) => m.message);

test('the document flow: connected, history, a turn streamed, a checkpoint, completion with session_closed and 1000', async () => {
  const id = await createMission(rt.url, ['ada']);
  const l = Learner.open(missionUrl(rt.url, id, await token('ada')));
  await l.until((m) => m.length >= 2);
  expect(l.messages[0]).toEqual({ type: 'connected', message: expect.stringContaining(MISSION.title) });
  expect(l.messages[1]).toEqual({ type: 'historical_messages', messages: [] });

  l.say("Hello, I'm ready to start learning!");
  await l.ends(1);
  // Streamed sentence by sentence, each an agent_message of its own.
  expect(l.types().slice(2)).toEqual(['agent_processing_start', ...Array(4).fill('agent_message'), 'agent_processing_end']);
  expect(agentText(l).join(' ')).toBe(`Hello! I am your Mission Ally for "${MISSION.title}". Tell me what you have done so far. Say help if you are stuck.`);

  l.say('I have installed everything');
  await l.ends(2);
  const turn2 = l.messages.slice(l.types().lastIndexOf('agent_processing_start'));
  expect(turn2.map((m) => m.type)).toEqual(['agent_processing_start', 'agent_message', 'checkpoint_update', 'agent_message', 'agent_message', 'agent_processing_end']);
  expect(turn2[2]).toEqual({ type: 'checkpoint_update', completed_checkpoints: ['cp_install'], progress: 50 });
  expect(turn2[3].message).toBe('Well done: "Install the tools" is complete.');

  // Saying it again does not complete it twice: no checkpoint_update.
  l.say('installed, as I said');
  await l.ends(3);
  expect(l.types().filter((t) => t === 'checkpoint_update')).toHaveLength(1);

  l.say('I ran it and it answered');
  const closed = await l.closed;
  expect(closed.code).toBe(1000);
  const tail = l.types().slice(l.types().lastIndexOf('agent_processing_start'));
  expect(tail).toEqual(['agent_processing_start', 'agent_message', 'checkpoint_update', 'agent_message', 'agent_message', 'agent_processing_end', 'session_closed']);
  expect(l.messages.find((m) => m.type === 'checkpoint_update' && m.progress === 100)!.completed_checkpoints).toEqual(['cp_install', 'cp_run']);
  expect(l.messages.at(-1)).toEqual({ type: 'session_closed', message: expect.stringMatching(/completed the mission/) });

  // The operator sees it, and the learner cannot open the finished mission again.
  const p = await http(rt.url, 'GET', `/api/v1/mission-ally/missions/${id}/enrollments/ada`, undefined, await operatorToken());
  expect(p.body).toMatchObject({ status: 'completed', progress: 100, completed_checkpoints: ['cp_install', 'cp_run'] });
  const again = Learner.open(missionUrl(rt.url, id, await token('ada')));
  expect((await again.closed).code).toBe(1008);
  expect(again.messages).toEqual([{ type: 'error', message: 'This mission is already completed' }]);
});

test('a handover to mission_sensei, once', async () => {
  const id = await createMission(rt.url, ['bo']);
  const l = Learner.open(missionUrl(rt.url, id, await token('bo')));
  await l.until((m) => m.length >= 2);
  l.say('I need help');
  await l.ends(1);
  expect(l.messages.filter((m) => m.type === 'agent_handover')).toEqual([{ type: 'agent_handover', agent: 'mission_sensei', message: 'Handing over to mission_sensei...' }]);
  expect(agentText(l).join(' ')).toBe(
    'Let me bring in Mission Sensei, who knows this mission inside out. Mission Sensei here. Break the next checkpoint into small steps, and tell me when one is done.',
  );
  l.say('help again please');
  await l.ends(2);
  expect(l.messages.filter((m) => m.type === 'agent_handover')).toHaveLength(1);
  expect(agentText(l).slice(-2)).toEqual(['Mission Sensei here.', 'Keep going, and tell me which checkpoint you have finished.']);
  await l.close();
});

test('messages sent while the tutor processes are all answered, in order; two sockets of the learner both see them', async () => {
  const id = await createMission(rt.url, ['cy']);
  const tok = await token('cy');
  const a = Learner.open(missionUrl(rt.url, id, tok));
  const b = Learner.open(missionUrl(rt2.url, id, tok));
  await Promise.all([a.until((m) => m.length >= 2), b.until((m) => m.length >= 2)]);
  for (let i = 1; i <= 5; i++) a.say(`question ${i}`);
  await Promise.all([a.ends(5), b.ends(5)]);
  for (const l of [a, b]) {
    const flow = l.types().slice(2);
    expect(flow.filter((t) => t === 'agent_processing_start')).toHaveLength(5);
    // start, …, end, start, …, end: never two starts without an end between them.
    expect(flow.join(',').replace(/agent_message,/g, '')).toBe(Array(5).fill('agent_processing_start,agent_processing_end').join(','));
  }
  const h = Learner.open(missionUrl(rt2.url, id, tok));
  await h.until((m) => m.length >= 2);
  const users = h.messages[1].messages.filter((m: { type: string }) => m.type === 'user_message').map((m: { message: string }) => m.message);
  expect(users).toEqual(['question 1', 'question 2', 'question 3', 'question 4', 'question 5']);
  await Promise.all([a.close(), b.close(), h.close()]);
});

test('reconnecting to another runtime instance returns the history as the live socket got it, one agent_message per sentence', async () => {
  const id = await createMission(rt.url, ['di']);
  const tok = await token('di');
  const first = Learner.open(missionUrl(rt.url, id, tok));
  await first.until((m) => m.length >= 2);
  first.say('hello there');
  await first.ends(1);
  await first.close();
  const live = agentText(first);
  expect(live).toHaveLength(4);
  const second = Learner.open(missionUrl(rt2.url, id, tok));
  await second.until((m) => m.length >= 2);
  expect(second.messages[1]).toEqual({
    type: 'historical_messages',
    messages: [{ type: 'user_message', message: 'hello there' }, ...live.map((message) => ({ type: 'agent_message', message }))],
  });
  await second.close();
});

test('a socket opened while a reply streams: its history and what follows live add up to what a socket open all along got', async () => {
  const id = await createMission(rt.url, ['fa'], { workflow_name: 'slow' });
  const tok = await token('fa');
  const along = Learner.open(missionUrl(rt.url, id, tok));
  await along.until((m) => m.length >= 2);
  along.say('Ada');
  // Mid-reply: some of the reply (one sentence, ~60 words 8 ms apart) is in the timeline, not all.
  const streamed = async () => {
    const r = await rt.s.db.pool.query(
      `SELECT count(*)::int AS n FROM chat_events e JOIN chats c ON c.id = e.chat_id
       WHERE c.user_id = 'fa' AND e.type = 'chat.text' AND e.data->>'role' = 'assistant' AND e.data->>'done' = 'false'`,
    );
    return r.rows[0].n as number;
  };
  for (const end = Date.now() + 10_000; (await streamed()) === 0; ) {
    if (Date.now() > end) throw new Error('the reply never started');
    await new Promise((r) => setTimeout(r, 10));
  }
  const late = Learner.open(missionUrl(rt2.url, id, tok));
  await Promise.all([along.ends(1), late.ends(1)]);
  expect(late.messages[1].type).toBe('historical_messages');
  const lateBubbles = [...late.messages[1].messages.filter((m: { type: string }) => m.type === 'agent_message').map((m: { message: string }) => m.message), ...agentText(late)];
  expect(agentText(along)).toHaveLength(1);
  expect(agentText(along)[0]).toMatch(/^Once upon a time a message named Ada .* somewhere else entirely\.$/);
  expect(lateBubbles).toEqual(agentText(along));
  expect(late.types().slice(2)).toEqual(['agent_processing_start', 'agent_message', 'agent_processing_end']);
  await Promise.all([along.close(), late.close()]);
});

test('bad messages get an error and the socket stays; ping gets pong', async () => {
  const id = await createMission(rt.url, ['ed']);
  const l = Learner.open(missionUrl(rt.url, id, await token('ed')));
  await l.until((m) => m.length >= 2);
  l.send('not json');
  l.send({ type: 'shout', message: 'x' });
  l.send({ type: 'user_message' });
  l.send({ type: 'user_message', message: '' });
  l.send({ type: 'user_message', message: 42 });
  l.ws.send(Buffer.from([1, 2, 3]), { binary: true });
  l.send({ type: 'ping' });
  await l.until((m) => m.some((x) => x.type === 'pong'));
  const errors = l.messages.filter((m) => m.type === 'error').map((m) => m.message);
  expect(errors).toEqual([
    'Invalid message format: not valid JSON',
    'Invalid message format: unknown type "shout"; expected one of user_message, ping',
    expect.stringMatching(/^Invalid message format: field 'message'/),
    expect.stringMatching(/^Invalid message format: field 'message' must be at least 1 character/),
    expect.stringMatching(/^Invalid message format: field 'message'/),
    'Invalid message format: binary frames are not supported; send JSON text',
  ]);
  l.say('still here?');
  await l.ends(1);
  expect(l.ws.readyState).toBe(l.ws.OPEN);
  await l.close();
});

describe('refusals: error then 1008', () => {
  let id: string;
  beforeAll(async () => {
    id = await createMission(rt.url, ['fay']);
  });
  const refused = async (url: string, headers?: Record<string, string>) => {
    const l = Learner.open(url, headers);
    const c = await l.closed;
    expect(c.code).toBe(1008);
    expect(l.messages).toHaveLength(1);
    expect(l.messages[0].type).toBe('error');
    return l.messages[0].message as string;
  };
  test('no token', async () => expect(await refused(missionUrl(rt.url, id))).toMatch(/missing token/));
  test('a bad token (wrong key, expired)', async () => {
    expect(await refused(missionUrl(rt.url, id, await signToken('another-secret-of-32-characters!!', { sub: 'fay' })))).toMatch(/signature/);
    expect(await refused(missionUrl(rt.url, id, await token('fay', ['app1'], {}, -60)))).toMatch(/expired/);
  });
  test('an unknown mission, or one of an app the token does not allow', async () => {
    expect(await refused(missionUrl(rt.url, 'nope', await token('fay')))).toBe('Mission not found');
    expect(await refused(missionUrl(rt.url, id, await token('fay', ['other-app'])))).toBe('Mission not found');
    expect(await refused(missionUrl(rt.url, null, await token('fay')))).toBe('mission_id is required');
  });
  test('not enrolled', async () => expect(await refused(missionUrl(rt.url, id, await token('gus')))).toBe('You are not enrolled in this mission'));
  test('the cookie and header ways are read (a bad one is refused, not skipped)', async () => {
    const bad = 'not.a.jwt';
    expect(await refused(missionUrl(rt.url, id), { cookie: `token=${bad}` })).toMatch(/malformed/);
    expect(await refused(missionUrl(rt.url, id), { cookie: `session=${bad}` })).toMatch(/malformed/);
    expect(await refused(missionUrl(rt.url, id), { authorization: `Bearer ${bad}` })).toMatch(/malformed/);
    // Query first: a good query token wins over a bad cookie.
    const ok = Learner.open(missionUrl(rt.url, id, await token('fay')), { cookie: `token=${bad}` });
    await ok.until((m) => m[0]?.type === 'connected');
    await ok.close();
  });
});

test("a learner's spent budget: the tutor's turn ends with an error message in the budget's words, and the socket stays", async () => {
  const op = await operatorToken();
  expect((await http(rt.url, 'PUT', '/api/budgets/app1/users/bea', { tokens_per_day: 1 }, op)).status).toBe(200);
  const id = await createMission(rt.url, ['bea']);
  const l = Learner.open(missionUrl(rt.url, id, await token('bea')));
  await l.until((m) => m.some((x) => x.type === 'historical_messages'));
  // Nothing spent yet: the first turn runs and spends; the second is refused before any model call.
  l.say('hello');
  await l.ends(1);
  l.say('and now?');
  const [error] = (await l.until((m) => m.some((x) => x.type === 'error'))).filter((x) => x.type === 'error');
  expect(error.message).toMatch(/^Your daily budget of 1 tokens is spent; it resets at /);
  l.send({ type: 'ping' });
  await l.until((m) => m.some((x) => x.type === 'pong'));
  await l.close();
});

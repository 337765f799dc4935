/**
 * Mission Ally (document 002) end to end: gateway (this process) → runtime HTTP+WS and its turn
 * worker (child processes), real Redis and PostgreSQL, with each of the document's three token
 * ways, its refusals, and the document's own MissionAllyClient class driving a whole mission.
 */
import { call } from '@tessera/kit/testing';
import WebSocketImpl from 'ws';
import { documentCode, lineConsole, socketsTo, type DocumentSocket } from './document-code';
import { SECRET, startTestGateway, token, type TestGateway } from './support';
import { startRuntime, type RuntimeStack } from './stack';

const SERVICE_KEY = 'mission-service-key-0123456789abcdef';
let runtime: RuntimeStack;
let gw: TestGateway;
let missionId: string;

type Msg = { type: string; [k: string]: any };

/** Opens a socket through the gateway and collects what it gets until it closes. */
function learner(query: string, headers: Record<string, string> = {}) {
  const ws = new WebSocketImpl(`${gw.url.replace('http', 'ws')}/api/v1/mission-ally/ws?${query}`, { headers });
  const messages: Msg[] = [];
  ws.on('message', (d) => messages.push(JSON.parse(d.toString())));
  const closed = new Promise<{ code: number }>((resolve) => {
    ws.on('close', (code) => resolve({ code }));
    ws.on('unexpected-response', (_req, res) => resolve({ code: res.statusCode ?? 0 }));
    ws.on('error', () => undefined);
  });
  const until = async (pred: () => boolean, ms = 15_000) => {
    const end = Date.now() + ms;
    while (!pred()) {
      if (Date.now() > end) throw new Error(`timed out with ${JSON.stringify(messages)}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  return { ws, messages, closed, until, say: (message: string) => ws.send(JSON.stringify({ type: 'user_message', message })) };
}

const operator = () => token('ops', { roles: ['operator'] });
async function enroll(user: string) {
  const r = await call(runtime.url, 'POST', `/api/v1/mission-ally/missions/${missionId}/enrollments`, { token: await operator(), body: { user_id: user } });
  expect(r.status).toBe(201);
}

beforeAll(async () => {
  runtime = await startRuntime({ JWT_SECRET: SECRET, SERVICE_KEY });
  gw = await startTestGateway({ RUNTIME_URL: runtime.url, BROKER_URL: 'off' });
  // The operator API is the runtime's; the gateway does not route /api/v1/mission-ally/missions yet.
  const r = await call(runtime.url, 'POST', '/api/v1/mission-ally/missions', {
    token: await operator(),
    body: {
      app_id: 'demo-app',
      title: 'Ship a workflow',
      checkpoints: [
        { id: 'checkpoint_1', title: 'Install the tools', keyword: 'installed' },
        { id: 'checkpoint_2', title: 'Run a workflow', keyword: 'ran it' },
      ],
    },
  });
  expect(r.status).toBe(201);
  missionId = (r.json as { id: string }).id;
}, 60_000);
afterAll(async () => {
  await gw?.stop();
  await runtime?.stop();
});

describe.each([
  ['the token query parameter', async (t: string) => ({ query: `token=${t}`, headers: {} })],
  ['the token cookie', async (t: string) => ({ query: '', headers: { cookie: `token=${t}` } })],
  ['the Authorization header', async (t: string) => ({ query: '', headers: { authorization: `Bearer ${t}` } })],
])('through the gateway with %s', (_name, how) => {
  test('connected, history, a streamed answer, a checkpoint, and the history again on reconnect', async () => {
    const user = `learner-${Math.random().toString(36).slice(2, 8)}`;
    await enroll(user);
    const { query, headers } = await how(await token(user));
    const url = `mission_id=${missionId}${query ? `&${query}` : ''}`;
    const a = learner(url, headers);
    await a.until(() => a.messages.length >= 2);
    expect(a.messages.slice(0, 2)).toEqual([
      { type: 'connected', message: expect.any(String) },
      { type: 'historical_messages', messages: [] },
    ]);
    a.say('I have installed the tools');
    await a.until(() => a.messages.some((m) => m.type === 'agent_processing_end'));
    expect(a.messages.slice(2).map((m) => m.type)).toEqual(['agent_processing_start', 'agent_message', 'checkpoint_update', 'agent_message', 'agent_message', 'agent_processing_end']);
    expect(a.messages.find((m) => m.type === 'checkpoint_update')).toEqual({ type: 'checkpoint_update', completed_checkpoints: ['checkpoint_1'], progress: 50 });
    a.ws.close();
    await a.closed;

    const b = learner(url, headers);
    await b.until(() => b.messages.length >= 2);
    // The history is what was shown live: the learner's message and each agent_message.
    const live = a.messages.filter((m) => m.type === 'agent_message').map(({ type, message }) => ({ type, message }));
    expect(b.messages[1].messages).toEqual([{ type: 'user_message', message: 'I have installed the tools' }, ...live]);
    b.ws.close();
  });
});

describe('refusals through the gateway', () => {
  const refused = async (query: string) => {
    const l = learner(query);
    const { code } = await l.closed;
    return { code, messages: l.messages };
  };
  test('an unknown mission and not enrolled: error then 1008', async () => {
    const t = await token('stranger');
    expect(await refused(`mission_id=nope&token=${t}`)).toEqual({ code: 1008, messages: [{ type: 'error', message: 'Mission not found' }] });
    expect(await refused(`mission_id=${missionId}&token=${t}`)).toEqual({ code: 1008, messages: [{ type: 'error', message: 'You are not enrolled in this mission' }] });
  });
  test("no token or a bad one: the document's error then 1008, as the runtime says it (the gateway lets the upgrade through)", async () => {
    const none = await refused(`mission_id=${missionId}`);
    expect(none.code).toBe(1008);
    expect(none.messages).toEqual([{ type: 'error', message: expect.any(String) }]);
    const bad = await refused(`mission_id=${missionId}&token=bad`);
    expect(bad.code).toBe(1008);
    expect(bad.messages).toEqual([{ type: 'error', message: expect.any(String) }]);
  });
});

/**
 * Document 002's "Example 1: Basic Chat Flow", the document's code itself (fixtures/mission-ally-002,
 * run unchanged as conformance-002.test.ts runs it), against this test's gateway in-process.
 */
describe("the document's MissionAllyClient", () => {
  test('walks a whole mission: messages, progress, completion, and the server closing with 1000', async () => {
    const { lines, console } = lineConsole();
    const { MissionAllyClient } = documentCode<{ MissionAllyClient: new (missionId: string, token: string) => { ws: DocumentSocket; connect(): void; sendMessage(text: string): void } }>(
      'example-1-client.js',
      ['MissionAllyClient'],
      { WebSocket: socketsTo(() => Number(new URL(gw.url).port)).WebSocket, console },
    );

    await enroll('doc-reader');
    const client = new MissionAllyClient(missionId, await token('doc-reader'));
    client.connect();
    const waitFor = async (line: string) => {
      const end = Date.now() + 15_000;
      while (!lines.some((l) => l.startsWith(line))) {
        if (Date.now() > end) throw new Error(`no "${line}" in ${JSON.stringify(lines)}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    };
    await waitFor('Loading 0 historical messages');
    client.sendMessage("Hello, I'm ready to start!");
    // A second message while the agent is typing: queued, answered after the first.
    client.sendMessage('I have installed everything');
    await waitFor('Progress: 50%');
    // The second turn's end, then the next message (its place in the transcript is then fixed).
    for (const end = Date.now() + 15_000; lines.filter((l) => l === 'Agent finished typing').length < 2; ) {
      if (Date.now() > end) throw new Error(`the second turn did not end: ${JSON.stringify(lines)}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    client.ws.send(JSON.stringify({ type: 'ping' }));
    client.sendMessage('And I ran it, it answered me');
    await waitFor('Connection closed');

    expect(lines).toEqual([
      'Connected to Mission Ally',
      'Connected: Connected to Mission Ally: Ship a workflow. Ready to start learning!',
      'Loading 0 historical messages',
      "User: Hello, I'm ready to start!",
      'User: I have installed everything',
      'Agent is typing...',
      'Agent: Hello!',
      'Agent: I am your Mission Ally for "Ship a workflow".',
      'Agent: Tell me what you have done so far.',
      'Agent: Say help if you are stuck.',
      'Agent finished typing',
      'Agent is typing...',
      'Agent: Let me check that against the mission.',
      'Progress: 50% checkpoint_1',
      'Agent: Well done: "Install the tools" is complete.',
      'Agent: You are 50% through the mission.',
      'Agent finished typing',
      'User: And I ran it, it answered me',
      'Agent is typing...',
      'Agent: Let me check that against the mission.',
      'Progress: 100% checkpoint_1,checkpoint_2',
      'Agent: Well done: "Run a workflow" is complete.',
      'Agent: You are 100% through the mission.',
      'Agent finished typing',
      "Mission completed: Congratulations! You've completed the mission!",
      'Connection closed 1000 mission completed',
    ]);

    // The finished mission cannot be opened again.
    const again = learner(`mission_id=${missionId}&token=${await token('doc-reader')}`);
    expect((await again.closed).code).toBe(1008);
    expect(again.messages).toEqual([{ type: 'error', message: 'This mission is already completed' }]);
  });
});

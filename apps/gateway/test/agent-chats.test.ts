/**
 * Issue 19, item 3: an agent made with `POST /api/agents` can be chatted with. A chat with the
 * app's agent `<name>` is a chat of the workflow `agent.<name>`: listed by
 * `GET /api/chats/{app_id}/agents`, started by the runtime's start or the broker's session, opened
 * and answered like any workflow's. Another app's agent is a 404 as for a missing one; an inactive
 * one a 409 naming it. The example workflow support_desk runs on the blueprint `npm start` seeds
 * (tools/scripts/seed-agents.ts), and seeding again leaves an operator's change alone. The whole
 * platform as processes (startPlatform), every call through the gateway.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { REPO_ROOT, startPlatform, type Platform } from '@tessera/kit/platform';
import { call, TestSocket, type Envelope } from '@tessera/kit/testing';

jest.setTimeout(120_000);

let p: Platform;
let user: string;
let otherUser: string;
let otherOp: string;
const sockets: TestSocket[] = [];
const AGENT = 'helpdesk';
const PROMPT = 'You answer helpdesk questions in one sentence.';

const as = (token: string | undefined) => ({
  get: (path: string) => call(p.url, 'GET', path, { token }),
  post: (path: string, body: unknown) => call(p.url, 'POST', path, { token, body }),
  patch: (path: string, body: unknown) => call(p.url, 'PATCH', path, { token, body }),
});

/** Opens the chat's socket through the gateway, sends one message, and returns the turn's replies and errors. */
async function converse(websocketUrl: string, token: string, text: string): Promise<{ replies: Envelope[]; errors: Envelope[]; status: unknown }> {
  const url = websocketUrl.startsWith('ws') ? websocketUrl : `${p.url.replace(/^http/, 'ws')}${websocketUrl}`;
  const socket = await TestSocket.connect(`${url}?access_token=${token}`);
  sockets.push(socket);
  await socket.waitType('chat_meta');
  const from = socket.messages.length;
  socket.send({ type: 'user.input.submit', text });
  const end = await socket.waitFor((m) => m.type === 'chat.run_complete', 20_000, from);
  const after = socket.messages.slice(from);
  return {
    replies: after.filter((m) => m.type === 'chat.text' && m.data.role === 'assistant' && m.data.done),
    errors: after.filter((m) => m.type === 'chat.error'),
    status: end.data.status,
  };
}

beforeAll(async () => {
  p = await startPlatform();
  [user, otherUser, otherOp] = await Promise.all([
    p.sign({ sub: 'agent-chatter', apps: [p.appId], tier: 'pro' }),
    p.sign({ sub: 'elsewhere', apps: [p.otherAppId] }),
    p.sign({ sub: 'elsewhere-op', apps: [p.otherAppId], roles: ['operator'] }),
  ]);
}, 150_000);

afterAll(async () => {
  for (const s of sockets) s.ws.terminate();
  await p?.stop();
});

test('a new agent is listed for its app and chatted with, through the runtime and through the broker', async () => {
  const made = await as(p.token).post('/api/agents', { name: AGENT, description: 'Answers helpdesk questions', system_prompt: PROMPT });
  expect(made.status).toBe(201);

  // Listed for a user of the app, with the workflow name that starts the chat; not for another app.
  const listed = await as(user).get(`/api/chats/${p.appId}/agents`);
  expect({ status: listed.status, body: listed.json }).toEqual({
    status: 200,
    body: { agents: [{ name: AGENT, description: 'Answers helpdesk questions', workflow_name: `agent.${AGENT}` }] },
  });
  expect((await as(otherUser).get(`/api/chats/${p.otherAppId}/agents`)).json).toEqual({ agents: [] });
  expect((await as(otherUser).get(`/api/chats/${p.appId}/agents`)).status).toBe(403);

  // Document 003's start, then its socket: the agent answers on its own system prompt.
  const started = await as(user).post(`/api/chats/${p.appId}/agent.${AGENT}/start`, { user_id: 'agent-chatter', client_request_id: 'first' });
  expect({ status: started.status, body: started.json }).toMatchObject({ status: 201, body: { websocket_url: expect.stringMatching(new RegExp(`^/ws/agent\\.${AGENT}/`)) } });
  const direct = await converse(started.json.websocket_url, user, 'hello there');
  expect(direct.errors).toEqual([]);
  expect(direct.replies.map((m) => m.data.agent)).toEqual([AGENT]);
  expect(direct.replies[0].data.content).toContain(PROMPT);
  expect(direct.replies[0].data.content).toContain('You said: "hello there"');
  // The same request is the same chat.
  const again = await as(user).post(`/api/chats/${p.appId}/agent.${AGENT}/start`, { user_id: 'agent-chatter', client_request_id: 'first' });
  expect({ status: again.status, chat: again.json.chat_id, reused: again.json.reused }).toEqual({ status: 200, chat: started.json.chat_id, reused: true });

  // The broker's session starts the same chat, with the backend context it adds (the token's plan).
  const session = await as(user).post('/api/mozaiks/session', { workflow_name: `agent.${AGENT}` });
  expect({ status: session.status, workflow: session.json.workflow_name }).toEqual({ status: 200, workflow: `agent.${AGENT}` });
  const brokered = await converse(session.json.websocket_url, user, 'which plan?');
  expect(brokered.replies.map((m) => m.data.content)).toEqual([expect.stringContaining('Your plan: pro')]);
  // Started directly, the client's context cannot pose as the backend's.
  expect(direct.replies[0].data.content).toContain('Your plan: standard');
});

test("another app's agent is as missing as one that does not exist; an inactive one is a 409 naming it", async () => {
  // A user of the other app, naming our agent in their app: the same answer as for no agent at all.
  const foreign = await as(otherUser).post(`/api/chats/${p.otherAppId}/agent.${AGENT}/start`, { user_id: 'elsewhere' });
  const none = await as(otherUser).post(`/api/chats/${p.otherAppId}/agent.no-such-agent/start`, { user_id: 'elsewhere' });
  expect([foreign.status, none.status]).toEqual([404, 404]);
  expect(foreign.json.error.message.replace(AGENT, '<name>')).toBe(none.json.error.message.replace('no-such-agent', '<name>'));
  expect(foreign.text).not.toContain(PROMPT);
  // And our app's user cannot start a chat in the other app.
  expect((await as(user).post(`/api/chats/${p.otherAppId}/agent.${AGENT}/start`, { user_id: 'agent-chatter' })).status).toBe(403);
  // Through the broker too.
  expect((await as(user).post('/api/mozaiks/session', { workflow_name: 'agent.no-such-agent' })).status).toBe(404);
  // A name no agent can have is refused at the edge, naming the field.
  const bad = await as(user).post(`/api/chats/${p.appId}/agent.bad_name/start`, { user_id: 'agent-chatter' });
  expect({ status: bad.status, message: bad.json.error.message }).toEqual({ status: 400, message: expect.stringContaining('workflow_name') });

  // The open chats with the agent hold it: the agent manager names them before a deactivation.
  const refused = await as(p.token).patch(`/api/agents/${AGENT}/status`, { status: 'inactive' });
  expect({ status: refused.status, message: refused.json.error.message }).toEqual({ status: 409, message: expect.stringContaining(`agent.${AGENT}`) });
  expect((await call(p.url, 'PATCH', `/api/agents/${AGENT}/status?force=true`, { token: p.token, body: { status: 'inactive' } })).status).toBe(200);

  const inactive = await as(user).post(`/api/chats/${p.appId}/agent.${AGENT}/start`, { user_id: 'agent-chatter', force_new: true });
  expect({ status: inactive.status, message: inactive.json.error.message }).toEqual({ status: 409, message: expect.stringContaining(`agent "${AGENT}" is inactive`) });
  const viaBroker = await as(user).post('/api/mozaiks/session', { workflow_name: `agent.${AGENT}`, client_request_id: 'after-deactivation' });
  expect({ status: viaBroker.status, message: viaBroker.json.error.message }).toEqual({ status: 409, message: expect.stringContaining(`agent "${AGENT}" is inactive`) });
  expect((await as(user).get(`/api/chats/${p.appId}/agents`)).json).toEqual({ agents: [] });
  // Another app's operator sees nothing of it either.
  expect((await as(otherOp).get(`/api/chats/${p.otherAppId}/agents`)).json).toEqual({ agents: [] });
});

test('the example workflow support_desk runs on the blueprint npm start seeds; seeding again keeps an operator’s change', async () => {
  const seed = () =>
    promisify(execFile)(process.execPath, ['--import', 'tsx', join(REPO_ROOT, 'tools/scripts/seed-agents.ts'), p.services.agentManager, p.appId], {
      cwd: REPO_ROOT,
      env: { ...process.env, TOKEN: p.token },
    }).then((r) => JSON.parse(r.stdout));
  expect(await seed()).toEqual({ created: ['support-agent'], kept: [] });
  const listed = (await as(user).get('/api/workflows')).json;
  expect(listed.support_desk.description).toContain('"support-agent"');

  const chat = async (text: string) => {
    const started = await as(user).post(`/api/chats/${p.appId}/support_desk/start`, { user_id: 'agent-chatter', force_new: true });
    expect(started.status).toBe(201);
    return converse(started.json.websocket_url, user, text);
  };
  const first = await chat('where is my order?');
  expect(first.errors).toEqual([]);
  expect(first.replies[0].data.content).toContain('You are the support desk of an online shop.');

  // An operator edits it; a second start of the platform seeds again and leaves the edit.
  expect((await as(p.token).patch('/api/agents/support-agent', { system_prompt: 'You are our edited support desk.' })).status).toBe(200);
  expect(await seed()).toEqual({ created: [], kept: ['support-agent'] });
  expect((await chat('and now?')).replies[0].data.content).toContain('You are our edited support desk.');
  // Deleted by an operator: not brought back.
  expect((await call(p.url, 'DELETE', '/api/agents/support-agent?force=true', { token: p.token })).status).toBe(200);
  expect(await seed()).toEqual({ created: [], kept: ['support-agent'] });
  expect((await as(p.token).get('/api/agents/support-agent')).status).toBe(404);
  // In an app that has no such blueprint, the chat says so.
  const other = await as(otherUser).post(`/api/chats/${p.otherAppId}/support_desk/start`, { user_id: 'elsewhere' });
  const turn = await converse(other.json.websocket_url, otherUser, 'hello');
  expect(turn.errors.map((e) => e.data.error_code)).toEqual(['BLUEPRINT_NOT_FOUND']);
});

/**
 * The tenancy matrix (issue 17): every route the gateway's merged OpenAPI document lists, called
 * through the gateway by seven callers, checked against the access rule the route declares
 * (`x-tessera-access`, written by each service's route declaration):
 *
 *   owner        a user of app A who owns the fixtures (chat, document, bridge session)
 *   peer         another user of app A
 *   operator     an operator of app A
 *   otherOp      an operator of app B
 *   otherUser    a user of app B
 *   none         no credential
 *   forged       app A's operator claims, signed with the wrong secret
 *
 * The fixtures of app A carry a marker; no reply to a caller the rule refuses, and no reply to a
 * caller of app B, may hold it. The table is generated: a route added to a service appears here
 * with the rule it declares, and one without a rule, or without a fixture for a path parameter or
 * a body, fails this test. Routes a service declares `service` must not be reachable at all.
 */
import { randomBytes } from 'node:crypto';
import { signToken } from '@tessera/kit';
import { startPlatform, type Platform } from '@tessera/kit/platform';
import { call, type Reply } from '@tessera/kit/testing';
import fc from 'fast-check';
import WebSocket from 'ws';

jest.setTimeout(240_000);

type Access = 'public' | 'user' | 'owner' | 'operator' | 'service' | 'ingest';
type CallerName = 'owner' | 'peer' | 'operator' | 'otherOp' | 'otherUser' | 'none' | 'forged';
interface Caller {
  name: CallerName;
  sub: string;
  token?: string;
  /** Of app A (the fixtures' app). */
  inApp: boolean;
}

/** What a caller must get from a route with each rule. */
type Expect = 'ok' | 'refused' | 'unauthenticated' | 'ownApp' | 'any';
const EXPECT: Record<Exclude<Access, 'service'>, Record<CallerName, Expect>> = {
  public: { owner: 'ok', peer: 'ok', operator: 'ok', otherOp: 'ok', otherUser: 'ok', none: 'ok', forged: 'ok' },
  // Another app's caller acts in its own app: it may get an answer, never app A's data.
  user: { owner: 'ok', peer: 'ok', operator: 'ok', otherOp: 'ownApp', otherUser: 'ownApp', none: 'unauthenticated', forged: 'unauthenticated' },
  // An operator of the app may or may not act on a user's resource, as the service says; never a 5xx.
  owner: { owner: 'ok', peer: 'refused', operator: 'any', otherOp: 'refused', otherUser: 'refused', none: 'unauthenticated', forged: 'unauthenticated' },
  operator: { owner: 'refused', peer: 'refused', operator: 'ok', otherOp: 'ownApp', otherUser: 'refused', none: 'unauthenticated', forged: 'unauthenticated' },
  // Telemetry is posted with an ingest key: no token is one.
  ingest: { owner: 'unauthenticated', peer: 'unauthenticated', operator: 'unauthenticated', otherOp: 'unauthenticated', otherUser: 'unauthenticated', none: 'unauthenticated', forged: 'unauthenticated' },
};

interface Operation {
  method: string;
  path: string;
  access: Access | undefined;
  multipart: boolean;
  hasBody: boolean;
  /** It takes `?app_id=`: a foreign caller names app A there too. */
  namesApp: boolean;
  /** Its query parameters' names. */
  query: string[];
}

let p: Platform;
let callers: Caller[];
const id = randomBytes(4).toString('hex');
const MARKER = `LEAK${id}MARK`;
/** Path parameter values: app A's fixtures, named as the routes name them. */
const fixtures: Record<string, string> = {};
let operations: Operation[] = [];
const serviceOnly: { service: string; method: string; path: string }[] = [];

const byName = (name: CallerName) => callers.find((c) => c.name === name)!;

async function must(r: Reply | Promise<Reply>, what: string, ok = [200, 201]): Promise<any> {
  const reply = await r;
  if (!ok.includes(reply.status)) throw new Error(`fixture ${what}: ${reply.status} ${reply.text.slice(0, 300)}`);
  return reply.json;
}

/** A multipart form with one small file, posted as `token` (fetch builds the multipart body). */
async function postForm(path: string, token: string | undefined, fields: Record<string, string>, file: string, headers: Record<string, string> = {}, method = 'POST'): Promise<Reply> {
  const form = new FormData();
  for (const [k, v] of Object.entries(fields)) form.append(k, v);
  form.append('file', new Blob([file], { type: 'text/plain' }), 'file.txt');
  const t0 = performance.now();
  const res = await fetch(p.url + path, { method, body: form, headers: { ...headers, ...(token && { authorization: `Bearer ${token}` }) } });
  const text = await res.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: Object.fromEntries(res.headers), text, json, ms: performance.now() - t0 };
}

beforeAll(async () => {
  p = await startPlatform();
  const [owner, peer, operator, otherOp, otherUser, forged] = await Promise.all([
    p.sign({ sub: `owner-${id}`, apps: [p.appId] }),
    p.sign({ sub: `peer-${id}`, apps: [p.appId] }),
    p.sign({ sub: `op-${id}`, apps: [p.appId], roles: ['operator'] }),
    p.sign({ sub: `other-op-${id}`, apps: [p.otherAppId], roles: ['operator'] }),
    p.sign({ sub: `other-user-${id}`, apps: [p.otherAppId] }),
    signToken(`not-the-secret-${randomBytes(16).toString('hex')}`, { sub: `op-${id}`, apps: [p.appId], roles: ['operator'] }, { expiresIn: '1h' }),
  ]);
  callers = [
    { name: 'owner', sub: `owner-${id}`, token: owner, inApp: true },
    { name: 'peer', sub: `peer-${id}`, token: peer, inApp: true },
    { name: 'operator', sub: `op-${id}`, token: operator, inApp: true },
    { name: 'otherOp', sub: `other-op-${id}`, token: otherOp, inApp: false },
    { name: 'otherUser', sub: `other-user-${id}`, token: otherUser, inApp: false },
    { name: 'none', sub: 'anonymous', inApp: false },
    { name: 'forged', sub: `op-${id}`, token: forged, inApp: false },
  ];
  const op = (method: string, path: string, body?: unknown) => call(p.url, method, path, { token: operator, body });
  const own = (method: string, path: string, body?: unknown) => call(p.url, method, path, { token: owner, body });

  // App A's fixtures, each made by the caller who may make it, through the gateway; each holds the marker.
  fixtures.app_id = p.appId;
  fixtures.user_id = `owner-${id}`;
  fixtures.workflow_name = 'greeter';
  fixtures.name = `agent-${id}`;
  await must(op('POST', '/api/agents', { name: fixtures.name, description: `agent ${MARKER}`, system_prompt: `You help. ${MARKER}` }), 'agent');
  await must(op('PATCH', `/api/agents/${fixtures.name}`, { description: `agent v2 ${MARKER}` }), 'agent version 2');
  fixtures.version = '1';
  const chat = await must(own('POST', `/api/chats/${p.appId}/greeter/start`, { user_id: fixtures.user_id, context: { note: MARKER } }), 'chat');
  fixtures.chat_id = chat.chat_id;
  const doc = await must(postForm('/api/documents', owner, { description: `document ${MARKER}`, tags: `tag-${id}` }, `report ${MARKER}`), 'document');
  fixtures.id = doc.id;
  fixtures.session_id = `obs-${id}`;
  await must(
    call(p.url, 'POST', '/api/observability/events', { headers: { 'x-ingest-key': p.ingestKeys[p.appId] }, body: { event_type: 'pre_tool', session_id: fixtures.session_id, session_name: `session ${MARKER}`, agent_name: 'matrix', tool_name: 'search', tool_input: { query: MARKER }, usage: { input_tokens: 10, output_tokens: 2, model: `model-${MARKER}` } } }),
    'observability session',
  );
  const mission = await must(op('POST', '/api/v1/mission-ally/missions', { app_id: p.appId, title: `mission ${MARKER}`, checkpoints: [{ id: 'first', title: `first ${MARKER}` }] }), 'mission');
  fixtures.mission_id = mission.id;
  await must(op('POST', `/api/v1/mission-ally/missions/${mission.id}/enrollments`, { user_id: fixtures.user_id }), 'enrollment');
  // A budget for a user whose id holds the marker: the budgets list of app A shows it.
  await must(op('PUT', `/api/budgets/${p.appId}/users/budget-${MARKER}`, { tokens_per_day: 1_000_000_000 }), 'budget');
  await must(op('PUT', `/api/budgets/${p.appId}`, { tokens_per_day: 1_000_000_000 }), "the app's budget");
  const boot = await must(own('POST', '/api/bridge/session/bootstrap', { scadaUrl: `https://scada.example/${MARKER}`, accessToken: `scada-token-${MARKER}`, sessionInfo: { tenantId: MARKER } }), 'bridge session');
  fixtures.sessionId = boot.sessionId;
  fixtures.requestId = `req-${id}`;

  // The routes, as the gateway publishes them, and the service-only ones each service declares.
  const merged = await must(call(p.url, 'GET', '/openapi.json'), 'openapi');
  for (const [path, item] of Object.entries(merged.paths as Record<string, Record<string, any>>)) {
    for (const [method, o] of Object.entries(item)) {
      const content = o.requestBody?.content ?? {};
      const namesApp = (o.parameters ?? []).some((q: { in: string; name: string }) => q.in === 'query' && q.name === 'app_id');
      const query = (o.parameters ?? []).filter((q: { in: string }) => q.in === 'query').map((q: { name: string }) => q.name);
      operations.push({ method: method.toUpperCase(), path, access: o['x-tessera-access'], multipart: 'multipart/form-data' in content, hasBody: !!o.requestBody, namesApp, query });
    }
  }
  for (const [service, url] of Object.entries(p.services)) {
    const doc = await must(call(url, 'GET', '/openapi.json'), `${service} openapi`);
    for (const [path, item] of Object.entries(doc.paths as Record<string, Record<string, any>>)) {
      for (const [method, o] of Object.entries(item)) if (o['x-tessera-access'] === 'service') serviceOnly.push({ service, method: method.toUpperCase(), path });
    }
  }
  // Destructive routes last (a delete or a stop ends the fixture the routes after it need).
  const rank = (o: Operation) => (o.method === 'DELETE' ? 2 : /\/stop$/.test(o.path) ? 1 : 0);
  operations = operations.sort((a, b) => rank(a) - rank(b));
}, 240_000);

afterAll(async () => {
  await p?.stop();
});

/** A caller's own values where a body names a user or an app (a user acts for themself). */
function bodyFor(o: Operation, c: Caller): unknown {
  const self = c.sub;
  const app = c.inApp || c.name === 'forged' || c.name === 'none' ? p.appId : p.otherAppId;
  const key = `${o.method} ${o.path}`;
  const bodies: Record<string, unknown> = {
    'POST /api/mozaiks/session': { workflow_name: 'greeter' },
    'POST /api/chats/{app_id}/{workflow_name}/start': { user_id: self },
    'POST /api/chat/start': { app_id: app, user_id: self, workflow_name: 'greeter' },
    'POST /chat/{app_id}/{chat_id}/{user_id}/input': { message: 'hello', workflow_name: 'greeter' },
    'POST /api/tool-call/respond': { event_id: `no-such-call-${id}`, response_data: { ok: true } },
    'POST /api/v1/mission-ally/missions': { app_id: app, title: `another ${id}`, checkpoints: [{ id: 'one', title: 'one' }] },
    'PATCH /api/v1/mission-ally/missions/{mission_id}': { description: 'changed' },
    'POST /api/v1/mission-ally/missions/{mission_id}/enrollments': { user_id: `learner-${c.name}` },
    'POST /api/agents': { name: `made-by-${c.name}-${id}`, description: 'd', system_prompt: 'p' },
    'PATCH /api/agents/{name}': { description: `changed by ${c.name}` },
    'PATCH /api/agents/{name}/status': { status: 'active' },
    'PATCH /api/documents/{id}': { description: `changed by ${c.name}` },
    'PATCH /api/observability/sessions/{session_id}/metadata': { session_name: `named by ${c.name}` },
    'POST /api/observability/events': { event_type: 'Notification', session_id: `ingest-${c.name}-${id}`, agent_name: 'matrix' },
    'POST /api/observability/v1/traces': { resourceSpans: [] },
    'POST /api/bridge/session/bootstrap': { scadaUrl: `https://scada.example/${c.name}`, accessToken: `t-${c.name}` },
    'PUT /api/bridge/session/{sessionId}/info': { tenantId: `t-${c.name}` },
    'POST /api/bridge/session/{sessionId}/events': { type: 'matrix', payload: { by: c.name } },
    'POST /api/bridge/session/{sessionId}/events/request': { type: 'matrix', payload: { by: c.name }, timeoutMs: 1_000 },
    'POST /api/bridge/session/{sessionId}/events/request/{requestId}/response': { response: { by: c.name } },
    'POST /api/v1/mission-ally/missions/{mission_id}/enrollments/{user_id}': {},
    // Limits far above anything the matrix spends: the routes after these still run turns.
    'PUT /api/budgets/{app_id}': { tokens_per_day: 1_000_000_000 },
    'PUT /api/budgets/{app_id}/users/{user_id}': { tokens_per_day: 1_000_000_000, turns_per_minute: 100_000 },
    // A new thread per caller; greeter's scripted reply streams in under a second.
    'POST /api/agui/{app_id}/{workflow_name}': { threadId: `agui-${c.name}-${id}`, runId: `run-${c.name}-${id}`, messages: [{ id: 'm1', role: 'user', content: 'hello' }] },
    // The fixture chat (the owner's) as the thread: only its owner may stop it.
    'POST /api/agui/{app_id}/{workflow_name}/stop': { threadId: fixtures.chat_id },
    // A2A JSON-RPC: a task id nobody has (a JSON-RPC error in a 200, as the binding says); the matrix checks who gets through and that nothing of app A leaks.
    'POST /api/a2a/{app_id}/{workflow_name}': { jsonrpc: '2.0', id: 1, method: 'GetTask', params: { id: `no-task-${c.name}-${id}` } },
    // MCP: a session's first message.
    'POST /api/mcp/{app_id}': { jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: `matrix-${c.name}`, version: '1' } } },
  };
  if (!(key in bodies)) throw new Error(`no body fixture for ${key}: add one to bodyFor`);
  return bodies[key];
}

/** Routes whose answer for a rightful caller is a 4xx by the fixture's nature, with why. */
const RIGHTFUL_4XX: Record<string, { status: number[]; why: string }> = {
  'POST /api/tool-call/respond': { status: [404], why: 'no tool call is pending in the fixture chat' },
  'GET /api/bridge/session/{sessionId}/events/request/{requestId}/status': { status: [404], why: 'no request of that id was made' },
  'POST /api/bridge/session/{sessionId}/events/request/{requestId}/response': { status: [404], why: 'no request of that id is pending' },
  'POST /api/bridge/session/{sessionId}/events/request': { status: [503], why: 'no socket is subscribed to answer it' },
  'POST /api/observability/sessions/{session_id}/stop': { status: [409], why: 'an ingested session has nothing running to stop' },
  'POST /api/mcp/{app_id}': { status: [406], why: 'MCP requires Accept: application/json, text/event-stream, which the matrix does not send (mcp.test.ts speaks MCP)' },
  'GET /api/mcp/{app_id}': { status: [400], why: 'no Mcp-Session-Id: a session begins with a POSTed initialize' },
  'DELETE /api/mcp/{app_id}': { status: [400], why: 'no Mcp-Session-Id: there is no session to end' },
};

function pathOf(o: Operation): string {
  return o.path.replace(/\{([^}]+)\}/g, (_m, name: string) => {
    if (!(name in fixtures)) throw new Error(`no fixture for path parameter {${name}} of ${o.method} ${o.path}: add one in beforeAll`);
    return encodeURIComponent(fixtures[name]);
  });
}

/** Query parameters a route needs to show the fixtures' data at all (usage shows no names unless grouped by them). */
const QUERY: Record<string, Record<string, string>> = {
  'GET /api/observability/usage': { group_by: 'app,user,workflow,agent,model' },
};

/** A caller of app B names app A wherever a request can name an app: the header, and `?app_id=` where the route takes it. */
async function send(o: Operation, c: Caller): Promise<Reply> {
  const foreign = c.name === 'otherOp' || c.name === 'otherUser';
  const query = new URLSearchParams({ ...QUERY[`${o.method} ${o.path}`], ...(foreign && o.namesApp && { app_id: p.appId }) }).toString();
  const path = pathOf(o) + (query ? `?${query}` : '');
  const headers: Record<string, string> = foreign ? { 'x-tessera-app': p.appId } : {};
  if (o.multipart) {
    // The fixture chat, where the form names one.
    const fields: Record<string, string> = o.path === '/api/chat/upload' ? { appId: p.appId, userId: fixtures.user_id, chatId: fixtures.chat_id } : {};
    return postForm(path, c.token, fields, `from ${c.name}`, headers, o.method);
  }
  return call(p.url, o.method, path, { token: c.token, body: o.hasBody ? bodyFor(o, c) : undefined, headers });
}

function verdict(o: Operation, c: Caller, r: Reply, expect: Expect, rightfulDone: boolean): string | null {
  const key = `${o.method} ${o.path}`;
  const what = `${key} as ${c.name}: ${r.status} ${r.text.slice(0, 200)}`;
  if (r.status >= 500 && !(RIGHTFUL_4XX[key]?.status.includes(r.status) && (expect === 'ok' || expect === 'any'))) return `5xx: ${what}`;
  const leak = r.text.includes(MARKER);
  switch (expect) {
    case 'unauthenticated':
      if (r.status !== 401) return `expected 401: ${what}`;
      return leak ? `leak: ${what}` : null;
    case 'refused':
      if (![403, 404].includes(r.status)) return `expected 403/404: ${what}`;
      return leak ? `leak: ${what}` : null;
    case 'ownApp':
      return leak ? `leak: ${what}` : null;
    case 'any':
      return null;
    case 'ok': {
      const tolerated = RIGHTFUL_4XX[key]?.status ?? [];
      // After a rightful delete or stop, the next rightful caller finds nothing: that is fine.
      if (rightfulDone && (o.method === 'DELETE' || /\/stop$/.test(o.path)) && [404, 409].includes(r.status)) return null;
      if (r.status >= 400 && !tolerated.includes(r.status)) return `expected success: ${what}`;
      return null;
    }
  }
}

test('every route through the gateway declares its access rule', () => {
  expect(operations.length).toBeGreaterThan(40);
  const undeclared = operations.filter((o) => !o.access).map((o) => `${o.method} ${o.path}`);
  expect(undeclared).toEqual([]);
});

test('the fixtures are real: each rightful caller reads its own data back, with the marker', async () => {
  const owner = byName('owner').token;
  const operator = byName('operator').token;
  expect((await call(p.url, 'GET', `/api/agents/${fixtures.name}`, { token: operator })).text).toContain(MARKER);
  expect((await call(p.url, 'GET', `/api/documents/${fixtures.id}/metadata`, { token: owner })).text).toContain(MARKER);
  expect((await call(p.url, 'GET', `/api/v1/mission-ally/missions/${fixtures.mission_id}`, { token: operator })).text).toContain(MARKER);
  expect((await call(p.url, 'GET', `/api/observability/events/${fixtures.session_id}`, { token: operator })).text).toContain(MARKER);
  expect((await call(p.url, 'GET', '/api/observability/usage?group_by=model', { token: operator })).text).toContain(MARKER);
  expect((await call(p.url, 'GET', `/api/bridge/session/${fixtures.sessionId}/info`, { token: owner })).text).toContain(MARKER);
  expect((await call(p.url, 'GET', '/api/budgets', { token: operator })).text).toContain(MARKER);
});

/** What a socket gave a caller in a short while: its frames, and how it closed (if it did). */
async function listen(path: string, c: Caller, ms = 1_500): Promise<{ opened: boolean; frames: string[]; close?: number; status?: number }> {
  return new Promise((resolve) => {
    const ws = new WebSocket(p.url.replace(/^http/, 'ws') + path, { headers: c.token ? { authorization: `Bearer ${c.token}` } : {} });
    const got: { opened: boolean; frames: string[]; close?: number; status?: number } = { opened: false, frames: [] };
    const done = () => {
      clearTimeout(timer);
      ws.removeAllListeners();
      ws.on('error', () => undefined);
      ws.terminate();
      resolve(got);
    };
    const timer = setTimeout(done, ms);
    ws.on('open', () => (got.opened = true));
    ws.on('message', (data) => got.frames.push(String(data)));
    ws.on('unexpected-response', (_req, res) => {
      got.status = res.statusCode;
      done();
    });
    ws.on('close', (code) => {
      got.close = code;
      done();
    });
    ws.on('error', () => undefined);
  });
}

test('sockets: only the rightful caller hears app A, everyone else is refused or hears their own app', async () => {
  // Who may hear what: `ok` must hear the marker; the others must not, and `refused` must be turned away.
  type SocketExpect = 'ok' | 'refused' | 'quiet';
  // `own`: what the rightful caller must hear (its own fixture, by id or by the marker).
  const sockets: { name: string; path: string; own: string; rule: Record<CallerName, SocketExpect> }[] = [
    {
      name: 'a chat (document 003)',
      path: `/ws/${fixtures.workflow_name}/${p.appId}/${fixtures.chat_id}/${fixtures.user_id}`,
      own: fixtures.chat_id,
      rule: { owner: 'ok', peer: 'refused', operator: 'refused', otherOp: 'refused', otherUser: 'refused', none: 'refused', forged: 'refused' },
    },
    {
      name: 'the live sessions feed (document 001 §5)',
      path: '/api/observability/ws',
      own: fixtures.session_id,
      rule: { owner: 'quiet', peer: 'quiet', operator: 'ok', otherOp: 'quiet', otherUser: 'quiet', none: 'refused', forged: 'refused' },
    },
    {
      name: 'the bridge session (document 004)',
      path: `/api/bridge/session/${fixtures.sessionId}/ws`,
      own: MARKER,
      rule: { owner: 'ok', peer: 'refused', operator: 'ok', otherOp: 'refused', otherUser: 'refused', none: 'refused', forged: 'refused' },
    },
    {
      name: "a learner's tutor (document 002)",
      path: `/api/v1/mission-ally/ws?mission_id=${fixtures.mission_id}`,
      own: MARKER,
      rule: { owner: 'ok', peer: 'quiet', operator: 'quiet', otherOp: 'refused', otherUser: 'refused', none: 'refused', forged: 'refused' },
    },
  ];
  const failures: string[] = [];
  for (const sock of sockets) {
    for (const c of callers) {
      const got = await listen(sock.path, c);
      const heard = got.frames.join('\n');
      const what = `${sock.name} as ${c.name}: ${got.status ?? (got.opened ? 'open' : 'not open')}, close ${got.close}, ${heard.slice(0, 200)}`;
      const expect = sock.rule[c.name];
      if (expect === 'ok' && !heard.includes(sock.own)) failures.push(`did not hear its own data: ${what}`);
      if (expect !== 'ok' && (heard.includes(MARKER) || (c.name !== 'operator' && heard.includes(fixtures.session_id)))) failures.push(`leak: ${what}`);
      const turnedAway = got.status !== undefined ? got.status >= 400 && got.status < 500 : got.close !== undefined && (got.close === 1008 || (got.close >= 4000 && got.close < 5000));
      if (expect === 'refused' && !turnedAway) failures.push(`not refused: ${what}`);
    }
  }
  expect(failures).toEqual([]);
});

test('each route answers each caller as its rule says, and no refused or foreign caller sees app A\'s data', async () => {
  const failures: string[] = [];
  const seen: string[] = [];
  for (const o of operations) {
    if (!o.access || o.access === 'service') continue;
    const rule = EXPECT[o.access];
    // Refused callers first: a rightful caller's delete would leave them nothing to be refused.
    const order = [...callers].sort((a, b) => Number(rule[a.name] === 'ok' || rule[a.name] === 'any') - Number(rule[b.name] === 'ok' || rule[b.name] === 'any'));
    let rightfulDone = false;
    for (const c of order) {
      const r = await send(o, c);
      const v = verdict(o, c, r, rule[c.name], rightfulDone);
      if (v) failures.push(v);
      if (rule[c.name] === 'ok' && r.status < 400) rightfulDone = true;
      seen.push(`${o.method} ${o.path} ${c.name} ${r.status}`);
    }
  }
  expect(failures).toEqual([]);
  expect(seen.length).toBeGreaterThan(7 * 40);
});

test('routes for services alone are not reachable through the gateway, with any credential', async () => {
  expect(serviceOnly.length).toBeGreaterThan(0);
  const failures: string[] = [];
  for (const s of serviceOnly) {
    const fill = s.path.replace(/\{[^}]+\}/g, 'x');
    for (const prefix of ['', '/api/observability', '/api/bridge', '/api/agents', '/api/documents']) {
      for (const c of callers) {
        const r = await call(p.url, s.method, prefix + fill, { token: c.token, headers: { 'x-tessera-service-key': p.serviceKey } });
        if (r.status !== 404 && r.status !== 401) failures.push(`${s.service} ${s.method} ${prefix}${fill} as ${c.name}: ${r.status}`);
      }
    }
  }
  expect(failures).toEqual([]);
});

/**
 * Hostile input on every route, through the gateway, as app A's operator and as the owner: any path
 * segment, query value and body. A client's mistake is a 4xx, never a 5xx, and every process lives.
 * Runs last: it may change or delete the fixtures.
 */
test('hostile path, query and body on every route: never a 5xx, every process lives', async () => {
  const numbers = fc.constantFrom('-1', '0', '2147483648', '99999999999', '1e20', '-1e308', 'NaN', '1.5', '0x10', '[1e20,"a"]', '');
  const text = fc.oneof(fc.string({ maxLength: 40 }), fc.string({ unit: 'grapheme', maxLength: 20 }), fc.constantFrom('\u202egnp.exe', '..', '%00', 'a'.repeat(600), '{}', 'null'));
  const segment = (name: string) => fc.oneof(fc.constant(fixtures[name] ?? 'x'), text, numbers).map((v) => encodeURIComponent(v || 'x'));
  const body = (o: Operation, c: Caller) => {
    const valid = (() => {
      try {
        return bodyFor(o, c) as Record<string, unknown>;
      } catch {
        return {};
      }
    })();
    return fc.oneof(
      fc.jsonValue({ maxDepth: 3 }),
      fc.dictionary(fc.constantFrom(...Object.keys(valid), 'app_id', 'user_id', 'extra'), fc.oneof(fc.jsonValue({ maxDepth: 2 }), numbers.map(Number), text)).map((d) => ({ ...valid, ...d })),
    );
  };
  const failures: string[] = [];
  let requests = 0;
  const rightful = [byName('operator'), byName('owner')];
  for (const o of operations) {
    if (!o.access || o.access === 'service' || o.multipart) continue;
    const names = [...o.path.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]);
    const caller = fc.constantFrom(...rightful);
    const request = fc.record({
      c: caller,
      segments: fc.tuple(...names.map(segment), fc.constant('')),
      query: fc.dictionary(fc.constantFrom(...o.query, 'cursor', 'limit', 'after'), fc.oneof(numbers, text), { maxKeys: 3 }),
      raw: fc.boolean(),
      seed: fc.integer(),
    });
    await fc.assert(
      fc.asyncProperty(request, fc.jsonValue(), async ({ c, segments, query, raw }, anyJson) => {
        let i = 0;
        const path = o.path.replace(/\{[^}]+\}/g, () => segments[i++]) + (Object.keys(query).length ? `?${new URLSearchParams(query)}` : '');
        const sent = o.hasBody ? (raw ? { raw: '{"not json', headers: { 'content-type': 'application/json' } } : { body: fc.sample(body(o, c), 1)[0] ?? anyJson }) : {};
        const r = await call(p.url, o.method, path, { token: c.token, ...sent });
        requests++;
        const expected5xx = RIGHTFUL_4XX[`${o.method} ${o.path}`]?.status.filter((s) => s >= 500) ?? [];
        if (r.status >= 500 && !expected5xx.includes(r.status)) failures.push(`${o.method} ${path} as ${c.name}: ${r.status} ${r.text.slice(0, 200)}`);
        else if (r.status >= 400 && !r.json?.error?.message) failures.push(`${o.method} ${path}: ${r.status} without the error shape: ${r.text.slice(0, 100)}`);
      }),
      { numRuns: 12 },
    );
  }
  expect(failures).toEqual([]);
  expect(requests).toBeGreaterThan(40 * 12);
  for (const [service, url] of Object.entries(p.services)) expect([service, (await call(url, 'GET', '/health')).status]).toEqual([service, 200]);
}, 300_000);

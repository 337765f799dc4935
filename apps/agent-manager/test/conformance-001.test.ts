/**
 * Document 001 §2 (agent manager) as a client written from the document uses it, through the real
 * gateway: the document's routes under the gateway's `/api` (the README's gateway table), its
 * request examples verbatim, the fields it names in replies, and a bearer token (an operator of
 * one app) as the only addition (the README's note next to §2). Plain `fetch`, nothing of
 * Tessera's. The project has no MCP configuration, as a fresh project has none: the document's
 * own example names `github`. An outside agent's session, reported to observability with the
 * agent's name (§4.1's `agent_name`), holds off the delete (§2.2's validation). The gateway, the
 * agent manager and observability are processes started as `npm start` starts them (main.ts).
 */
import { resolve } from 'node:path';
import { closedPort, freshSchema, spawnService, testPrefix, TEST_REDIS_URL, type ServiceProcess, entryOf } from '@tessera/kit/testing';
import { operator, projectDir, ROOT, SECRET, SERVICE_KEY, spawnAgentManager, user } from './harness';

const APP = 'conformance-001';
const INGEST_KEY = `ingest-${APP}-0123456789`;
const prefix = testPrefix('am-conformance');

let project: Awaited<ReturnType<typeof projectDir>>;
let dropObs: () => Promise<void>;
const processes: ServiceProcess[] = [];
let gatewayUrl: string;
let token: string;

async function start(name: string, entry: string, port: number, env: Record<string, string>): Promise<ServiceProcess> {
  const url = `http://127.0.0.1:${port}`;
  return spawnService({ name, entry: resolve(ROOT, entry), cwd: ROOT, env: { ...env, PORT: String(port), HOST: '127.0.0.1' }, ready: { url: `${url}/health` }, timeoutMs: 60_000 });
}

beforeAll(async () => {
  project = await projectDir('conf001');
  const schema = await freshSchema(resolve(ROOT, 'apps/observability/prisma/migrations'), 'am_conf');
  dropObs = schema.drop;
  const [gwPort, obsPort] = [await closedPort(), await closedPort()];
  const obsUrl = `http://127.0.0.1:${obsPort}`;
  gatewayUrl = `http://127.0.0.1:${gwPort}`;
  const common = { NODE_ENV: 'test', LOG_LEVEL: 'warn', REDIS_URL: TEST_REDIS_URL, JWT_SECRET: SECRET, SERVICE_KEY };
  const obs = await start('observability', entryOf('observability'), obsPort, {
    ...common,
    DATABASE_URL: schema.url,
    BULL_PREFIX: `${prefix}-bull`,
    INGEST_KEYS: `${APP}:${INGEST_KEY}`,
    INGEST_WORKER: 'false',
  });
  processes.push(obs);
  const am = await spawnAgentManager(project.dir, { OBSERVABILITY_URL: obsUrl });
  processes.push(am);
  processes.push(
    await start('gateway', entryOf('gateway'), gwPort, {
      ...common,
      AGENTS_URL: am.url,
      OBSERVABILITY_URL: obsUrl,
      RUNTIME_URL: 'off',
      BROKER_URL: 'off',
      DOCUMENTS_URL: 'off',
      BRIDGE_URL: 'off',
      RATE_LIMIT_PREFIX: `${prefix}:rl`,
    }),
  );
  token = await operator('operator-1', [APP]);
}, 120_000);
afterAll(async () => {
  await Promise.all(processes.reverse().map((p) => p.stop()));
  await dropObs?.();
  await project?.remove();
});

/** The document's Base URL, at the gateway's `/api`: JSON in and out, the bearer token on every request. */
async function api(method: string, path: string, body?: unknown): Promise<{ status: number; json: any }> {
  const res = await fetch(`${gatewayUrl}/api${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body !== undefined && { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, json: text ? JSON.parse(text) : undefined };
}

const ok = (status: number) => status >= 200 && status < 300;
const isTime = (s: unknown) => typeof s === 'string' && !Number.isNaN(Date.parse(s));
/** The fields §2.2 shows for an agent, with the values a reply must hold. */
const DOCUMENT_FIELDS = ['name', 'description', 'system_prompt', 'mcp_servers', 'skills', 'status', 'created_at', 'updated_at'];

// §2.2's request examples, verbatim.
const createExample = { name: 'new-agent', description: 'Agent description', system_prompt: 'System prompt markdown...', mcp_servers: ['github'], skills: ['pdf'] };
const updateExample = { description: 'Updated description', system_prompt: 'Updated prompt...' };
// The list example's agent, as a create body (its own fields).
const reviewer = { name: 'code-reviewer', description: 'Reviews code and suggests improvements', system_prompt: 'You are a code reviewer...', mcp_servers: ['github', 'filesystem'], skills: ['pdf'] };

function expectAgent(reply: any, fields: Record<string, unknown>, status = 'active') {
  for (const f of DOCUMENT_FIELDS) expect(reply).toHaveProperty(f);
  expect(reply).toMatchObject({ ...fields, status });
  expect(isTime(reply.created_at) && isTime(reply.updated_at)).toBe(true);
}

test('§2.2: list, create with the document\'s example, get, update, status, delete', async () => {
  const empty = await api('GET', '/agents');
  expect(empty).toEqual({ status: 200, json: [] });

  // POST /agents with the document's own body: created as given, "github" kept although nothing defines it.
  const created = await api('POST', '/agents', createExample);
  expect(ok(created.status)).toBe(true);
  expectAgent(created.json, createExample);
  expect(created.json.updated_at).toBe(created.json.created_at);
  // Tessera's addition: which names nothing defines yet (README, next to §2).
  expect(created.json.unresolved_mcp_servers).toEqual(['github']);

  const other = await api('POST', '/agents', reviewer);
  expect(ok(other.status)).toBe(true);
  expectAgent(other.json, reviewer);

  // GET /agents/{name}: "same as single item from list"; GET /agents: a bare array of them.
  const one = await api('GET', '/agents/new-agent');
  expect(one.status).toBe(200);
  expect(one.json).toEqual(created.json);
  const list = await api('GET', '/agents');
  expect(list.status).toBe(200);
  expect(Array.isArray(list.json)).toBe(true);
  expect(list.json).toEqual(expect.arrayContaining([created.json, other.json]));
  expect(list.json).toHaveLength(2);

  // PATCH /agents/{name} with the document's partial body: the full agent back.
  await new Promise((r) => setTimeout(r, 5));
  const updated = await api('PATCH', '/agents/new-agent', updateExample);
  expect(updated.status).toBe(200);
  expectAgent(updated.json, { ...createExample, ...updateExample });
  expect(updated.json.created_at).toBe(created.json.created_at);
  expect(Date.parse(updated.json.updated_at)).toBeGreaterThan(Date.parse(created.json.updated_at));
  expect((await api('GET', '/agents/new-agent')).json).toEqual(updated.json);

  // PATCH /agents/{name}/status: "active" | "inactive", the full agent back.
  const inactive = await api('PATCH', '/agents/new-agent/status', { status: 'inactive' });
  expect(inactive.status).toBe(200);
  expectAgent(inactive.json, { ...createExample, ...updateExample }, 'inactive');
  expect((await api('GET', '/agents/new-agent')).json.status).toBe('inactive');
  const active = await api('PATCH', '/agents/new-agent/status', { status: 'active' });
  expectAgent(active.json, { ...createExample, ...updateExample }, 'active');

  // DELETE /agents/{name}: the document's reply.
  const deleted = await api('DELETE', '/agents/code-reviewer');
  expect(deleted).toEqual({ status: 200, json: { success: true, message: 'Agent deleted successfully' } });
  expect((await api('GET', '/agents/code-reviewer')).status).toBe(404);
  expect((await api('GET', '/agents')).json.map((a: any) => a.name)).toEqual(['new-agent']);
});

test('§2.2 validation: unique name, alphanumeric and hyphens, description and system prompt required', async () => {
  const base = { name: 'checked', description: 'Agent description', system_prompt: 'System prompt markdown...' };
  expect(ok((await api('POST', '/agents', base)).status)).toBe(true);
  const taken = await api('POST', '/agents', base);
  expect(taken.status).toBe(409);
  expect(taken.json.error.message).toContain('checked');
  for (const [body, field] of [
    [{ ...base, name: 'not valid!' }, 'name'],
    [{ ...base, name: 'under_score' }, 'name'],
    [{ name: 'no-description', system_prompt: 'p' }, 'description'],
    [{ name: 'no-prompt', description: 'd' }, 'system_prompt'],
  ] as const) {
    const r = await api('POST', '/agents', body);
    expect([r.status, r.json.error.message]).toEqual([400, expect.stringContaining(field)]);
  }
  expect((await api('GET', '/agents')).json.map((a: any) => a.name).sort()).toEqual(['checked', 'new-agent']);
});

test('§2.2: no deletion while a session of the agent is active; once it ends, the document\'s delete reply', async () => {
  expect(ok((await api('POST', '/agents', { ...createExample, name: 'busy-agent' })).status)).toBe(true);
  // An outside agent reports its session to observability (document 001 §1's POST /events, §4.1's agent_name).
  const session = `busy-${Date.now()}`;
  const report = (event_type: string) =>
    fetch(`${gatewayUrl}/api/observability/events`, {
      method: 'POST',
      headers: { 'x-ingest-key': INGEST_KEY, 'content-type': 'application/json' },
      body: JSON.stringify({ event_type, session_id: session, agent_name: 'busy-agent' }),
    });
  expect((await report('session_start')).status).toBe(200);

  const refused = await api('DELETE', '/agents/busy-agent');
  expect(refused.status).toBe(409);
  expect(refused.json.error.message).toContain(session);
  expect((await api('GET', '/agents/busy-agent')).status).toBe(200);

  expect((await report('session_stop')).status).toBe(200);
  expect(await api('DELETE', '/agents/busy-agent')).toEqual({ status: 200, json: { success: true, message: 'Agent deleted successfully' } });
  expect((await api('GET', '/agents/busy-agent')).status).toBe(404);
});

test("the platform's additions a document client meets: a token is needed, changes need an operator", async () => {
  expect((await fetch(`${gatewayUrl}/api/agents`)).status).toBe(401);
  const reader = await user('reader-1', [APP]);
  const asReader = (method: string, path: string, body?: unknown) =>
    fetch(`${gatewayUrl}/api${path}`, { method, headers: { authorization: `Bearer ${reader}`, 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
  expect((await asReader('GET', '/agents')).status).toBe(200);
  expect((await asReader('POST', '/agents', { ...createExample, name: 'by-reader' })).status).toBe(403);
  // Another app's token sees none of this app's agents.
  const stranger = await operator('operator-2', ['another-app']);
  const theirs = await fetch(`${gatewayUrl}/api/agents/new-agent`, { headers: { authorization: `Bearer ${stranger}` } });
  expect(theirs.status).toBe(404);
});

/**
 * Sessions observability reports with an agent's name hold off its delete and deactivation: a
 * real observability process (its own schema), an outside agent's session ingested with
 * `agent_name`, the operator's token passed along.
 */
import { resolve } from 'node:path';
import { closedPort, freshSchema, spawnService, TEST_REDIS_URL, type ServiceProcess, entryOf } from '@tessera/kit/testing';
import { http, operator, projectDir, ROOT, SECRET, SERVICE_KEY, startAgentManager, type Instance } from './harness';

const INGEST_KEY = 'ingest-key-app1-0123456789';
const INGEST_KEY2 = 'ingest-key-app2-0123456789';
let project: Awaited<ReturnType<typeof projectDir>>;
let obs: ServiceProcess;
let obsUrl: string;
let drop: () => Promise<void>;
let op: string;

beforeAll(async () => {
  op = await operator();
  project = await projectDir('in-use');
  const schema = await freshSchema(resolve(ROOT, 'apps/observability/prisma/migrations'), 'am_obs');
  drop = schema.drop;
  const port = await closedPort();
  obsUrl = `http://127.0.0.1:${port}`;
  obs = await spawnService({
    name: 'observability',
    entry: resolve(ROOT, entryOf('observability')),
    cwd: ROOT,
    env: { NODE_ENV: 'test', REDIS_URL: TEST_REDIS_URL, DATABASE_URL: schema.url, BULL_PREFIX: `test-am-${port}`, JWT_SECRET: SECRET, SERVICE_KEY, INGEST_KEYS: `app1:${INGEST_KEY},app2:${INGEST_KEY2}`, PORT: String(port), HOST: '127.0.0.1', LOG_LEVEL: 'warn', INGEST_WORKER: 'false' },
    ready: { url: `${obsUrl}/health` },
    timeoutMs: 30_000,
  });
}, 60_000);
afterAll(async () => {
  await obs?.stop();
  await drop?.();
  await project?.remove();
});

test('a running session with the agent name: delete and deactivation refused naming it; finished, or forced, they go through', async () => {
  const am: Instance = await startAgentManager(project.dir, { OBSERVABILITY_URL: obsUrl });
  try {
    await http(am.url, 'POST', '/agents', { token: op, body: { name: 'watched', description: 'd', system_prompt: 'p' } });
    const session = `outside-${Date.now()}`;
    const ingest = (event_type: string) => http(obsUrl, 'POST', '/events', { headers: { 'x-ingest-key': INGEST_KEY }, body: { event_type, session_id: session, agent_name: 'watched' } });
    expect((await ingest('session_start')).status).toBe(200);

    const del = await http(am.url, 'DELETE', '/agents/watched', { token: op });
    expect(del.status).toBe(409);
    expect(del.body.error.message).toContain(`${session} (observability)`);
    expect(del.body.error.details.sessions).toEqual([{ session_id: session, source: 'observability', workflow: null, app_id: 'app1', status: 'running' }]);
    expect((await http(am.url, 'PATCH', '/agents/watched/status', { token: op, body: { status: 'inactive' } })).status).toBe(409);
    expect((await http(am.url, 'PATCH', '/agents/watched/status?force=true', { token: op, body: { status: 'inactive' } })).status).toBe(200);

    expect((await ingest('session_stop')).status).toBe(200);
    expect((await http(am.url, 'DELETE', '/agents/watched', { token: op })).body).toEqual({ success: true, message: 'Agent deleted successfully' });
  } finally {
    await am.close();
  }
});

test('observability out of reach: the change waits (503 naming it) unless forced', async () => {
  const am = await startAgentManager(project.dir, { OBSERVABILITY_URL: `http://127.0.0.1:${await closedPort()}` });
  try {
    await http(am.url, 'POST', '/agents', { token: op, body: { name: 'unsure', description: 'd', system_prompt: 'p' } });
    const r = await http(am.url, 'DELETE', '/agents/unsure', { token: op });
    expect(r.status).toBe(503);
    expect(r.body.error.message).toContain('observability unreachable (ECONNREFUSED)');
    expect((await http(am.url, 'GET', '/agents/unsure', { token: op })).status).toBe(200);
    expect((await http(am.url, 'DELETE', '/agents/unsure?force=true', { token: op })).status).toBe(200);
  } finally {
    await am.close();
  }
});

test("the 409 names the caller's app's sessions only: the same name in another app, used by that app's sessions, is none of its business", async () => {
  const am: Instance = await startAgentManager(project.dir, { OBSERVABILITY_URL: obsUrl });
  try {
    const [op1, op2] = await Promise.all([operator('op-app1', ['app1']), operator('op-app2', ['app2'])]);
    for (const token of [op1, op2]) expect((await http(am.url, 'POST', '/agents', { token, body: { name: 'shared-watch', description: 'd', system_prompt: 'p' } })).status).toBe(201);
    const s1 = `app1-session-${Date.now()}`;
    const s2 = `app2-session-${Date.now()}`;
    const ingest = (key: string, event_type: string, session_id: string) => http(obsUrl, 'POST', '/events', { headers: { 'x-ingest-key': key }, body: { event_type, session_id, agent_name: 'shared-watch' } });
    expect((await ingest(INGEST_KEY, 'session_start', s1)).status).toBe(200);
    expect((await ingest(INGEST_KEY2, 'session_start', s2)).status).toBe(200);

    /** Delete and deactivation both refused, naming `session` of `app` and nothing of the other app's. */
    const refused = async (token: string, query: string, app: string, session: string, other: string) => {
      const tries = [await http(am.url, 'DELETE', `/agents/shared-watch${query}`, { token }), await http(am.url, 'PATCH', `/agents/shared-watch/status${query}`, { token, body: { status: 'inactive' } })];
      for (const r of tries) {
        expect(r.status).toBe(409);
        expect(r.body.error.details.sessions).toEqual([{ session_id: session, source: 'observability', workflow: null, app_id: app, status: 'running' }]);
        expect(JSON.stringify(r.body)).not.toContain(other);
      }
    };
    await refused(op1, '', 'app1', s1, s2);
    await refused(op2, '', 'app2', s2, s1);
    // An operator of any app, naming one: that app's sessions.
    await refused(op, '?app_id=app2', 'app2', s2, s1);

    // app2's session ends: app2 may delete its agent; app1's is still held by app1's session.
    expect((await ingest(INGEST_KEY2, 'session_stop', s2)).status).toBe(200);
    expect((await http(am.url, 'DELETE', '/agents/shared-watch', { token: op2 })).status).toBe(200);
    await refused(op1, '', 'app1', s1, s2);
    expect((await http(am.url, 'GET', '/agents/shared-watch', { token: op1 })).status).toBe(200);
    expect((await ingest(INGEST_KEY, 'session_stop', s1)).status).toBe(200);
    expect((await http(am.url, 'DELETE', '/agents/shared-watch', { token: op1 })).status).toBe(200);
  } finally {
    await am.close();
  }
});

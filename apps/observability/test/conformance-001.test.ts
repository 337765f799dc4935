import { execFile, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import WebSocket from 'ws';
import { signToken } from '@tessera/kit';
import { closedPort, freshSchema, spawnService, TEST_REDIS_URL, type ServiceProcess, entryOf } from '@tessera/kit/testing';

/**
 * Document 001's observability backend (§1, §4.1, §5) through the real gateway, both started as
 * processes the way `npm start` starts them. The client here is written from the document: its
 * paths under the gateway's prefix, its request bodies, the §4.1 session fields and the §5 socket
 * messages. Its only additions are the credentials the README gives: the operator's bearer token,
 * and the app's ingest key (`x-ingest-key`) for `POST /events`, as `npm start` prints one. The
 * dashboard never subscribes: document 001 has no such message.
 */
const ROOT = resolve(__dirname, '../../..');
const HEARTBEAT_MS = 400;

/** The Claude Code hook script of the observability page (the README links it), as a user copies it. */
const HOOK = /```sh\n(#!\/bin\/sh\n# \.claude\/hooks\/tessera\.sh[\s\S]*?)```/.exec(readFileSync(join(ROOT, 'docs/protocols/observability.md'), 'utf8'))?.[1];
const HAS_JQ = (() => {
  try {
    execFileSync('sh', ['-c', 'command -v jq'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

/**
 * An agent instrumented with the OpenTelemetry SDK, configured only by the README's OTEL_* variables
 * (its own process: the exporter loads node:http with a dynamic import, which jest's sandbox refuses).
 */
const OTEL_AGENT = `
const { TracerProvider, BatchSpanProcessor } = require('@opentelemetry/sdk-trace');
const { OTLPTraceExporter } = require('@opentelemetry/exporter-trace-otlp-proto');
(async () => {
  const provider = new TracerProvider({ spanProcessors: [new BatchSpanProcessor({ exporter: new OTLPTraceExporter() })] });
  const span = provider.getTracer('doc001').startSpan('chat gpt-4o', { attributes: { 'gen_ai.operation.name': 'chat', 'gen_ai.conversation.id': process.argv[1] } });
  span.end();
  await provider.forceFlush();
  await provider.shutdown();
})().catch((e) => { console.error(e); process.exit(1); });
`;

/** The §4.1 session, as a client reads it. */
interface DocSession {
  session_id: string;
  session_name: string;
  status: 'running' | 'finished' | 'stopped';
  created_at: string;
  modified_at: string;
  project_dir: string | null;
  agent_name: string | null;
}
type DocMessage = { type: 'init'; sessions: DocSession[] } | { type: 'event'; [k: string]: unknown } | { type: 'session_updated'; session: DocSession } | { type: 'session_deleted'; session_id: string };

const isIso = (s: unknown) => typeof s === 'string' && !Number.isNaN(Date.parse(s)) && /^\d{4}-\d{2}-\d{2}T/.test(s);
function expectDocSession(s: DocSession) {
  expect(typeof s.session_id).toBe('string');
  expect(typeof s.session_name).toBe('string');
  expect(['running', 'finished', 'stopped']).toContain(s.status);
  expect(isIso(s.created_at)).toBe(true);
  expect(isIso(s.modified_at)).toBe(true);
  expect(s.project_dir === null || typeof s.project_dir === 'string').toBe(true);
  expect(s.agent_name === null || typeof s.agent_name === 'string').toBe(true);
}

/** A dashboard from §5: connects, keeps what arrives, never sends a message. */
class Dashboard {
  readonly messages: DocMessage[] = [];
  closeCode: number | null = null;
  private waiters: { pred: (m: DocMessage) => boolean; resolve: (m: DocMessage) => void }[] = [];
  constructor(readonly ws: WebSocket) {
    ws.on('message', (d) => {
      const m = JSON.parse(d.toString()) as DocMessage;
      this.messages.push(m);
      this.waiters = this.waiters.filter((w) => (w.pred(m) ? (w.resolve(m), false) : true));
    });
    ws.on('close', (code) => (this.closeCode = code));
  }
  static open(url: string, token: string): Promise<Dashboard> {
    const ws = new WebSocket(url, { headers: { authorization: `Bearer ${token}` } });
    const d = new Dashboard(ws);
    return new Promise((res, rej) => {
      ws.once('open', () => res(d));
      ws.once('error', rej);
    });
  }
  waitFor<T extends DocMessage>(pred: (m: DocMessage) => boolean, what: string, ms = 10_000): Promise<T> {
    const seen = this.messages.find(pred);
    if (seen) return Promise.resolve(seen as T);
    return new Promise((res, rej) => {
      const t = setTimeout(() => rej(new Error(`no ${what}; got ${this.messages.map((m) => m.type).join(', ')}`)), ms);
      this.waiters.push({ pred, resolve: (m) => (clearTimeout(t), res(m as T)) });
    });
  }
}

describe('document 001 (observability) through the gateway, as a client written from the document', () => {
  const id = randomBytes(4).toString('hex');
  const appId = `doc001-${id}`;
  const ingestKey = `doc001-ingest-${randomBytes(16).toString('hex')}`;
  const secret = `doc001-secret-${randomBytes(16).toString('hex')}`;
  const processes: ServiceProcess[] = [];
  let dropSchema: () => Promise<void> = async () => undefined;
  let base: string;
  let wsUrl: string;
  let token: string;
  let dashboard: Dashboard;
  const session = `claude-${id}`;

  beforeAll(async () => {
    const schema = await freshSchema(join(ROOT, 'apps/observability/prisma/migrations'), 'doc001');
    dropSchema = schema.drop;
    const [obsPort, gwPort] = await Promise.all([closedPort(), closedPort()]);
    const common = { NODE_ENV: 'test', LOG_LEVEL: 'warn', REDIS_URL: TEST_REDIS_URL, JWT_SECRET: secret, SERVICE_KEY: `doc001-service-${id}-0123456789`, HOST: '127.0.0.1', SHUTDOWN_TIMEOUT_MS: '3000', WS_HEARTBEAT_MS: String(HEARTBEAT_MS) };
    const spawn = (name: string, entry: string, env: Record<string, string>, port: number) =>
      spawnService({ name, entry: join(ROOT, entry), cwd: ROOT, env: { ...common, ...env, PORT: String(port) }, ready: { url: `http://127.0.0.1:${port}/health` }, timeoutMs: 60_000 });
    const at = (p: number) => `http://127.0.0.1:${p}`;
    processes.push(
      await spawn('observability', entryOf('observability'), { DATABASE_URL: schema.url, BULL_PREFIX: `test-doc001-${id}`, INGEST_KEYS: `${appId}:${ingestKey}`, RETENTION_DAYS: '0' }, obsPort),
    );
    processes.push(
      await spawn(
        'gateway',
        entryOf('gateway'),
        { RUNTIME_URL: 'off', BROKER_URL: 'off', OBSERVABILITY_URL: at(obsPort), AGENTS_URL: 'off', DOCUMENTS_URL: 'off', BRIDGE_URL: 'off', RATE_LIMIT_PER_MIN: '0', RATE_LIMIT_PREFIX: `test:doc001-rl:${id}` },
        gwPort,
      ),
    );
    base = `${at(gwPort)}/api/observability`;
    wsUrl = `ws://127.0.0.1:${gwPort}/api/observability/ws`;
    token = await signToken(secret, { sub: 'dashboard-operator', apps: [appId], roles: ['operator'] }, { expiresIn: '1h' });
  }, 120_000);

  afterAll(async () => {
    dashboard?.ws.close();
    await Promise.all(processes.map((p) => p.stop()));
    await dropSchema();
  });

  const operator = (method: string, path: string, body?: unknown) =>
    fetch(`${base}${path}`, { method, headers: { authorization: `Bearer ${token}`, ...(body !== undefined && { 'content-type': 'application/json' }) }, body: body === undefined ? undefined : JSON.stringify(body) });
  const postEvent = (event: unknown, headers: Record<string, string> = { 'x-ingest-key': ingestKey }) =>
    fetch(`${base}/events`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(event) });

  it('WS /ws: the dashboard connects and gets init with the sessions (§5)', async () => {
    dashboard = await Dashboard.open(wsUrl, token);
    const init = await dashboard.waitFor<{ type: 'init'; sessions: DocSession[] }>((m) => m.type === 'init', 'init');
    expect(Array.isArray(init.sessions)).toBe(true);
  });

  it('POST /events: an agent hook reports a session start and its tool calls (§1)', async () => {
    const events = [
      { event_type: 'session_start', session_id: session, session_name: 'Refactor the parser', project_dir: '/work/parser', agent_name: 'code-reviewer', timestamp: new Date().toISOString() },
      { event_type: 'pre_tool', session_id: session, tool_name: 'Bash', tool_input: { command: 'npm test' }, timestamp: new Date().toISOString() },
      { event_type: 'post_tool', session_id: session, tool_name: 'Bash', tool_output: { exit_code: 0 }, timestamp: new Date().toISOString() },
    ];
    for (const e of events) expect((await postEvent(e)).status).toBe(200);
  });

  it('the dashboard, which never subscribed, sees session_updated and each event of the new session, in order (§5)', async () => {
    const updated = await dashboard.waitFor<{ type: 'session_updated'; session: DocSession }>((m) => m.type === 'session_updated' && m.session.session_id === session, 'session_updated');
    expectDocSession(updated.session);
    expect(updated.session).toMatchObject({ session_name: 'Refactor the parser', status: 'running', project_dir: '/work/parser', agent_name: 'code-reviewer' });
    const ofSession = () => dashboard.messages.filter((m) => m.type === 'event' && JSON.stringify(m).includes(session));
    await dashboard.waitFor(() => ofSession().length === 3, 'three events');
    expect(ofSession().map((m) => JSON.stringify(m).match(/"event_type":"(\w+)"/)?.[1])).toEqual(['session_start', 'pre_tool', 'post_tool']);
  });

  it('GET /sessions lists it with the §4.1 fields', async () => {
    const r = await operator('GET', '/sessions');
    expect(r.status).toBe(200);
    const body = (await r.json()) as { sessions: DocSession[] };
    const mine = body.sessions.find((s) => s.session_id === session)!;
    expectDocSession(mine);
    expect(mine).toMatchObject({ session_name: 'Refactor the parser', status: 'running', project_dir: '/work/parser', agent_name: 'code-reviewer' });
  });

  it('GET /sessions/{id} is the session; GET /events/{id} its events in order', async () => {
    const one = await operator('GET', `/sessions/${session}`);
    expect(one.status).toBe(200);
    expectDocSession((await one.json()) as DocSession);
    const ev = await operator('GET', `/events/${session}`);
    expect(ev.status).toBe(200);
    const { events } = (await ev.json()) as { events: { event_type: string; tool_name: string | null; session_id: string }[] };
    expect(events.map((e) => [e.event_type, e.tool_name, e.session_id])).toEqual([
      ['session_start', null, session],
      ['pre_tool', 'Bash', session],
      ['post_tool', 'Bash', session],
    ]);
  });

  it('PATCH /sessions/{id}/metadata updates it, and the dashboard gets session_updated', async () => {
    const from = dashboard.messages.length;
    const r = await operator('PATCH', `/sessions/${session}/metadata`, { session_name: 'Parser refactor (renamed)' });
    expect(r.status).toBe(200);
    const updated = await dashboard.waitFor<{ type: 'session_updated'; session: DocSession }>(
      (m) => dashboard.messages.indexOf(m) >= from && m.type === 'session_updated' && m.session.session_name === 'Parser refactor (renamed)',
      'session_updated after the patch',
    );
    expectDocSession(updated.session);
    expect(((await (await operator('GET', `/sessions/${session}`)).json()) as DocSession).session_name).toBe('Parser refactor (renamed)');
  });

  it('POST /sessions/{id}/stop answers as §1.1 shows, and the dashboard gets session_updated with status stopped (§5.1)', async () => {
    const r = await operator('POST', `/sessions/${session}/stop`);
    expect(r.status).toBe(200);
    expect(await r.json()).toMatchObject({ success: true, session_id: session, message: 'Session stopped successfully' });
    const stopped = await dashboard.waitFor<{ type: 'session_updated'; session: DocSession }>((m) => m.type === 'session_updated' && m.session.session_id === session && m.session.status === 'stopped', 'session_updated stopped');
    expectDocSession(stopped.session);
  });

  it('DELETE /sessions/{id} removes it and its events; the dashboard gets session_deleted', async () => {
    const r = await operator('DELETE', `/sessions/${session}`);
    expect(r.status).toBe(200);
    await dashboard.waitFor((m) => m.type === 'session_deleted' && m.session_id === session, 'session_deleted');
    expect((await operator('GET', `/sessions/${session}`)).status).toBe(404);
    expect((await operator('GET', `/events/${session}`)).status).toBe(404);
  });

  (HAS_JQ ? it : it.skip)("the docs' Claude Code hook script reports a session through the gateway (needs jq)", async () => {
    expect(HOOK).toBeDefined();
    const hookSession = `hook-${id}`;
    const payloads = [
      { hook_event_name: 'SessionStart', session_id: hookSession, cwd: '/work/app', source: 'startup' },
      { hook_event_name: 'PreToolUse', session_id: hookSession, cwd: '/work/app', tool_name: 'Bash', tool_input: { command: 'ls' } },
      { hook_event_name: 'PostToolUse', session_id: hookSession, cwd: '/work/app', tool_name: 'Bash', tool_input: { command: 'ls' }, tool_response: { stdout: 'README.md' } },
      { hook_event_name: 'SessionEnd', session_id: hookSession, cwd: '/work/app', reason: 'exit' },
    ];
    for (const p of payloads) {
      await new Promise<void>((res, rej) => {
        const child = execFile('sh', ['-c', HOOK!], { env: { ...process.env, TESSERA_URL: base.replace(/\/api\/observability$/, ''), INGEST_KEY: ingestKey }, timeout: 10_000 }, (err) => (err ? rej(err) : res()));
        child.stdin!.end(JSON.stringify(p));
      });
    }
    const one = await operator('GET', `/sessions/${hookSession}`);
    expect([one.status, await one.json()]).toEqual([200, expect.objectContaining({ session_id: hookSession, status: 'finished', project_dir: '/work/app' })]);
    const { events } = (await (await operator('GET', `/events/${hookSession}`)).json()) as { events: { event_type: string; tool_name: string | null; tool_output?: unknown }[] };
    expect(events.map((e) => [e.event_type, e.tool_name])).toEqual([
      ['session_start', null],
      ['pre_tool', 'Bash'],
      ['post_tool', 'Bash'],
      ['session_stop', null],
    ]);
    expect(events[2].tool_output).toEqual({ stdout: 'README.md' });
  });

  it("an OpenTelemetry SDK configured by the README's OTEL_* variables exports through the gateway", async () => {
    const conversation = `otel-${id}`;
    await new Promise<void>((res, rej) =>
      execFile(
        process.execPath,
        ['-e', OTEL_AGENT, conversation],
        { cwd: ROOT, timeout: 30_000, env: { ...process.env, OTEL_EXPORTER_OTLP_ENDPOINT: base, OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf', OTEL_EXPORTER_OTLP_HEADERS: `x-ingest-key=${ingestKey}` } },
        (err, _out, stderr) => (err ? rej(new Error(`${err.message}\n${stderr}`)) : res()),
      ),
    );
    const one = await operator('GET', `/sessions/${conversation}`);
    expect([one.status, await one.json()]).toEqual([200, expect.objectContaining({ session_id: conversation })]);
    const { events } = (await (await operator('GET', `/events/${conversation}`)).json()) as { events: { attributes: Record<string, unknown> }[] };
    expect(events.map((e) => e.attributes['gen_ai.operation.name'])).toEqual(['chat']);
  });

  it('the dashboard stays connected past two heartbeat intervals', async () => {
    await new Promise((r) => setTimeout(r, HEARTBEAT_MS * 2.5));
    expect(dashboard.closeCode).toBeNull();
    expect(dashboard.ws.readyState).toBe(WebSocket.OPEN);
  });

  it('POST /events without the ingest key is a 401 that says what is needed, also when a service key was sent (the gateway removes it)', async () => {
    const attempts: Record<string, string>[] = [{}, { 'x-tessera-service-key': 'whatever-the-agent-has-0123456789' }, { authorization: `Bearer ${token}` }];
    for (const headers of attempts) {
      const r = await postEvent({ event_type: 'session_start', session_id: `refused-${id}` }, headers);
      expect(r.status).toBe(401);
      const { error } = (await r.json()) as { error: { message: string } };
      expect(error.message).toMatch(/send your app's ingest key in the x-ingest-key header/);
      expect(error.message).toMatch(/gateway, which removes it/);
    }
  });
});

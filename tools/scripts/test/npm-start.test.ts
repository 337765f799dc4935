import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { connect, createServer, type AddressInfo } from 'node:net';
import { resolve } from 'node:path';
import { Redis } from 'ioredis';
import WebSocket from 'ws';
import { DEV_JWT_SECRET, signToken } from '@tessera/kit';

/**
 * The real `npm start`, on free ports and a Redis of its own (which it starts under .data/, as
 * on a fresh machine), stopped by a signal to the npm process as a process manager or `kill`
 * sends it: every service process is gone, their ports are free, and the Redis that `npm start`
 * started still answers (a concurrent `npm test` may be using it), to its generated password only.
 * Linux: processes are found through /proc.
 */
const ROOT = resolve(__dirname, '../../..');
// Without a redis-server binary (CI's Redis is a container), npm start is given the Redis already running.
const CAN_START_REDIS = (() => {
  try {
    execFileSync('sh', ['-c', 'command -v redis-server'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const { port } = s.address() as AddressInfo;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

const answers = (port: number) =>
  new Promise<boolean>((r) => {
    const s = connect(port, '127.0.0.1', () => (s.destroy(), r(true)));
    s.on('error', () => r(false));
  });

/** Every live process whose environment holds the mark: what one `npm start` ran, however deep. */
function marked(mark: string): string[] {
  const found: string[] = [];
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      if (!readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0').includes(`TESSERA_TEST_MARK=${mark}`)) continue;
      found.push(`${pid} ${readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim()}`);
    } catch {
      /* gone meanwhile */
    }
  }
  return found;
}

async function until(what: string, check: () => boolean | Promise<boolean>, ms: number, output: () => string) {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`${what} within ${ms} ms; npm start printed:\n${output().slice(-4_000)}`);
    await sleep(100);
  }
}

/** `npm start` with these arguments, in its own process group as a process manager starts it (a signal reaches npm alone), its output collected. */
function startNpm(args: string[], env: NodeJS.ProcessEnv) {
  const npm: ChildProcess = spawn('npm', ['start', ...args], { cwd: ROOT, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  npm.stdout!.on('data', (d) => (out += d));
  npm.stderr!.on('data', (d) => (out += d));
  let exited = false;
  npm.once('exit', () => (exited = true));
  return { npm, output: () => out, exited: () => exited };
}

describe('npm start stopped by a signal to npm', () => {
  const mark = randomBytes(6).toString('hex');
  let redisUrl: string;
  let redisPort: number;

  beforeAll(async () => {
    redisPort = await freePort();
    redisUrl = CAN_START_REDIS ? `redis://127.0.0.1:${redisPort}` : (process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
  });

  afterAll(async () => {
    for (const p of marked(mark)) process.kill(Number(p.split(' ')[0]), 'SIGKILL');
    if (!CAN_START_REDIS) return;
    // The Redis npm start started for this test: stopped and removed here (never `infra stop`,
    // which would stop the PostgreSQL other tests use).
    const dir = resolve(ROOT, `.data/redis-${redisPort}`);
    try {
      const pid = Number(readFileSync(`${dir}/redis.pid`, 'utf8'));
      process.kill(pid, 'SIGTERM');
      await until('test redis stopped', () => !readdirSync('/proc').includes(String(pid)), 10_000, () => '');
    } catch {
      /* never started */
    }
    rmSync(dir, { recursive: true, force: true });
  });

  it.each(['SIGTERM', 'SIGINT', 'SIGHUP'] as const)('%s stops every service process, frees the ports and leaves Redis running', async (signal) => {
    const ports = { RUNTIME_PORT: await freePort(), BROKER_PORT: await freePort(), OBSERVABILITY_PORT: await freePort(), AGENT_MANAGER_PORT: await freePort(), DOCUMENTS_PORT: await freePort(), BRIDGE_PORT: await freePort(), GATEWAY_PORT: await freePort() };
    const env = {
      ...process.env,
      ...Object.fromEntries(Object.entries(ports).map(([k, v]) => [k, String(v)])),
      TESSERA_TEST_MARK: mark,
      TESSERA_NO_INSTALL: '1',
      REDIS_URL: redisUrl,
      NODE_ENV: 'development',
      LOG_LEVEL: 'warn',
    };
    const { npm, output, exited } = startNpm([], env);
    // A request that finds no gateway says what npm start printed (a service that exited stops them all).
    const request = (url: string, init?: RequestInit) =>
      fetch(url, init).catch((e: Error & { cause?: { code?: string } }) => {
        throw new Error(`${init?.method ?? 'GET'} ${url}: ${e.message} (${e.cause?.code ?? 'no code'}); npm start printed:\n${output().slice(-4_000)}`);
      });

    // Eight services compile their TypeScript on start (tsx): allow a busy machine its time.
    await until('npm start ready', () => output().includes('Tessera is running.'), 120_000, output);
    const services = marked(mark).filter((p) => /apps\/(runtime|broker|observability|agent-manager|document-server|bridge|gateway)\/src\//.test(p));
    expect(services).toHaveLength(8); // runtime, runtime-worker, broker, observability, agent-manager, document-server, bridge, gateway
    for (const port of Object.values(ports)) expect(await answers(port)).toBe(true);
    // The gateway routes to observability, and the printed token is an operator's.
    const token = /export TOKEN=(\S+)/.exec(output())?.[1];
    const sessions = await request(`http://127.0.0.1:${ports.GATEWAY_PORT}/api/observability/sessions`, { headers: { authorization: `Bearer ${token}` } });
    expect([sessions.status, await sessions.text()]).toEqual([200, expect.stringContaining('"sessions"')]);
    // The printed ingest key is demo-app's: an outside agent posts through the gateway with it
    // (POST /events and an OpenTelemetry exporter's OTLP/JSON), and the printed token sees the sessions.
    const ingestKey = /export INGEST_KEY=(\S+)/.exec(output())?.[1];
    expect(ingestKey).toBe(readFileSync(resolve(ROOT, '.data/secrets/demo-app.ingest-key'), 'utf8').trim());
    expect(statSync(resolve(ROOT, '.data/secrets/demo-app.ingest-key')).mode & 0o777).toBe(0o600);
    const gw = `http://127.0.0.1:${ports.GATEWAY_PORT}/api/observability`;
    const hook = `hook-${mark}-${signal}`;
    const posted = await request(`${gw}/events`, { method: 'POST', headers: { 'x-ingest-key': ingestKey!, 'content-type': 'application/json' }, body: JSON.stringify({ event_type: 'session_start', session_id: hook, session_name: 'from a hook' }) });
    expect([posted.status, await posted.json()]).toEqual([200, expect.objectContaining({ accepted: 1 })]);
    const traceId = randomBytes(16).toString('hex');
    const span = { traceId, spanId: randomBytes(8).toString('hex'), name: 'chat', kind: 3, startTimeUnixNano: String(Date.now() * 1e6), endTimeUnixNano: String(Date.now() * 1e6 + 1e6), attributes: [{ key: 'gen_ai.conversation.id', value: { stringValue: `otel-${hook}` } }, { key: 'gen_ai.operation.name', value: { stringValue: 'chat' } }] };
    const exported = await request(`${gw}/v1/traces`, { method: 'POST', headers: { 'x-ingest-key': ingestKey!, 'content-type': 'application/json' }, body: JSON.stringify({ resourceSpans: [{ resource: { attributes: [] }, scopeSpans: [{ scope: { name: 'test' }, spans: [span] }] }] }) });
    expect(exported.status).toBe(200);
    expect(Number(((await exported.json()) as { partialSuccess?: { rejectedSpans?: string } }).partialSuccess?.rejectedSpans ?? 0)).toBe(0);
    for (const id of [hook, `otel-${hook}`]) {
      const seen = await request(`${gw}/sessions/${id}`, { headers: { authorization: `Bearer ${token}` } });
      expect([id, seen.status, await seen.json()]).toEqual([id, 200, expect.objectContaining({ session_id: id, app_id: 'demo-app' })]);
    }
    // A call of the scripted model has a cost on a fresh clone: npm start gives it a demo price ($0.15/$0.60 per million).
    const call = { event_type: 'message', session_id: hook, event_id: 'call-1', user_id: hook, usage: { input_tokens: 1000, output_tokens: 100, model: 'scripted' } };
    expect((await request(`${gw}/events`, { method: 'POST', headers: { 'x-ingest-key': ingestKey!, 'content-type': 'application/json' }, body: JSON.stringify(call) })).status).toBe(200);
    const usage = (await (await request(`${gw}/usage?group_by=user,model`, { headers: { authorization: `Bearer ${token}` } })).json()) as { rows: { user_id: string; model: string; cost_usd: number }[] };
    const scripted = usage.rows.find((r) => r.user_id === hook && r.model === 'scripted');
    expect(scripted?.cost_usd).toBeCloseTo((1000 * 0.15 + 100 * 0.6) / 1e6, 12);
    // Budgets end to end: the runtime prices the scripted model with the same demo price, and a
    // user's spent budget refuses their next message (a user of this run only; removed after).
    const api = `http://127.0.0.1:${ports.GATEWAY_PORT}`;
    const spender = `budget-${mark}-${signal}`;
    const asOperator = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
    const budgetPath = `${api}/api/budgets/demo-app/users/${spender}`;
    expect((await request(budgetPath, { method: 'PUT', headers: asOperator, body: JSON.stringify({ tokens_per_day: 1 }) })).status).toBe(200);
    try {
      const asSpender = { authorization: `Bearer ${await signToken(process.env.JWT_SECRET || DEV_JWT_SECRET, { sub: spender, apps: ['demo-app'] }, { expiresIn: '10m' })}`, 'content-type': 'application/json' };
      const chat = (await (await request(`${api}/api/chats/demo-app/assistant/start`, { method: 'POST', headers: asSpender, body: JSON.stringify({ user_id: spender }) })).json()) as { chat_id: string };
      const say = (text: string) => request(`${api}/chat/demo-app/${chat.chat_id}/${spender}/input`, { method: 'POST', headers: asSpender, body: JSON.stringify({ message: text, workflow_name: 'assistant' }) });
      expect((await say('hello')).status).toBe(202);
      type Seen = { user: { spent: { day: { tokens: number; cost_usd: number } } } };
      let spent = { tokens: 0, cost_usd: 0 };
      await until('the turn counted against the budget', async () => {
        spent = ((await (await request(budgetPath, { headers: asOperator })).json()) as Seen).user.spent.day;
        return spent.tokens > 0;
      }, 20_000, output);
      expect(spent.cost_usd).toBeGreaterThan(0);
      const refusedTurn = await say('again');
      expect([refusedTurn.status, refusedTurn.headers.get('retry-after') !== null, ((await refusedTurn.json()) as { error: { code: string } }).error.code]).toEqual([429, true, 'BUDGET_EXCEEDED']);
    } finally {
      await request(budgetPath, { method: 'DELETE', headers: asOperator });
    }
    // Without the key, the 401 says what is needed.
    const refused = await request(`${gw}/events`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"event_type":"x","session_id":"y"}' });
    expect([refused.status, ((await refused.json()) as { error: { message: string } }).error.message]).toEqual([401, expect.stringMatching(/x-ingest-key/)]);

    process.kill(npm.pid!, signal);
    await until('npm exited', exited, 15_000, output);
    await until('every process of npm start gone', () => marked(mark).length === 0, 15_000, () => `${output()}\nstill running:\n${marked(mark).join('\n')}`);
    for (const port of Object.values(ports)) expect(await answers(port)).toBe(false);

    // The Redis npm start started for a URL without a password asks for the one it generated into .data/secrets/.
    let url = env.REDIS_URL;
    if (CAN_START_REDIS) {
      const bare = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, enableReadyCheck: false, retryStrategy: () => null });
      bare.on('error', () => undefined);
      await bare.connect();
      await expect(bare.ping()).rejects.toThrow(/NOAUTH/);
      bare.disconnect();
      url = `redis://:${readFileSync(resolve(ROOT, '.data/secrets/redis.password'), 'utf8').trim()}@127.0.0.1:${redisPort}`;
    }
    const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0 });
    await redis.connect();
    expect(await redis.ping()).toBe('PONG');
    redis.disconnect();
    if (CAN_START_REDIS) expect(output()).toMatch(/keeps? running( under \.data\/)?; `npm run infra -- stop` stops/);
  }, 180_000);
});

describe('npm start -- --redis-cluster', () => {
  const mark = randomBytes(6).toString('hex');
  // The cluster this test starts (and removes): apart from the default 7101 and the other tests'.
  const base = 7141;
  const clusterScript = resolve(ROOT, 'tools/scripts/redis-cluster.sh');

  afterAll(async () => {
    for (const p of marked(mark)) process.kill(Number(p.split(' ')[0]), 'SIGKILL');
    execFileSync('bash', [clusterScript, 'reset', String(base)], { cwd: ROOT, stdio: 'ignore' });
  }, 60_000);

  // Only where npm start can start redis-server nodes of its own.
  (CAN_START_REDIS ? it : it.skip)('runs the whole platform on a local Redis Cluster: a chat turn streams through the gateway, and a signal stops every service', async () => {
    execFileSync('bash', [clusterScript, 'reset', String(base)], { cwd: ROOT, stdio: 'ignore' });
    const ports = { RUNTIME_PORT: await freePort(), BROKER_PORT: await freePort(), OBSERVABILITY_PORT: await freePort(), AGENT_MANAGER_PORT: await freePort(), DOCUMENTS_PORT: await freePort(), BRIDGE_PORT: await freePort(), GATEWAY_PORT: await freePort() };
    const env: NodeJS.ProcessEnv = { ...process.env, ...Object.fromEntries(Object.entries(ports).map(([k, v]) => [k, String(v)])), TESSERA_TEST_MARK: mark, TESSERA_NO_INSTALL: '1', NODE_ENV: 'development', LOG_LEVEL: 'warn' };
    delete env.REDIS_URL;
    const { npm, output, exited } = startNpm(['--', `--redis-cluster=${base}`], env);
    await until('npm start ready', () => output().includes('Tessera is running.'), 180_000, output);
    // Every service process was given the cluster's URL.
    for (const p of marked(mark).filter((x) => /apps\/(runtime|observability|gateway)\/src\//.test(x))) {
      expect(readFileSync(`/proc/${p.split(' ')[0]}/environ`, 'utf8')).toContain(`REDIS_URL=redis+cluster://`);
    }
    // A user's turn through the gateway, over the socket URL the start hands out.
    const user = `cluster-${mark}`;
    const tok = await signToken(process.env.JWT_SECRET || DEV_JWT_SECRET, { sub: user, apps: ['demo-app'] }, { expiresIn: '10m' });
    const started = await fetch(`http://127.0.0.1:${ports.GATEWAY_PORT}/api/chats/demo-app/assistant/start`, { method: 'POST', headers: { authorization: `Bearer ${tok}`, 'content-type': 'application/json' }, body: JSON.stringify({ user_id: user }) });
    expect(started.status).toBe(201);
    const { websocket_url } = (await started.json()) as { websocket_url: string };
    // A path, relative to the API it came from (the gateway).
    const ws = new WebSocket(new URL(websocket_url, `ws://127.0.0.1:${ports.GATEWAY_PORT}`), { headers: { authorization: `Bearer ${tok}` } });
    const types: string[] = [];
    const ended = new Promise<{ status: string }>((done, fail) => {
      ws.on('message', (raw) => {
        const m = JSON.parse(String(raw)) as { type: string; data: { status: string } };
        types.push(m.type);
        if (m.type === 'chat_meta') ws.send(JSON.stringify({ type: 'user.input.submit', text: 'hello over a cluster' }));
        if (m.type === 'chat.run_complete') done(m.data);
      });
      ws.on('error', fail);
    });
    expect(await ended).toMatchObject({ status: 'completed' });
    expect(types).toContain('chat.text');
    ws.close();

    process.kill(npm.pid!, 'SIGTERM');
    await until('npm exited', exited, 15_000, output);
    await until('every process of npm start gone', () => marked(mark).length === 0, 15_000, () => `${output()}\nstill running:\n${marked(mark).join('\n')}`);
  }, 240_000);
});

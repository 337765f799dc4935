/**
 * Gateway overhead: the same loads straight to the runtime and through the gateway, in one run.
 *
 *   npx tsx tools/bench/gateway.ts [--cpu-prof] [proxy|sessions|ws ...]
 *
 * Names the loads to run (default: all three); `proxy` alone is the gateway against nginx.
 * --cpu-prof writes the gateway process's CPU profile to tmp/bench-prof/ (summarise it with
 * profile-summary.ts).
 * Starts real processes: the runtime (HTTP+WS and its turn worker, scripted provider), the broker
 * and the gateway, on a fresh PostgreSQL schema and BullMQ prefix; needs Redis and PostgreSQL
 * (`npm run infra`). Loads:
 *   - proxy: GET /api/workflows (the proxy path alone) straight, through the gateway, through nginx
 *   - sessions: session creations: runtime `POST /api/chat/start` directly, the same start through the
 *     gateway, and `POST /api/mozaiks/session` through gateway → broker → runtime
 *   - ws: WebSocket events: chats each running turns of a 200-word reply streamed with no delay,
 *     sockets straight to the runtime vs relayed by the gateway
 * The proxy load also reads the CPU time per request of the process answering on each path (the
 * runtime, the gateway, nginx's master and worker), from /proc around the timed part; the direct
 * session creations, the runtime's per chat started.
 * Knobs (env): BENCH_CONCURRENCY (32), BENCH_REQUESTS (2000), BENCH_CHATS (40), BENCH_TURNS (3).
 */
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';
import { signToken } from '@tessera/kit';
// The kit's test helpers (not part of its package entry).
import { freshSchema, TEST_REDIS_URL, entryOf } from '../../libs/kit/src/testing';
import { typeTurns } from './lib/clients';
import { agent, httpCall } from './lib/http';
import { cpuSecondsOf, freePort, onCleanup, ROOT, runMain, spawnService } from './lib/proc';
import { deleteKeys } from './lib/redis-keys';
import { pct } from './lib/stats';

const CPU_PROF = process.argv.includes('--cpu-prof');
const LOADS = ['proxy', 'sessions', 'ws'] as const;
const named = process.argv.slice(2).filter((a) => !a.startsWith('--'));
for (const n of named) if (!(LOADS as readonly string[]).includes(n)) throw new Error(`unknown load "${n}" (${LOADS.join(', ')})`);
/** Whether the command line asks for this load (all of them when it names none). */
const runs = (load: (typeof LOADS)[number]) => named.length === 0 || named.includes(load);
const PROF_DIR = join(ROOT, 'tmp/bench-prof');
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 32);
const REQUESTS = Number(process.env.BENCH_REQUESTS ?? 2000);
const CHATS = Number(process.env.BENCH_CHATS ?? 40);
const TURNS = Number(process.env.BENCH_TURNS ?? 3);
const SECRET = `bench-secret-${randomBytes(16).toString('hex')}`;
const SERVICE_KEY = `bench-service-key-${randomBytes(8).toString('hex')}`;
const APP = 'demo-app';

interface Result {
  load: string;
  path: string;
  rate: number;
  unit: string;
  p50: number;
  p99: number;
  latency: string;
  errors: number;
  /** CPU time per request of the process that answers on `path` (the proxy in front, or the runtime straight), in µs. */
  cpuUs?: number;
}

/** `n` calls of `op` with `CONCURRENCY` in flight; rate in calls/s, latency in ms. */
async function closedLoop(n: number, op: (i: number) => Promise<boolean>): Promise<{ rate: number; lat: number[]; errors: number }> {
  const lat: number[] = [];
  let next = 0;
  let errors = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < n) {
        const i = next++;
        const s = performance.now();
        const ok = await op(i).catch(() => false);
        lat.push(performance.now() - s);
        if (!ok) errors++;
      }
    }),
  );
  return { rate: n / ((performance.now() - t0) / 1000), lat, errors };
}

/** `cpu`: CPU seconds so far of the process serving `path`, read around the timed load (not the warm-up). */
async function httpLoad(load: string, path: string, n: number, op: (i: number) => Promise<boolean>, cpu?: () => number): Promise<Result> {
  await closedLoop(Math.min(200, n), (i) => op(n + i)); // warm-up (JIT, pools), on ids of its own
  const cpu0 = cpu?.();
  const r = await closedLoop(n, op);
  const cpuUs = cpu ? ((cpu() - cpu0!) / n) * 1e6 : undefined;
  return { load, path, rate: r.rate, unit: 'req/s', p50: pct(r.lat, 50), p99: pct(r.lat, 99), latency: 'request', errors: r.errors, cpuUs };
}

/** CPU seconds so far of a process and its children (nginx: the master and its worker). */
function cpuSecondsOfTree(pid: number): number {
  const children = readdirSync('/proc')
    .filter((d) => /^\d+$/.test(d))
    .filter((d) => {
      try {
        const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
        return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === pid;
      } catch {
        return false; // exited meanwhile
      }
    });
  return [pid, ...children.map(Number)].reduce((sum, p) => sum + cpuSecondsOf(p), 0);
}

/** Chats each running TURNS turns; events/s over all sockets, latency of input → first text event. */
async function wsLoad(path: string, sockets: string[]): Promise<Result> {
  const firstEvent: number[] = [];
  let events = 0;
  let errors = 0;
  const t0 = performance.now();
  await Promise.all(
    sockets.map(
      (url) =>
        new Promise<void>((done) => {
          const ws = new WebSocket(url);
          const chat = typeTurns(ws, TURNS, {
            meta: () => chat.send(),
            message: (m) => void (m.index !== undefined && events++),
            firstText: (ms) => void firstEvent.push(ms),
            complete: () => undefined,
            last: () => ws.close(),
          });
          ws.on('error', () => errors++);
          ws.on('close', () => done());
        }),
    ),
  );
  const secs = (performance.now() - t0) / 1000;
  return { load: 'ws events', path, rate: events / secs, unit: 'events/s', p50: pct(firstEvent, 50), p99: pct(firstEvent, 99), latency: 'input→first text', errors };
}

/**
 * nginx in front of the runtime, as a deployment would put it: one worker process, a keep-alive
 * upstream, no access log. Null (and said) when nginx cannot be had.
 */
async function startNginx(rtPort: number): Promise<{ url: string; pid: number } | null> {
  try {
    execFileSync('bash', ['-c', 'source tools/scripts/lib.sh && ensure_nginx'], { cwd: ROOT, stdio: 'inherit' });
  } catch {
    process.stdout.write('no nginx: its row is left out\n');
    return null;
  }
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'tessera-bench-nginx-'));
  onCleanup(() => rmSync(dir, { recursive: true, force: true }));
  const temp = ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((t) => `${t}_temp_path ${dir}/${t};`).join(' ');
  writeFileSync(
    join(dir, 'nginx.conf'),
    `worker_processes 1; daemon off; pid ${dir}/nginx.pid; error_log ${dir}/error.log warn;
events { worker_connections 4096; }
http {
  access_log off; ${temp}
  upstream runtime { server 127.0.0.1:${rtPort}; keepalive 64; }
  server {
    listen 127.0.0.1:${port};
    location / { proxy_pass http://runtime; proxy_http_version 1.1; proxy_set_header Connection ""; proxy_set_header Host $host; }
  }
}
`,
  );
  const child = spawn('/usr/sbin/nginx', ['-p', dir, '-c', join(dir, 'nginx.conf')], { stdio: 'ignore' });
  onCleanup(() => child.kill('SIGTERM'));
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 100; i++) {
    const ok = await httpCall(`${url}/health`, 'GET').then((r) => r.status === 200, () => false);
    if (ok) return { url, pid: child.pid! };
    await new Promise((r) => setTimeout(r, 100));
  }
  process.stdout.write('nginx did not answer: its row is left out\n');
  return null;
}

async function main() {
  const [rtPort, brPort, gwPort] = await Promise.all([freePort(), freePort(), freePort()]);
  const schema = await freshSchema(join(ROOT, 'apps/runtime/prisma/migrations'), 'bench');
  onCleanup(() => schema.drop());
  onCleanup(() => agent.destroy());
  const workflows = mkdtempSync(join(tmpdir(), 'tessera-bench-'));
  onCleanup(() => rmSync(workflows, { recursive: true, force: true }));
  cpSync(join(ROOT, 'apps/runtime/workflows'), workflows, { recursive: true });
  mkdirSync(join(workflows, 'bench'));
  const words = Array.from({ length: 200 }, (_, i) => `w${i}`).join(' ');
  writeFileSync(
    join(workflows, 'bench', 'workflow.json'),
    JSON.stringify({ name: 'bench', starting_agent: 'a', agents: [{ name: 'a', system_prompt: 'bench', model: { provider: 'scripted', script: [{ text: words }] } }] }),
  );
  const common = { NODE_ENV: 'production', LOG_LEVEL: 'warn', REDIS_URL: TEST_REDIS_URL, JWT_SECRET: SECRET, SERVICE_KEY, HOST: '127.0.0.1' };
  const bullPrefix = `bench-${randomBytes(4).toString('hex')}`;
  onCleanup(() => deleteKeys(TEST_REDIS_URL, `${bullPrefix}:`));
  const runtimeEnv = { ...common, DATABASE_URL: schema.url, BULL_PREFIX: bullPrefix, OBSERVABILITY_EVENTS: 'false', DOCUMENTS_URL: 'off', WORKFLOWS_DIR: workflows };
  const rt = `http://127.0.0.1:${rtPort}`;
  const gw = `http://127.0.0.1:${gwPort}`;
  {
    process.stdout.write('starting runtime, worker, broker, gateway...\n');
    const [runtime, , , gateway] = await Promise.all([
      spawnService('runtime', entryOf('runtime'), { ...runtimeEnv, PORT: String(rtPort) }, { port: rtPort }),
      spawnService('worker', entryOf('runtime-worker'), { ...runtimeEnv, LOG_LEVEL: 'info' }, { log: 'runtime worker ready' }),
      spawnService('broker', entryOf('broker'), { ...common, PORT: String(brPort), RUNTIME_URL: rt, PUBLIC_WS_URL: `ws://127.0.0.1:${gwPort}`, APP_ID: APP }, { port: brPort }),
      spawnService(
        'gateway',
        entryOf('gateway'),
        // The limit stays on (its Redis round trip is part of the cost) but out of reach.
        { ...common, PORT: String(gwPort), RUNTIME_URL: rt, BROKER_URL: `http://127.0.0.1:${brPort}`, RATE_LIMIT_PER_MIN: '1000000000', OBSERVABILITY_URL: 'off', AGENTS_URL: 'off', DOCUMENTS_URL: 'off', BRIDGE_URL: 'off' },
        { port: gwPort, nodeArgs: CPU_PROF ? ['--cpu-prof', `--cpu-prof-dir=${PROF_DIR}`] : [] },
      ),
    ]);
    const users = await Promise.all(Array.from({ length: 100 }, (_, i) => signToken(SECRET, { sub: `bench-${i}`, apps: [APP], tier: 'pro' }, { expiresIn: '2h' })));
    const auth = (i: number) => ({ authorization: `Bearer ${users[i % users.length]}` });
    const results: Result[] = [];
    const run = randomBytes(3).toString('hex');

    if (runs('proxy')) {
      process.stdout.write('GET /api/workflows...\n');
      const nginx = await startNginx(rtPort);
      const paths = [
        ['runtime', rt, () => cpuSecondsOf(runtime.pid)],
        ['gateway → runtime', gw, () => cpuSecondsOf(gateway.pid)],
        ...(nginx ? [['nginx → runtime', nginx.url, () => cpuSecondsOfTree(nginx.pid)] as const] : []),
      ] as const;
      for (const [path, base, cpu] of paths) {
        results.push(await httpLoad('GET /api/workflows', path, REQUESTS * 2, async (i) => (await httpCall(`${base}/api/workflows`, 'GET', undefined, auth(i))).status === 200, cpu));
      }
    }

    if (runs('sessions')) {
      process.stdout.write('session creations...\n');
      const startBody = (i: number, tag: string) => ({ app_id: APP, user_id: `bench-${i % users.length}`, workflow_name: 'assistant', client_request_id: `${run}-${tag}-${i}`, initial_context: { user_tier: 'pro' } });
      results.push(
        await httpLoad('session create', 'runtime (POST /api/chat/start)', REQUESTS, async (i) => {
          const r = await httpCall(`${rt}/api/chat/start`, 'POST', startBody(i, 'd'), { ...auth(i), 'x-tessera-service-key': SERVICE_KEY });
          return r.status === 201;
        }, () => cpuSecondsOf(runtime.pid)),
      );
      results.push(
        await httpLoad('session create', 'gateway → runtime (same call)', REQUESTS, async (i) => {
          const r = await httpCall(`${gw}/api/chat/start`, 'POST', startBody(i, 'g'), auth(i));
          return r.status === 201;
        }),
      );
      results.push(
        await httpLoad('session create', 'gateway → broker → runtime', REQUESTS, async (i) => {
          const r = await httpCall(`${gw}/api/mozaiks/session`, 'POST', { workflow_name: 'assistant', client_request_id: `${run}-b-${i}` }, auth(i));
          return r.status === 200;
        }),
      );
    }

    if (runs('ws')) {
      process.stdout.write('WebSocket events...\n');
      const chatsFor = async (tag: string) =>
        Promise.all(
          Array.from({ length: CHATS }, async (_, i) => {
            const r = await httpCall(`${rt}/api/chats/${APP}/bench/start`, 'POST', { user_id: `bench-${i}`, client_request_id: `${run}-ws-${tag}-${i}` }, auth(i));
            return `${r.json.websocket_url}?access_token=${users[i]}`;
          }),
        );
      // Two rounds, alternating; the second round of each counts (the first warms both paths up).
      for (let round = 0; round < 2; round++) {
        const [direct, relayed] = await Promise.all([chatsFor(`d${round}`), chatsFor(`g${round}`)]);
        const a = await wsLoad('runtime', direct.map((p) => `ws://127.0.0.1:${rtPort}${p}`));
        const b = await wsLoad('gateway → runtime', relayed.map((p) => `ws://127.0.0.1:${gwPort}${p}`));
        if (round === 1) results.push(a, b);
      }
    }

    print(results);
  }
}

function print(results: Result[]) {
  const f = (n: number, d = 1) => (Number.isFinite(n) ? n.toFixed(d) : '-');
  const rows = results.map((r) => [r.load, r.path, `${f(r.rate, 0)} ${r.unit}`, `${f(r.p50)} ms`, `${f(r.p99)} ms`, r.latency, String(r.errors), r.cpuUs === undefined ? '' : `${f(r.cpuUs, 0)} µs`]);
  const head = ['load', 'path', 'throughput', 'p50', 'p99', 'latency of', 'errors', 'CPU/request (its own process)'];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i])).join('  ');
  const out = [`\nconcurrency ${CONCURRENCY}, ${REQUESTS} requests per HTTP load, ${CHATS} chats × ${TURNS} turns of 200 words`, line(head), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line), ''];
  // Overhead: how much slower the gateway path is than the direct one, as a ratio.
  const pairs: [string, string, string][] = [
    ['GET /api/workflows', 'runtime', 'gateway → runtime'],
    ['GET /api/workflows', 'runtime', 'nginx → runtime'],
    ['GET /api/workflows', 'nginx → runtime', 'gateway → runtime'],
    ['session create', 'runtime (POST /api/chat/start)', 'gateway → runtime (same call)'],
    ['session create', 'runtime (POST /api/chat/start)', 'gateway → broker → runtime'],
    ['ws events', 'runtime', 'gateway → runtime'],
  ];
  out.push("each path against another (throughput ×: the other's ÷ its own; p50, p99 and CPU ×: its own ÷ the other's):");
  for (const [load, a, b] of pairs) {
    const x = results.find((r) => r.load === load && r.path === a);
    const y = results.find((r) => r.load === load && r.path === b);
    if (!x || !y) continue;
    const cpu = x.cpuUs !== undefined && y.cpuUs !== undefined ? `  CPU/request ×${f(y.cpuUs / x.cpuUs, 2)}` : '';
    out.push(`  ${load.padEnd(20)} ${`${b} against ${a}`.padEnd(50)} throughput ×${f(x.rate / y.rate, 2)}  p50 ×${f(y.p50 / x.p50, 2)}  p99 ×${f(y.p99 / x.p99, 2)}${cpu}`);
  }
  process.stdout.write(out.join('\n') + '\n');
}

// Every process started is stopped, the schema, temp dir and Redis keys removed, also on errors and Ctrl-C.
runMain(main, { deadlineMs: 10 * 60_000 });

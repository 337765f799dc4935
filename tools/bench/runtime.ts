/**
 * Runtime benchmark: the loads of /work/shared/TARGETS.md against the real runtime, each next to a
 * baseline measured in the same run. Figures are printed, never asserted.
 *
 *   npx tsx tools/bench/runtime.ts [--quick] [--cpu-prof] [scenario...]
 *
 * Scenarios (default: all but `sweep`, in this order):
 *   turns    100 (then 1,000) concurrent chats, each running turns of a 20-word scripted reply,
 *            over the 003 socket and then over AG-UI (the same load as AG-UI runs, SSE);
 *            baseline: the same clients against a bare ws server that answers each input at once
 *   openloop 100 chats, inputs at a fixed total rate (50, 100, 200 turns/s) whatever the replies
 *            do; input → first text p50/p99; baseline: the bare ws server at the same rates
 *   resume   a 10,000-event chat, `client.resume {lastClientIndex: 0}` → `chat.resume_boundary`;
 *            baseline: reading the same 10,000 events from PostgreSQL in the benchmark process
 *   fanout   1,000 clients, one chat each, on two API instances; a writer process appends ~200 B
 *            events the way a worker does (EventWriter → Timeline → ChatFeed) at rising rates
 *   fanout-cluster  the same load with every process (APIs, writer) on a throwaway Redis Cluster
 *            (3 primaries + 3 replicas on 127.0.0.1:7131..7136, `tools/scripts/redis-cluster.sh`,
 *            reset before and after); printed beside the single-Redis fanout of the same run
 *   fanout-tail  (only when named) the same load with the timeline's tail on (EVENT_TAIL=on): Redis
 *            indexes, stores and delivers; PostgreSQL written behind in batches
 *   churn    the same while 10% of the clients are dropped every 3 s and reconnect (half to the
 *            other instance) and resume; baseline: the same rates without churn
 *   ceiling  the same clients on two bare ws servers relaying Redis pub/sub, rising rates
 *   memory   1,000 idle sockets on a fresh API instance, RSS before/after; baseline: bare ws
 *   sweep    (only when named) the turn load of 100 chats over worker settings
 *   agui     (only when named) the turn loads over AG-UI alone: with --cpu-prof, a profile of the
 *            adapter without the socket run's samples in it
 *   floor    (only when named) one authenticated HTTP request reading a row, 20,000 times: with
 *            --cpu-prof, a profile of an API instance's cost per request
 *
 * Processes, as deployed: two API instances (`apps/runtime/src/main.ts`) and turn worker(s)
 * (`apps/runtime/src/worker.ts`), TypeScript loaded by tsx in each node process (the sources the
 * tests run, not the esbuild bundle; see tools/bench/README.md), a
 * fresh PostgreSQL schema (dropped at the end), a unique BullMQ prefix, auth on (JWTs from
 * signToken), OBSERVABILITY_EVENTS at its default (on), LOG_LEVEL=warn, the workflow of
 * tools/bench/workflows. Needs Redis and PostgreSQL (`npm run infra`); talks to 127.0.0.1 only.
 *
 * Knobs (env): BENCH_WORKERS (worker processes, 1), BENCH_WORKER_CONCURRENCY (runtime default),
 * BENCH_DB_POOL_SIZE (runtime default), BENCH_TURN_LOADS ("100x5,1000x3": chats x turns), BENCH_WARM_ROUNDS
 * (5, 2 with --quick: rounds of 100 × 10 turns on each protocol before the turn loads), BENCH_STEP_MS (fan-out step length), BENCH_ENV ("K=V,…" added
 * to every runtime process's environment, for experiments), BENCH_AGUI=0 (no AG-UI run beside the socket's),
 * BENCH_AGUI_CYCLES (2, 1 with --quick: times each turn load runs socket, AG-UI, AG-UI, socket),
 * BENCH_CLUSTER=0 (no fanout-cluster in the default list).
 * --cpu-prof writes CPU profiles of the API and worker processes to tmp/bench-prof/.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { setMaxListeners } from 'node:events';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';
import { pgPool, signToken } from '@tessera/kit';
// The kit's test helpers (not part of its package entry).
import { freshSchema, TEST_REDIS_URL, entryOf } from '../../libs/kit/src/testing';
import { Timeline, type NewEvent } from '../../apps/runtime/src/store/timeline';
import { describePeer, measureLangGraph } from './langgraph';
import { aguiConnection, aguiRun, type AguiEvent, type AguiMessage } from './lib/agui';
import { FeedClient, typeTurns, type Envelope } from './lib/clients';
import { addRedisServers, cpuDelta, cpuPer, cpuPerOf, cpuReport, cpuSample, cpuSum, discoverServers, type CpuSample } from './lib/cpu';
import { agent, httpCall, pooled } from './lib/http';
import { cleanup, freePort, onCleanup, ROOT, rssOf, rssPeaks, runMain, sleep, spawnService, type Service } from './lib/proc';
import { benchRedis, memoryPoller } from './lib/redis';
import { deleteKeys } from './lib/redis-keys';
import { fmt, int, markdown, pct, table } from './lib/stats';
import type { WriterCommand, WriterReply } from './fanout-writer';

const argv = process.argv.slice(2);
const QUICK = argv.includes('--quick');
const CPU_PROF = argv.includes('--cpu-prof');
// fanout-cluster starts a throwaway Redis Cluster (redis-server, ports 7131..7136): BENCH_CLUSTER=0 leaves it out.
const DEFAULT_SCENARIOS = ['turns', 'openloop', 'resume', 'fanout', 'fanout-cluster', 'churn', 'ceiling', 'memory'].filter((s) => s !== 'fanout-cluster' || process.env.BENCH_CLUSTER !== '0');
const KNOWN = ['turns', 'openloop', 'resume', 'fanout', 'fanout-cluster', 'fanout-tail', 'churn', 'ceiling', 'memory', 'sweep', 'agui', 'floor'];
const named = argv.filter((a) => !a.startsWith('--'));
for (const n of named) if (!KNOWN.includes(n)) throw new Error(`unknown scenario "${n}"; known: ${KNOWN.join(', ')}`);
const SCENARIOS = named.length ? KNOWN.filter((s) => named.includes(s)) : DEFAULT_SCENARIOS;

const APP = 'app1';
const WORKFLOW = 'bench';
const SECRET = `bench-secret-${randomBytes(16).toString('hex')}`;
const SERVICE_KEY = `bench-service-key-${randomBytes(8).toString('hex')}`;
const RUN = randomBytes(3).toString('hex');
const MIGRATIONS = join(ROOT, 'apps/runtime/prisma/migrations');
const WORKFLOWS = join(ROOT, 'tools/bench/workflows');
const PROF_DIR = join(ROOT, 'tmp/bench-prof');
const EVENT_BYTES = 200;
/** How many times the turn loads run socket, AG-UI, AG-UI, socket (BENCH_AGUI_CYCLES). */
const AGUI_CYCLES = Math.max(1, Number(process.env.BENCH_AGUI_CYCLES ?? (QUICK ? 1 : 2)));
const STEP_MS = Number(process.env.BENCH_STEP_MS ?? (QUICK ? 2_000 : 3_000));
/**
 * BENCH_TURN_PACE: the turn loads' turns a second over all their chats (0: each chat's next turn as
 * soon as its last one is done, the machine saturated). Paced, chat i of n sends its turn k at
 * (k·n + i) / pace seconds from the start, or when its turn k − 1 is done if that is later: both
 * protocols get the same offered load, below what the machine can do, and their CPU per turn is
 * not the CPU of processes fighting over two cores.
 */
const PACE = Number(process.env.BENCH_TURN_PACE ?? 0);
/** BENCH_TOKEN_DELAY_MS: the bench workflow's pause between words (0: none), as a model streams; a run's stream then lives as long as a model's would. */
const TOKEN_DELAY_MS = Number(process.env.BENCH_TOKEN_DELAY_MS ?? 0);

/** The workflows the runtime loads: the bench's own, its words BENCH_TOKEN_DELAY_MS apart when set (a copy, removed at the end). */
function workflowsDir(): string {
  if (!TOKEN_DELAY_MS) return WORKFLOWS;
  const dir = mkdtempSync(join(tmpdir(), 'bench-workflows-'));
  onCleanup(() => rmSync(dir, { recursive: true, force: true }));
  cpSync(WORKFLOWS, dir, { recursive: true });
  const file = join(dir, WORKFLOW, 'workflow.json');
  const w = JSON.parse(readFileSync(file, 'utf8')) as { agents: { model: { token_delay_ms?: number } }[] };
  for (const a of w.agents) a.model.token_delay_ms = TOKEN_DELAY_MS;
  writeFileSync(file, JSON.stringify(w));
  return dir;
}

/** When a paced load's chat `chat` of `chats` may send its turn `turn` (performance.now()), from the load's start; undefined when not paced. */
function dueOf(chats: number, start: () => number): ((chat: number, turn: number) => number) | undefined {
  if (!PACE) return undefined;
  return (chat, turn) => start() + ((turn * chats + chat) / PACE) * 1000;
}

const workerSettings = {
  workers: Number(process.env.BENCH_WORKERS ?? 1),
  concurrency: process.env.BENCH_WORKER_CONCURRENCY,
  pool: process.env.BENCH_DB_POOL_SIZE,
};

/* ------------------------------------------------------------------------------------------------
 * processes
 * ---------------------------------------------------------------------------------------------- */

interface Api {
  name: string;
  port: number;
  svc: Service;
}

let baseEnv: Record<string, string> = {};
const apis: Api[] = [];
let workers: Service[] = [];
let databaseUrl = '';

/** Node's flags for the runtime's processes: --cpu-prof's, and BENCH_NODE_ARGS (space-separated, V8's own too: `--trace-deopt`). */
function nodeArgs(): string[] {
  return [...(CPU_PROF ? ['--cpu-prof', `--cpu-prof-dir=${PROF_DIR}`] : []), ...(process.env.BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean)];
}

async function startApi(name: string, extra: Record<string, string> = {}, args: string[] = nodeArgs()): Promise<Api> {
  const port = await freePort();
  const svc = await spawnService(name, entryOf('runtime'), { ...baseEnv, ...extra, PORT: String(port) }, { port, nodeArgs: args });
  return { name, port, svc };
}

async function startWorkers(n: number, extra: Record<string, string>): Promise<Service[]> {
  return Promise.all(
    Array.from({ length: n }, (_, i) =>
      spawnService(`worker-${i + 1}`, entryOf('runtime-worker'), { ...baseEnv, ...extra, LOG_LEVEL: 'info' }, { log: 'runtime worker ready', nodeArgs: nodeArgs() }),
    ),
  );
}

function workerEnv(s: { concurrency?: string; pool?: string }): Record<string, string> {
  return { ...(s.concurrency && { WORKER_CONCURRENCY: s.concurrency }), ...(s.pool && { DB_POOL_SIZE: s.pool }) };
}

function pidsOf(): Record<string, number> {
  const out: Record<string, number> = {};
  for (const a of apis) out[a.name] = a.svc.pid;
  for (const w of workers) out[w.name] = w.pid;
  return out;
}

/* ------------------------------------------------------------------------------------------------
 * chats and tokens
 * ---------------------------------------------------------------------------------------------- */

const tokens = new Map<string, Promise<string>>();
const tokenOf = (user: string) => {
  let t = tokens.get(user);
  if (!t) tokens.set(user, (t = signToken(SECRET, { sub: user, apps: [APP] }, { expiresIn: '2h' })));
  return t;
};

interface Chat {
  id: string;
  user: string;
  /** ws URL on each API instance, token included. */
  urls: string[];
}

/** Start `n` chats over HTTP (`POST /api/chats/app1/bench/start`), users `{tag}-{i}`, on these two instances. */
async function startChats(tag: string, n: number, on: Api[] = apis): Promise<Chat[]> {
  return pooled(n, 32, async (i) => {
    const user = `${tag}-${i}`;
    const tok = await tokenOf(user);
    const api = on[i % 2];
    const r = await httpCall(`http://127.0.0.1:${api.port}/api/chats/${APP}/${WORKFLOW}/start`, 'POST', { user_id: user, client_request_id: `${RUN}-${tag}-${i}` }, { authorization: `Bearer ${tok}` });
    if (r.status !== 201 && r.status !== 200) throw new Error(`chat start failed: ${r.status} ${JSON.stringify(r.json)}`);
    const path = `${r.json.websocket_url}?access_token=${encodeURIComponent(tok)}`;
    return { id: r.json.chat_id as string, user, urls: on.slice(0, 2).map((a) => `ws://127.0.0.1:${a.port}${path}`) };
  });
}

/* ------------------------------------------------------------------------------------------------
 * summary
 * ---------------------------------------------------------------------------------------------- */

interface SummaryRow {
  scenario: string;
  tessera: string;
  baseline: string;
  target: string;
  peer: string;
  /** What limits the figure (printed under the table). */
  limit?: string;
}
const summary: SummaryRow[] = [];
const notes: string[] = [];
const say = (s: string) => process.stdout.write(s + '\n');

/* ------------------------------------------------------------------------------------------------
 * 1. turns
 * ---------------------------------------------------------------------------------------------- */

interface TurnStats {
  chats: number;
  turnsWanted: number;
  turns: number;
  secs: number;
  firstText: number[];
  complete: number[];
  events: number;
  errors: number;
  timedOut: boolean;
  cpu: string;
  /** CPU ms per turn by process. */
  cpuPerTurn: string;
  /** CPU ms per turn, every measured process together (the benchmark's own excluded). */
  cpuMsPerTurn: number;
  /** CPU seconds by process over the load (cpuDelta). */
  cpuBy: Map<string, number>;
  /** Peak RSS during the load by process, bytes. */
  rss: Record<string, number>;
}

/** CPU ms per unit of work of every process but the benchmark's own, together. */
function cpuMsPer(a: CpuSample, b: CpuSample, units: number): number {
  return cpuMsOf(cpuDelta(a, b), units);
}

function cpuMsOf(delta: Map<string, number>, units: number): number {
  let total = 0;
  for (const [name, v] of delta) if (name !== '(machine)' && name !== 'bench') total += v;
  return (total / units) * 1000;
}

/**
 * Every URL a chat: open all sockets (each waits for chat_meta), then at once every chat runs
 * `turns` turns in sequence: `user.input.submit`, wait for `chat.run_complete`. Timed from the
 * first input to the last completion.
 */
async function turnLoad(urls: string[], turns: number, timeoutMs: number, pids: Record<string, number>): Promise<TurnStats> {
  const firstText: number[] = [];
  const complete: number[] = [];
  let events = 0;
  let errors = 0;
  let done = 0;
  const sockets: WebSocket[] = [];
  const go: (() => void)[] = [];
  const finished: Promise<void>[] = [];
  let t0 = 0;
  const due = dueOf(urls.length, () => t0);
  await pooled(urls.length, 100, async (i) => {
    const ws = new WebSocket(urls[i], { perMessageDeflate: false });
    sockets.push(ws);
    let metaSeen!: () => void;
    const meta = new Promise<void>((r) => (metaSeen = r));
    let send!: () => void;
    finished.push(
      new Promise<void>((fin) => {
        ({ send } = typeTurns(ws, turns, {
          meta: () => metaSeen(),
          message: (m) => {
            if (m.index !== undefined) events++;
            if (m.type === 'chat.error') errors++;
          },
          firstText: (ms) => void firstText.push(ms),
          complete: (ms) => {
            complete.push(ms);
            done++;
          },
          last: () => fin(),
        }, due && ((turn) => due(i, turn))));
        ws.on('error', () => errors++);
        ws.on('close', () => fin());
      }),
    );
    await Promise.race([meta, sleep(20_000).then(() => Promise.reject(new Error('no chat_meta within 20 s')))]);
    go.push(send);
  });
  const peaks = rssPeaks(pids);
  const c0 = cpuSample(pids);
  t0 = performance.now();
  const eventsBefore = events;
  for (const send of go) send();
  const timedOut = await Promise.race([Promise.all(finished).then(() => false), sleep(timeoutMs).then(() => true)]);
  const secs = (performance.now() - t0) / 1000;
  const c1 = cpuSample(pids);
  const rss = peaks();
  const cpu = cpuReport(c0, c1);
  const cpuPerTurn = cpuPer(c0, c1, Math.max(1, done));
  await Promise.all(
    sockets.map(
      (ws) =>
        new Promise<void>((r) => {
          if (ws.readyState === WebSocket.CLOSED) return r();
          ws.once('close', () => r());
          ws.terminate();
        }),
    ),
  );
  return { chats: urls.length, turnsWanted: urls.length * turns, turns: done, secs, firstText, complete, events: events - eventsBefore, errors, timedOut, cpu, cpuPerTurn, cpuMsPerTurn: cpuMsPer(c0, c1, Math.max(1, done)), cpuBy: cpuDelta(c0, c1), rss };
}

/** An AG-UI thread as a frontend keeps it: its own thread id, the conversation so far, its API instance and connection. */
interface AguiThread {
  id: string;
  user: string;
  url: string;
  messages: AguiMessage[];
  connection: ReturnType<typeof aguiConnection>;
}

/**
 * `n` threads with ids of the client's own (as CopilotKit and HttpAgent make them), each opened by
 * a first run that starts its chat and opens the thread's connection (not timed, as the socket
 * run's chat start and connect are not). Thread i goes to API instance i % 2, as chat i's socket
 * does in turnLoad. aguiLoad closes the connections.
 */
async function openAguiThreads(tag: string, n: number): Promise<AguiThread[]> {
  const threads = Array.from({ length: n }, (_, i) => ({
    id: `${RUN}-${tag}-${i}`,
    user: `${tag}-${i}`,
    url: `http://127.0.0.1:${apis[i % 2].port}/api/agui/${APP}/${WORKFLOW}`,
    messages: [] as AguiMessage[],
    connection: aguiConnection(),
  }));
  onCleanup(() => threads.forEach((t) => t.connection.destroy()));
  await pooled(n, 32, async (i) => {
    const r = await aguiTurn(threads[i], 'open', () => undefined);
    if (!r.finished) throw new Error(`AG-UI thread ${threads[i].id} did not open: ${r.error ?? 'no RUN_FINISHED'}`);
  });
  return threads;
}

/** One run of a thread: its message and the conversation so far in, the reply appended to the conversation. */
async function aguiTurn(
  t: AguiThread,
  name: string,
  on: (e: AguiEvent) => void,
  signal?: AbortSignal,
): Promise<{ finished: boolean; error?: string }> {
  t.messages.push({ id: `${t.id}:${name}:u`, role: 'user', content: name });
  const reply = new Map<string, string>();
  let finished = false;
  let error: string | undefined;
  const r = await aguiRun(
    t.url,
    await tokenOf(t.user),
    { threadId: t.id, runId: `${t.id}:${name}`, messages: t.messages },
    (e) => {
      on(e);
      if (e.type === 'TEXT_MESSAGE_CONTENT') reply.set(e.messageId!, (reply.get(e.messageId!) ?? '') + e.delta);
      else if (e.type === 'RUN_FINISHED') finished = true;
      else if (e.type === 'RUN_ERROR') error = `RUN_ERROR ${e.message}`;
    },
    { agent: t.connection, signal },
  );
  if (r.status !== 200) return { finished: false, error: `${r.status} ${r.error}` };
  for (const [id, content] of reply) t.messages.push({ id, role: 'assistant', content });
  return { finished, error };
}

/**
 * The same load as AG-UI runs: every thread at once runs `turns` runs in sequence, each a
 * `POST /api/agui/app1/bench` of a RunAgentInput carrying the conversation so far (as a frontend
 * sends it), read as SSE until the server ends the stream. First text: the run's first
 * TEXT_MESSAGE_CONTENT; complete: its RUN_FINISHED. Timed from the first post to the last
 * RUN_FINISHED.
 */
async function aguiLoad(threads: AguiThread[], turns: number, timeoutMs: number, pids: Record<string, number>): Promise<TurnStats> {
  const firstText: number[] = [];
  const complete: number[] = [];
  let events = 0;
  let errors = 0;
  let done = 0;
  const errorSamples: string[] = [];
  const failed = (why: string) => {
    errors++;
    if (errorSamples.length < 3) errorSamples.push(why);
  };
  const stop = new AbortController();
  // One signal for every run in flight (a listener each): not a leak.
  setMaxListeners(threads.length + 16, stop.signal);
  for (const t of threads) await tokenOf(t.user);
  const peaks = rssPeaks(pids);
  const c0 = cpuSample(pids);
  const t0 = performance.now();
  const due = dueOf(threads.length, () => t0);
  const runs = threads.map(async (thread, i) => {
    for (let turn = 0; turn < turns && !stop.signal.aborted; turn++) {
      const wait = due ? due(i, turn) - performance.now() : 0;
      if (wait > 0) await sleep(wait);
      if (stop.signal.aborted) return;
      const sentAt = performance.now();
      let first = true;
      try {
        const r = await aguiTurn(
          thread,
          `turn-${turn}`,
          (e) => {
            events++;
            if (e.type === 'TEXT_MESSAGE_CONTENT' && first) {
              first = false;
              firstText.push(performance.now() - sentAt);
            } else if (e.type === 'RUN_FINISHED') {
              complete.push(performance.now() - sentAt);
              done++;
            }
          },
          stop.signal,
        );
        if (r.error) failed(r.error);
        if (!r.finished) return;
      } catch (e) {
        if (!stop.signal.aborted) failed((e as Error).message);
        return;
      }
    }
  });
  const timedOut = await Promise.race([Promise.all(runs).then(() => false), sleep(timeoutMs).then(() => true)]);
  const secs = (performance.now() - t0) / 1000;
  const c1 = cpuSample(pids);
  const rss = peaks();
  stop.abort();
  await Promise.all(runs);
  for (const t of threads) t.connection.destroy();
  if (errorSamples.length) notes.push(`AG-UI ${threads.length} × ${turns}: ${errors} errors, e.g. ${errorSamples.join('; ')}`);
  return {
    chats: threads.length,
    turnsWanted: threads.length * turns,
    turns: done,
    secs,
    firstText,
    complete,
    events,
    errors,
    timedOut,
    cpu: cpuReport(c0, c1),
    cpuPerTurn: cpuPer(c0, c1, Math.max(1, done)),
    cpuMsPerTurn: cpuMsPer(c0, c1, Math.max(1, done)),
    cpuBy: cpuDelta(c0, c1),
    rss,
  };
}

/** "+12%": how much more the AG-UI run costs than the socket run, by a measure where more is worse. */
function costOf(socket: number, agui: number): string {
  const p = (agui / socket - 1) * 100;
  return `${p >= 0 ? '+' : '−'}${fmt(Math.abs(p), 1)}%`;
}

/**
 * Two runs of the same load as one: turns, time, latencies and CPU added up (CPU per turn is the
 * pair's), peak RSS the higher. The AG-UI comparison runs socket, AG-UI, AG-UI, socket and merges
 * each protocol's two: whatever drifts over the four (tables growing, autovacuum, the machine's
 * other load) weighs on both alike instead of on whichever ran second.
 */
function merged(...runs: TurnStats[]): TurnStats {
  const cpuBy = cpuSum(...runs.map((r) => r.cpuBy));
  const turns = runs.reduce((n, r) => n + r.turns, 0);
  const rss: Record<string, number> = {};
  for (const r of runs) for (const [n, v] of Object.entries(r.rss)) rss[n] = Math.max(rss[n] ?? 0, v);
  return {
    chats: runs[0].chats,
    turnsWanted: runs.reduce((n, r) => n + r.turnsWanted, 0),
    turns,
    secs: runs.reduce((n, r) => n + r.secs, 0),
    firstText: runs.flatMap((r) => r.firstText),
    complete: runs.flatMap((r) => r.complete),
    events: runs.reduce((n, r) => n + r.events, 0),
    errors: runs.reduce((n, r) => n + r.errors, 0),
    timedOut: runs.some((r) => r.timedOut),
    cpu: runs.map((r) => r.cpu).join('; then '),
    cpuPerTurn: cpuPerOf(cpuBy, Math.max(1, turns)),
    cpuMsPerTurn: cpuMsOf(cpuBy, Math.max(1, turns)),
    cpuBy,
    rss,
  };
}

/** CPU ms per turn of the API instances alone: where a protocol adapter runs (the worker, PostgreSQL and Redis do the same turns either way). */
function apiMsPerTurn(s: TurnStats): number {
  let total = 0;
  for (const [name, v] of s.cpuBy) if (name.startsWith('api-')) total += v;
  return (total / Math.max(1, s.turns)) * 1000;
}

const mb = (bytes: number) => fmt(bytes / 1024 / 1024, 0);
const rssOfApis = (rss: Record<string, number>) => Object.entries(rss).filter(([n]) => n.startsWith('api-')).reduce((t, [, v]) => t + v, 0);
const rssLine = (rss: Record<string, number>) => Object.entries(rss).map(([n, v]) => `${n} ${mb(v)} MB`).join(', ');

/**
 * What one authenticated HTTP request that reads one row costs the processes, in CPU ms: `POST
 * /api/agui/app1/bench/stop` for a thread that does not exist (token check, body validation, one
 * statement, a 404), 2,000 times, 10 in flight over keep-alive connections. A protocol that makes
 * a request per turn pays at least this on top of a socket turn.
 */
async function requestFloor(pids: Record<string, number>, n = 2000): Promise<{ cpuMs: number; cpu: string }> {
  const token = await tokenOf(`floor-${RUN}`);
  return requestCost(pids, n, (i) =>
    httpCall(`http://127.0.0.1:${apis[i % 2].port}/api/agui/${APP}/${WORKFLOW}/stop`, 'POST', { threadId: `none-${RUN}` }, { authorization: `Bearer ${token}` }).then((r) => {
      if (r.status !== 404) throw new Error(`stopping a thread that does not exist: ${r.status} ${JSON.stringify(r.json)}`);
    }),
  );
}

/** What `call` costs the processes, in CPU ms a call: `n` calls, 10 in flight, after 200 untimed. */
async function requestCost(pids: Record<string, number>, n: number, call: (i: number) => Promise<void>): Promise<{ cpuMs: number; cpu: string }> {
  await pooled(200, 10, call);
  const c0 = cpuSample(pids);
  await pooled(n, 10, call);
  const c1 = cpuSample(pids);
  return { cpuMs: cpuMsPer(c0, c1, n), cpu: cpuPer(c0, c1, n) };
}

/** The AG-UI run next to the socket's, measure by measure, with what the adapter costs. */
function aguiRows(load: { chats: number; turns: number }, t: TurnStats, a: TurnStats, floorMs?: number): string[][] {
  const l = `${load.chats} × ${load.turns}`;
  const tps = (s: TurnStats) => s.turns / s.secs;
  return [
    [l, 'turns/s', fmt(tps(t), 0), fmt(tps(a), 0), costOf(1 / tps(t), 1 / tps(a)) + ' time per turn'],
    [l, 'input → first text p50 ms', fmt(pct(t.firstText, 50)), fmt(pct(a.firstText, 50)), costOf(pct(t.firstText, 50), pct(a.firstText, 50))],
    [l, 'input → first text p99 ms', fmt(pct(t.firstText, 99)), fmt(pct(a.firstText, 99)), costOf(pct(t.firstText, 99), pct(a.firstText, 99))],
    [l, 'turn p50 ms (→ run_complete / RUN_FINISHED)', fmt(pct(t.complete, 50)), fmt(pct(a.complete, 50)), costOf(pct(t.complete, 50), pct(a.complete, 50))],
    [l, 'turn p99 ms', fmt(pct(t.complete, 99)), fmt(pct(a.complete, 99)), costOf(pct(t.complete, 99), pct(a.complete, 99))],
    [l, 'CPU ms per turn (APIs, worker, PostgreSQL, Redis)', fmt(t.cpuMsPerTurn, 1), fmt(a.cpuMsPerTurn, 1), costOf(t.cpuMsPerTurn, a.cpuMsPerTurn)],
    // The adapter runs in the API instances: what it adds there, as a share of the socket's whole turn.
    [l, 'CPU ms per turn of the 2 API instances (where the adapter runs)', fmt(apiMsPerTurn(t), 2), fmt(apiMsPerTurn(a), 2), `${fmt(apiMsPerTurn(a) - apiMsPerTurn(t), 2)} ms: ${costOf(t.cpuMsPerTurn, t.cpuMsPerTurn + apiMsPerTurn(a) - apiMsPerTurn(t))} of the socket's turn`],
    ...(floorMs === undefined
      ? []
      : [[l, 'floor: the socket turn + 1 authenticated request reading a row (CPU ms)', fmt(t.cpuMsPerTurn, 1), fmt(t.cpuMsPerTurn + floorMs, 1), costOf(t.cpuMsPerTurn, t.cpuMsPerTurn + floorMs)]]),
    [l, 'peak RSS of the 2 API instances MB', mb(rssOfApis(t.rss)), mb(rssOfApis(a.rss)), costOf(rssOfApis(t.rss), rssOfApis(a.rss))],
    [l, 'errors', String(t.errors), String(a.errors), ''],
  ];
}

function turnRow(label: string, s: TurnStats): string[] {
  return [
    label,
    `${s.chats} × ${s.turnsWanted / s.chats}`,
    `${s.turns}${s.timedOut ? ' (timed out)' : ''}`,
    fmt(s.turns / s.secs, 0),
    `${fmt(pct(s.firstText, 50))} / ${fmt(pct(s.firstText, 99))}`,
    `${fmt(pct(s.complete, 50))} / ${fmt(pct(s.complete, 99))}`,
    int(s.events / s.secs),
    String(s.errors),
  ];
}
const TURN_HEAD = ['path', 'chats × turns', 'turns done', 'turns/s', 'input→first text p50/p99 ms', 'input→run_complete p50/p99 ms', 'events/s', 'errors'];

async function bareServers(n: number, extra: Record<string, string> = {}, args: string[] = []): Promise<Api[]> {
  return Promise.all(
    Array.from({ length: n }, async (_, i) => {
      const port = await freePort();
      const svc = await spawnService(`bare-ws-${i + 1}`, 'tools/bench/bare-ws-server.ts', { REDIS_URL: TEST_REDIS_URL, BARE_PORT: String(port), BARE_CHANNEL_PREFIX: `bare-${RUN}`, ...extra }, { port, nodeArgs: args });
      return { name: `bare-${i + 1}`, port, svc };
    }),
  );
}

function turnLoads(): { chats: number; turns: number }[] {
  // BENCH_TURN_LOADS="100x5,1000x3" picks the loads.
  const picked = process.env.BENCH_TURN_LOADS?.split(',').map((l) => {
    const [chats, turns] = l.split('x').map(Number);
    return { chats, turns };
  });
  return (
    picked ??
    (QUICK
      ? [
          { chats: 100, turns: 3 },
          { chats: 1000, turns: 1 },
        ]
      : [
          { chats: 100, turns: 5 },
          { chats: 1000, turns: 3 },
        ])
  );
}

async function scenarioTurns(): Promise<void> {
  const loads = turnLoads();
  say(`\n## turns — ${workers.length} worker process(es), ${describeWorkers(workerSettings)}${PACE ? `; paced: ${PACE} turns/s` : ''}${TOKEN_DELAY_MS ? `; ${TOKEN_DELAY_MS} ms between words` : ''}`);
  // The peer, measured right before Tessera on the same machine: LangGraph's in-memory dev server,
  // 100 threads × the 100-chat load's turns over its HTTP + SSE API (tools/bench/langgraph.ts).
  // BENCH_LANGGRAPH=0 leaves it out.
  const peerRuns = loads.find((l) => l.chats === 100)?.turns;
  const peer = peerRuns && process.env.BENCH_LANGGRAPH !== '0' ? await measureLangGraph({ threads: 100, runs: peerRuns, say }) : undefined;
  if (peer) say(`  ${describePeer(peer)}${peer.skipped ? '' : `\n    cpu: ${peer.cpu}`}`);
  const withAgui = process.env.BENCH_AGUI !== '0';
  await warmUp(withAgui);
  const bare = await bareServers(2);
  const rows: string[][] = [];
  const results: { load: (typeof loads)[number]; t: TurnStats; b: TurnStats; a?: TurnStats }[] = [];
  try {
    for (const [li, load] of loads.entries()) {
      // With AG-UI beside it (the same workflow and turns, on chats of its own): socket, AG-UI,
      // AG-UI, socket, AGUI_CYCLES times, each protocol's runs merged (merged()): a drift (the
      // processes still getting cheaper, PostgreSQL's swings) falls on both alike.
      const overSocket = async (n: number, part: string) => {
        const chats = await startChats(`t${load.chats}-${li}-${n}-${RUN}`, load.chats);
        const r = await turnLoad(chats.map((c, i) => c.urls[i % 2]), load.turns, 60_000, pidsOf());
        say(`  tessera ${load.chats} chats${part}: cpu ${r.cpu}\n    CPU ms per turn: ${r.cpuPerTurn}\n    peak RSS: ${rssLine(r.rss)}`);
        return r;
      };
      const overAgui = async (n: number, part: string) => {
        const r = await aguiLoad(await openAguiThreads(`a${load.chats}-${li}-${n}`, load.chats), load.turns, 60_000, pidsOf());
        say(`  AG-UI ${load.chats} chats${part}: cpu ${r.cpu}\n    CPU ms per turn: ${r.cpuPerTurn}\n    peak RSS: ${rssLine(r.rss)}`);
        return r;
      };
      let t: TurnStats;
      let a: TurnStats | undefined;
      if (withAgui) {
        const sockets: TurnStats[] = [];
        const aguis: TurnStats[] = [];
        for (let c = 1; c <= AGUI_CYCLES; c++) {
          const of = ` (cycle ${c} of ${AGUI_CYCLES}`;
          const t1 = await overSocket(sockets.length + 1, `${of}, 1 of 2)`);
          const a1 = await overAgui(aguis.length + 1, `${of}, 1 of 2)`);
          const a2 = await overAgui(aguis.length + 2, `${of}, 2 of 2)`);
          const t2 = await overSocket(sockets.length + 2, `${of}, 2 of 2)`);
          say(
            `    AG-UI costs ${costOf(t1.cpuMsPerTurn, a1.cpuMsPerTurn)} and ${costOf(t2.cpuMsPerTurn, a2.cpuMsPerTurn)} CPU per turn, each AG-UI run beside its nearer socket run; ` +
              `the API instances ${fmt(apiMsPerTurn(merged(a1, a2)) - apiMsPerTurn(merged(t1, t2)), 2)} ms more a turn`,
          );
          sockets.push(t1, t2);
          aguis.push(a1, a2);
        }
        t = merged(...sockets);
        a = merged(...aguis);
      } else t = await overSocket(1, '');
      const bpids = Object.fromEntries(bare.map((b) => [b.name, b.svc.pid]));
      const b = await turnLoad(
        Array.from({ length: load.chats }, (_, i) => `ws://127.0.0.1:${bare[i % 2].port}/ws/${WORKFLOW}/${APP}/bare-${i}/u${i}`),
        load.turns,
        60_000,
        bpids,
      );
      say(`  bare ws ${load.chats} chats: cpu ${b.cpu}`);
      rows.push(turnRow('tessera (2 API + workers)', t), ...(a ? [turnRow('tessera over AG-UI (SSE, same processes)', a)] : []), turnRow('bare ws (no storage, no queue)', b));
      results.push({ load, t, b, a });
    }
  } finally {
    await Promise.all(bare.map((b) => b.svc.stop()));
  }
  say(table(TURN_HEAD, rows));
  if (withAgui) {
    const floor = await requestFloor(pidsOf());
    say(`\n  one authenticated HTTP request reading a row (POST …/stop of no thread, 404): CPU ms per request: ${floor.cpu}`);
    say('\n## AG-UI beside the 003 socket — the same workflow, chats and turns, straight to the 2 API instances');
    say(table(['load', 'measure', '003 socket', 'AG-UI', 'AG-UI costs'], results.flatMap(({ load, t, a }) => (a ? aguiRows(load, t, a, floor.cpuMs) : []))));
  }
  for (const { load, t, b, a } of results) {
    if (a)
      summary.push({
        scenario: `turns over AG-UI: ${load.chats} chats × ${load.turns} turns (SSE)`,
        tessera: `${fmt(a.turns / a.secs, 0)} turns/s; first text p50 ${fmt(pct(a.firstText, 50))} / p99 ${fmt(pct(a.firstText, 99))} ms; turn p99 ${fmt(pct(a.complete, 99))} ms; ${fmt(a.cpuMsPerTurn, 1)} CPU ms/turn${a.timedOut ? ' (timed out)' : ''}${a.errors ? `; ${a.errors} errors` : ''}`,
        baseline: `003 socket: ${fmt(t.turns / t.secs, 0)} turns/s, first text p99 ${fmt(pct(t.firstText, 99))} ms, ${fmt(t.cpuMsPerTurn, 1)} CPU ms/turn; AG-UI costs ${costOf(t.secs / t.turns, a.secs / a.turns)} in time per turn, ${costOf(t.cpuMsPerTurn, a.cpuMsPerTurn)} in CPU per turn`,
        target: 'adapter < 10%',
        peer: '—',
        limit: `CPU ms per turn over AG-UI: ${a.cpuPerTurn}`,
      });
    summary.push({
      scenario: `turns: ${load.chats} chats × ${load.turns} turns (20-word replies)`,
      tessera: `${fmt(t.turns / t.secs, 0)} turns/s; first text p50 ${fmt(pct(t.firstText, 50))} / p99 ${fmt(pct(t.firstText, 99))} ms; run_complete p99 ${fmt(pct(t.complete, 99))} ms; ${int(t.events / t.secs)} ev/s${t.timedOut ? ' (timed out)' : ''}${t.errors ? `; ${t.errors} errors` : ''}`,
      baseline: `bare ws echo: ${fmt(b.turns / b.secs, 0)} turns/s; first text p99 ${fmt(pct(b.firstText, 99))} ms`,
      limit: `CPU ms per turn: ${t.cpuPerTurn}`,
      target: load.chats === 100 ? '≥ 670 turns/s; ≤ 3 ms CPU per turn' : load.chats === 1000 ? '≥ 1,000 turns/s; p99 ≤ 3 × p50' : '—',
      peer: load.chats === 100 && peer ? describePeer(peer) : '—',
    });
  }
}

/* ------------------------------------------------------------------------------------------------
 * 1b. open loop: turns at a fixed rate, whatever the replies do
 * ---------------------------------------------------------------------------------------------- */

interface OpenLoopStats {
  rate: number;
  sent: number;
  answered: number;
  firstText: number[];
  cpuPerTurn: string;
}

/**
 * Inputs arrive at `rate` per second in total, spread round robin over the chats, for `secs`
 * seconds, whether or not earlier turns have finished (a chat whose turn still runs queues the
 * input). Latency: from an input's send to the first assistant text of its turn.
 */
async function openLoad(urls: string[], rate: number, secs: number, pids: Record<string, number>): Promise<OpenLoopStats> {
  const firstText: number[] = [];
  const sockets: WebSocket[] = [];
  let answered = 0;
  await pooled(urls.length, 100, async (i) => {
    const ws = new WebSocket(urls[i], { perMessageDeflate: false });
    sockets.push(ws);
    const waiting: number[] = [];
    let first = false;
    let metaSeen!: () => void;
    const meta = new Promise<void>((r) => (metaSeen = r));
    (ws as WebSocket & { sentAt?: number[] }).sentAt = waiting;
    ws.on('message', (d) => {
      const m = JSON.parse(d.toString()) as Envelope;
      if (m.type === 'chat_meta') return metaSeen();
      if (m.type !== 'chat.text') return;
      if (m.data.role === 'user') first = true;
      else if (first && waiting.length) {
        first = false;
        firstText.push(performance.now() - waiting.shift()!);
        answered++;
      }
    });
    await Promise.race([meta, sleep(20_000).then(() => Promise.reject(new Error('no chat_meta within 20 s')))]);
  });
  const c0 = cpuSample(pids);
  const t0 = performance.now();
  const total = Math.round(rate * secs);
  for (let k = 0; k < total; k++) {
    const due = t0 + (k * 1000) / rate;
    const wait = due - performance.now();
    if (wait > 1) await sleep(wait);
    const ws = sockets[k % sockets.length] as WebSocket & { sentAt: number[] };
    ws.sentAt.push(performance.now());
    ws.send(JSON.stringify({ type: 'user.input.submit', text: `open ${k}` }));
  }
  const deadline = performance.now() + 30_000;
  while (answered < total && performance.now() < deadline) await sleep(50);
  const c1 = cpuSample(pids);
  const cpuPerTurn = cpuPer(c0, c1, Math.max(1, answered));
  for (const ws of sockets) ws.terminate();
  return { rate, sent: total, answered, firstText, cpuPerTurn };
}

async function scenarioOpenLoop(): Promise<void> {
  const rates = (process.env.BENCH_OPEN_RATES ?? (QUICK ? '50,100' : '50,100,200')).split(',').map(Number);
  const secs = QUICK ? 5 : 10;
  say(`\n## open loop — 100 chats, inputs at a fixed rate for ${secs} s each`);
  const warm = await startChats(`ol-warm-${RUN}`, 50);
  await turnLoad(warm.map((c, i) => c.urls[i % 2]), 2, 30_000, pidsOf());
  const bare = await bareServers(2);
  const rows: string[][] = [];
  try {
    for (const rate of rates) {
      const chats = await startChats(`ol${rate}-${RUN}`, 100);
      const t = await openLoad(chats.map((c, i) => c.urls[i % 2]), rate, secs, pidsOf());
      const bpids = Object.fromEntries(bare.map((b) => [b.name, b.svc.pid]));
      const b = await openLoad(Array.from({ length: 100 }, (_, i) => `ws://127.0.0.1:${bare[i % 2].port}/ws/${WORKFLOW}/${APP}/ol${rate}-${i}/u${i}`), rate, secs, bpids);
      say(`  ${rate} turns/s: tessera CPU ms per turn: ${t.cpuPerTurn}`);
      for (const [label, x] of [['tessera (2 API + workers)', t], ['bare ws', b]] as const)
        rows.push([label, String(rate), `${x.answered} / ${x.sent}`, fmt(pct(x.firstText, 50)), fmt(pct(x.firstText, 99)), fmt(Math.max(0, ...x.firstText))]);
      summary.push({
        scenario: `turns, open loop: ${rate} turns/s over 100 chats`,
        tessera: `first text p50 ${fmt(pct(t.firstText, 50))} / p99 ${fmt(pct(t.firstText, 99))} ms; ${t.answered}/${t.sent} answered`,
        baseline: `bare ws echo: p50 ${fmt(pct(b.firstText, 50))} / p99 ${fmt(pct(b.firstText, 99))} ms`,
        target: rate === 200 ? 'p99 ≤ 50 ms' : '—',
        peer: '—',
        limit: `CPU ms per turn: ${t.cpuPerTurn}`,
      });
    }
  } finally {
    await Promise.all(bare.map((b) => b.svc.stop()));
  }
  say(table(['path', 'turns/s offered', 'answered', 'first text p50 ms', 'p99 ms', 'max ms'], rows));
}

/**
 * Warm-up (JIT, pools, BullMQ scripts) on chats of their own, not counted: rounds of 100 chats ×
 * 10 turns, on the socket and (withAgui) over AG-UI, BENCH_WARM_ROUNDS of them (5). V8 optimizes a
 * function once it has run enough, and a request runs many functions once each: after a warm-up of
 * 100 (and of 400) turns its optimizing compiler still took about a fifth of the API instances' CPU
 * during the measured AG-UI runs (perf; 259 functions of one instance compiled for the first time
 * after second 5, V8's code log), and the socket's CPU per turn fell by up to a third over the four
 * measured runs. Each round's CPU per turn is printed.
 */
async function warmUp(withAgui: boolean): Promise<void> {
  const rounds = Number(process.env.BENCH_WARM_ROUNDS ?? (QUICK ? 2 : 5));
  const seen: string[] = [];
  for (let r = 0; r < rounds; r++) {
    const chats = await startChats(`warm${r}-${RUN}`, 100);
    const t = await turnLoad(chats.map((c, i) => c.urls[i % 2]), 10, 60_000, pidsOf());
    const a = withAgui ? await aguiLoad(await openAguiThreads(`agui-warm${r}`, 100), 10, 60_000, pidsOf()) : undefined;
    seen.push(`${fmt(t.cpuMsPerTurn, 2)}${a ? ` / ${fmt(a.cpuMsPerTurn, 2)}` : ''}`);
  }
  say(`  warm-up: ${rounds} rounds of 100 chats × 10 turns; CPU ms per turn, socket${withAgui ? ' / AG-UI' : ''}: ${seen.join(', ')}`);
}

/** The turn loads over AG-UI alone (no socket run, no baseline): for profiling the adapter. */
async function scenarioAgui(): Promise<void> {
  say(`\n## AG-UI alone — ${workers.length} worker process(es), ${describeWorkers(workerSettings)}`);
  await warmUp(true);
  const rows: string[][] = [];
  for (const [li, load] of turnLoads().entries()) {
    const a = await aguiLoad(await openAguiThreads(`ao${load.chats}-${li}`, load.chats), load.turns, 60_000, pidsOf());
    say(`  AG-UI ${load.chats} chats: cpu ${a.cpu}\n    CPU ms per turn: ${a.cpuPerTurn}\n    peak RSS: ${rssLine(a.rss)}`);
    rows.push(turnRow('tessera over AG-UI (SSE)', a));
  }
  say(table(TURN_HEAD, rows));
}

/** The request floor alone, long enough for a profile of it (no workers, no turns). */
async function scenarioFloor(): Promise<void> {
  const n = QUICK ? 2000 : 20_000;
  const floor = await requestFloor(pidsOf(), n);
  say(`\n## floor — one authenticated HTTP request reading a row (POST …/stop of no thread, 404), ${n} times, 10 in flight\n  CPU ms per request: ${floor.cpu}`);
  // The same request's parts: an authenticated GET that reads nothing, and a route that stops at its body's validation.
  const token = await tokenOf(`floor-${RUN}`);
  const expect = (status: number) => (r: { status: number; json: unknown }) => {
    if (r.status !== status) throw new Error(`expected ${status}, got ${r.status} ${JSON.stringify(r.json)}`);
  };
  const get = await requestCost(pidsOf(), n, (i) => httpCall(`http://127.0.0.1:${apis[i % 2].port}/api/workflows`, 'GET', undefined, { authorization: `Bearer ${token}` }).then(expect(200)));
  say(`  GET /api/workflows (authenticated, no statement), CPU ms per request: ${get.cpu}`);
  const invalid = await requestCost(pidsOf(), n, (i) =>
    httpCall(`http://127.0.0.1:${apis[i % 2].port}/api/agui/${APP}/${WORKFLOW}/stop`, 'POST', { threadId: 7 }, { authorization: `Bearer ${token}` }).then(expect(400)),
  );
  say(`  the same POST with an invalid body (400, no statement), CPU ms per request: ${invalid.cpu}`);
}

function describeWorkers(s: { concurrency?: string; pool?: string }): string {
  return `WORKER_CONCURRENCY ${s.concurrency ?? '200 (default)'}, DB_POOL_SIZE ${s.pool ?? '10 (default)'}`;
}

/** The turn load of 100 chats over worker settings (each set restarts the workers). */
async function scenarioSweep(): Promise<void> {
  const sets: { workers: number; concurrency?: string; pool?: string }[] = [
    { workers: 1 },
    { workers: 1, concurrency: '50' },
    { workers: 1, concurrency: '100', pool: '20' },
    { workers: 2 },
    { workers: 2, concurrency: '50', pool: '5' },
    { workers: 2, pool: '20' },
  ];
  const turns = QUICK ? 2 : 5;
  say(`\n## sweep — 100 chats × ${turns} turns per worker setting`);
  const rows: string[][] = [];
  for (const set of sets) {
    await Promise.all(workers.map((w) => w.stop()));
    workers = await startWorkers(set.workers, workerEnv(set));
    const warm = await startChats(`sw-warm-${rows.length}-${RUN}`, 30);
    await turnLoad(warm.map((c, i) => c.urls[i % 2]), 2, 30_000, pidsOf());
    const chats = await startChats(`sw-${rows.length}-${RUN}`, 100);
    const t = await turnLoad(chats.map((c, i) => c.urls[i % 2]), turns, 60_000, pidsOf());
    rows.push(turnRow(`${set.workers} worker(s), ${describeWorkers(set)}`, t));
    say(`  ${rows[rows.length - 1][0]}: ${rows[rows.length - 1][3]} turns/s; cpu ${t.cpu}; CPU ms per turn: ${t.cpuPerTurn}`);
  }
  say(table(TURN_HEAD, rows));
  await Promise.all(workers.map((w) => w.stop()));
  workers = await startWorkers(workerSettings.workers, workerEnv(workerSettings));
}

/* ------------------------------------------------------------------------------------------------
 * 2–4. fan-out, churn, ceiling
 * ---------------------------------------------------------------------------------------------- */

class Writer {
  private constructor(private readonly svc: Service) {}

  static async start(init: Extract<WriterCommand, { cmd: 'init' }>): Promise<Writer> {
    const svc = await spawnService('fanout-writer', 'tools/bench/fanout-writer.ts', { LOG_LEVEL: 'warn', ...(process.env.BENCH_INFLIGHT && { BENCH_INFLIGHT: process.env.BENCH_INFLIGHT }) }, { log: 'fanout writer ready', ipc: true, nodeArgs: nodeArgs() });
    const w = new Writer(svc);
    await w.ask(init);
    return w;
  }

  ask<T extends WriterReply['cmd']>(m: WriterCommand): Promise<Extract<WriterReply, { cmd: T }>> {
    return new Promise((res, rej) => {
      const onMessage = (r: WriterReply) => {
        this.svc.child.off('exit', onExit);
        if (r.cmd === 'error') rej(new Error(`writer: ${r.message}`));
        else res(r as Extract<WriterReply, { cmd: T }>);
      };
      const onExit = () => {
        this.svc.child.off('message', onMessage);
        rej(new Error(`writer exited:\n${this.svc.output()}`));
      };
      this.svc.child.once('message', onMessage);
      this.svc.child.once('exit', onExit);
      this.svc.child.send(m);
    });
  }

  get pid(): number {
    return this.svc.pid;
  }

  async stop(): Promise<void> {
    if (this.svc.child.connected) this.svc.child.send({ cmd: 'stop' } satisfies WriterCommand);
    await this.svc.stop();
  }
}

interface StepResult {
  target: number;
  sentRate: number;
  delivered: number;
  p50: number;
  p99: number;
  max: number;
  lost: number;
  duplicates: number;
  outOfOrder: number;
  undelivered: number;
  drops: number;
  cpu: string;
  /** % of one core by process during the step (as `cpu` prints it). */
  cpuBy: Map<string, number>;
  /** Per client: (from, to] expected in this step. */
  ranges: [number, number][];
  /** Redis used_memory's peak during the step, bytes (when the run polls it). */
  redisPeak?: number;
}

/** Clients for `chats`, half homed on each of the two `urls(chat)` instances; all opened. */
async function openClients(chats: { id: string; urls: string[] }[], sink: { event(l: number | undefined): void }): Promise<FeedClient[]> {
  const clients = chats.map((c, i) => new FeedClient(c.id, c.urls, i % 2, sink));
  await pooled(clients.length, 100, (i) => clients[i].open());
  return clients;
}

/**
 * Rising rates, `STEP_MS` each, open loop; after each step the writer drains and the clients get
 * up to `settleMs` to receive everything. With `churn`, every 3 s 10% of the connected clients are
 * dropped and reconnect at once, half of them to the other instance, resuming from their last
 * applied index. Stops rising once delivery falls far behind.
 */
async function rateSteps(
  label: string,
  clients: FeedClient[],
  writer: Writer,
  rates: number[],
  pids: Record<string, number>,
  opts: { churn?: boolean; stepMs?: number; memory?: { step(): Promise<number> } } = {},
): Promise<StepResult[]> {
  const stepMs = opts.stepMs ?? STEP_MS;
  let latencies: number[] = [];
  let received = 0;
  sinkOf.current = {
    event(l) {
      received++;
      if (l !== undefined) latencies.push(l);
    },
  };
  const results: StepResult[] = [];
  let from = clients.map((c) => c.last);
  let lastIndex: Record<string, number> = {};
  await opts.memory?.step();
  for (const rate of rates) {
    latencies = [];
    const dup0 = sum(clients, (c) => c.duplicates);
    const ooo0 = sum(clients, (c) => c.outOfOrder);
    const c0 = cpuSample({ ...pids, writer: writer.pid });
    const r0 = received;
    const t0 = performance.now();
    let drops = 0;
    const reconnects: Promise<void>[] = [];
    const churnTimer = opts.churn
      ? setInterval(() => {
          const live = clients.filter((c) => c.live);
          shuffle(live);
          const victims = live.slice(0, Math.round(clients.length * 0.1));
          victims.forEach((c, k) => {
            c.drop();
            drops++;
            const to = k % 2 === 0 ? 1 - c.at : c.at;
            reconnects.push(sleep(Math.random() * 50).then(() => c.reconnect(to).catch(() => undefined)));
          });
        }, 3_000)
      : null;
    const step = await writer.ask<'step'>({ cmd: 'step', rate, durationMs: stepMs });
    if (churnTimer) clearInterval(churnTimer);
    const windowSecs = (performance.now() - t0) / 1000;
    const inWindow = received - r0;
    const redisPeak = await opts.memory?.step();
    const flushed = await writer.ask<'flush'>({ cmd: 'flush' });
    const c1 = cpuSample({ ...pids, writer: writer.pid });
    const cpu = cpuReport(c0, c1);
    const cpuBy = new Map([...cpuDelta(c0, c1)].map(([n, v]) => [n, (v / ((c1.at - c0.at) / 1000)) * 100]));
    lastIndex = flushed.lastIndex;
    await Promise.all(reconnects);
    // Give delivery time to catch up with everything stored.
    const until = performance.now() + 10_000;
    while (performance.now() < until && clients.some((c) => c.last < (lastIndex[c.chat] ?? 0))) await sleep(20);
    const undelivered = sum(clients, (c) => Math.max(0, (lastIndex[c.chat] ?? 0) - c.last));
    const to = clients.map((c) => lastIndex[c.chat] ?? c.last);
    const lat = latencies;
    results.push({
      target: rate,
      sentRate: step.sent / (step.elapsedMs / 1000),
      delivered: inWindow / windowSecs,
      p50: pct(lat, 50),
      p99: pct(lat, 99),
      max: lat.reduce((m, x) => (x > m ? x : m), 0),
      lost: 0,
      duplicates: sum(clients, (c) => c.duplicates) - dup0,
      outOfOrder: sum(clients, (c) => c.outOfOrder) - ooo0,
      undelivered,
      drops,
      cpu,
      cpuBy,
      ranges: clients.map((_, i) => [from[i], to[i]]),
      redisPeak,
    });
    from = to;
    const r = results[results.length - 1];
    say(`  ${label} ${int(rate)} ev/s: delivered ${int(r.delivered)} ev/s, p50 ${fmt(r.p50)} ms, p99 ${fmt(r.p99)} ms${opts.churn ? `, ${drops} drops` : ''}; cpu ${cpu}${redisPeak === undefined ? '' : `; Redis used_memory peak ${mib(redisPeak)} MiB`}`);
    if (r.delivered < rate * 0.8 || r.p99 > 2_000 || undelivered > 0) break;
  }
  // Lost: what each client never applied, counted once every step is over (late arrivals count).
  await sleep(300);
  for (const r of results) r.lost = clients.reduce((n, c, i) => n + c.missing(r.ranges[i][0], r.ranges[i][1]), 0);
  return results;
}

const sinkOf: { current: { event(l: number | undefined): void } } = { current: { event: () => undefined } };
const sink = { event: (l: number | undefined) => sinkOf.current.event(l) };

function sum<T>(xs: T[], f: (x: T) => number): number {
  let n = 0;
  for (const x of xs) n += f(x);
  return n;
}

function shuffle<T>(xs: T[]): void {
  for (let i = xs.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [xs[i], xs[j]] = [xs[j], xs[i]];
  }
}

const STEP_HEAD = ['target ev/s', 'sent ev/s', 'delivered ev/s', 'p50 ms', 'p99 ms', 'max ms', 'lost', 'duplicated', 'out of order', 'drops', 'Redis used_memory peak MiB'];
function stepRows(rs: StepResult[]): string[][] {
  return rs.map((r) => [
    int(r.target),
    int(r.sentRate),
    int(r.delivered),
    fmt(r.p50),
    fmt(r.p99),
    fmt(r.max, 0),
    int(r.lost),
    int(r.duplicates),
    int(r.outOfOrder),
    int(r.drops),
    r.redisPeak === undefined || !Number.isFinite(r.redisPeak) ? '–' : mib(r.redisPeak),
  ]);
}

/** Highest delivered rate of a step that kept up (≥ 95% of its target) with p99 under `p99Ms`. */
function sustained(rs: StepResult[], p99Ms = 50): StepResult | undefined {
  return rs.filter((r) => r.delivered >= r.target * 0.95 && r.p99 < p99Ms && r.lost === 0).sort((a, b) => b.delivered - a.delivered)[0];
}
const maxDelivered = (rs: StepResult[]) => rs.reduce((m, r) => Math.max(m, r.delivered), 0);

let fanoutChats: Chat[] | null = null;
async function theFanoutChats(): Promise<Chat[]> {
  fanoutChats ??= await startChats(`f-${RUN}`, QUICK ? 500 : 1000);
  return fanoutChats;
}

let fanoutResults: StepResult[] | null = null;
let ceilingResults: StepResult[] | null = null;

async function withTesseraWriter<T>(fn: (w: Writer, chats: Chat[]) => Promise<T>, on?: { chats: Chat[]; redisUrl: string; tailPrefix?: string }, mode: 'tessera' | 'tail' = 'tessera'): Promise<T> {
  const chats = on?.chats ?? (await theFanoutChats());
  const writer = await Writer.start({
    cmd: 'init',
    mode,
    chats: chats.map((c) => c.id),
    databaseUrl,
    redisUrl: on?.redisUrl ?? TEST_REDIS_URL,
    poolSize: Number(workerSettings.pool ?? 10),
    eventBytes: EVENT_BYTES,
    tailPrefix: on?.tailPrefix,
  });
  try {
    return await fn(writer, chats);
  } finally {
    await writer.stop();
  }
}

function apiPids(): Record<string, number> {
  return Object.fromEntries(apis.slice(0, 2).map((a) => [a.name, a.svc.pid]));
}

/** Autovacuum runs on the timeline tables so far (they show as "other processes" CPU: its workers exit). */
async function vacuumNote(): Promise<string> {
  const pool = pgPool(databaseUrl, 1);
  try {
    const r = await pool.query<{ relname: string; autovacuum_count: string; n_dead_tup: string }>(
      "SELECT relname, autovacuum_count, n_dead_tup FROM pg_stat_user_tables WHERE schemaname = current_schema() AND relname IN ('chats', 'chat_events') ORDER BY relname",
    );
    return r.rows.map((x) => `${x.relname}: ${x.autovacuum_count} autovacuum(s), ${int(Number(x.n_dead_tup))} dead rows`).join('; ');
  } catch (e) {
    return `(no vacuum figures: ${(e as Error).message})`;
  } finally {
    await pool.end();
  }
}

async function scenarioFanout(): Promise<void> {
  const rates = QUICK ? [5_000, 20_000] : [5_000, 10_000, 20_000, 30_000, 40_000];
  await withTesseraWriter(async (writer, chats) => {
    say(`\n## fanout — ${chats.length} clients (one chat each) on 2 API instances, ~${EVENT_BYTES} B events stored then published by a writer process, ${STEP_MS / 1000} s per rate`);
    const clients = await openClients(chats, sink);
    // Warm-up: a short low-rate step, not counted.
    await rateSteps('warm-up', clients, writer, [2_000], apiPids(), { stepMs: 1_000 });
    const redis = await benchRedis(TEST_REDIS_URL, 'bench-memory');
    try {
      const mem = memoryPoller(redis);
      fanoutResults = await rateSteps('tessera', clients, writer, rates, apiPids(), { memory: mem });
      fanoutRedis = { label: 'single Redis', cpuLabel: 'redis', results: fanoutResults, mem: await mem.stop() };
    } finally {
      redis.disconnect();
    }
    await Promise.all(clients.map((c) => c.close()));
  });
  say(table(STEP_HEAD, stepRows(fanoutResults!)));
  say(`  Redis used_memory: ${memLine(fanoutRedis!.mem)} (shared with whatever else uses this Redis)`);
  say(`  PostgreSQL: ${await vacuumNote()}`);
}

/**
 * fanout-tail (only when named): the fan-out load with the timeline's tail on (EVENT_TAIL=on): two
 * API instances of their own with it, and the writer in `tail` mode (fanout-writer.ts: the
 * runtime's EventTail, then publish; its TailFlusher writes PostgreSQL behind). Printed beside the
 * fanout of the same run when that ran first.
 */
async function scenarioFanoutTail(): Promise<void> {
  const rates = QUICK ? [5_000, 20_000] : [5_000, 10_000, 20_000, 30_000, 40_000];
  const n = QUICK ? 500 : 1000;
  const prefix = `bencht-${RUN}`;
  const on = await Promise.all(['api-ta', 'api-tb'].map((name) => startApi(name, { BULL_PREFIX: prefix, EVENT_TAIL: 'on' })));
  let results: StepResult[] = [];
  let memory: FanoutRun['mem'] | null = null;
  try {
    const chats = await startChats(`ft-${RUN}`, n, on);
    const pids = Object.fromEntries(on.map((a) => [a.name, a.svc.pid]));
    await withTesseraWriter(
      async (writer) => {
        say(`\n## fanout-tail — the fanout load with the timeline's tail (EVENT_TAIL=on): ${chats.length} clients on 2 API instances; each batch indexed and stored in the chat's Redis stream, then published; PostgreSQL written behind by the flusher, ${STEP_MS / 1000} s per rate`);
        const clients = await openClients(chats, sink);
        await rateSteps('warm-up', clients, writer, [2_000], pids, { stepMs: 1_000 });
        const redis = await benchRedis(TEST_REDIS_URL, 'bench-memory');
        try {
          const mem = memoryPoller(redis);
          results = await rateSteps('tail', clients, writer, rates, pids, { memory: mem });
          memory = await mem.stop();
        } finally {
          redis.disconnect();
        }
        await Promise.all(clients.map((c) => c.close()));
      },
      { chats, redisUrl: TEST_REDIS_URL, tailPrefix: prefix },
      'tail',
    );
  } finally {
    await Promise.all(on.map((a) => a.svc.stop()));
  }
  say(table(STEP_HEAD, stepRows(results)));
  if (memory) say(`  Redis used_memory: ${memLine(memory)} (the streams are trimmed as PostgreSQL takes them)`);
  const line = (rs: StepResult[]) => {
    const best = sustained(rs);
    return `${best ? `${int(best.delivered)} ev/s at p99 ${fmt(best.p99)} ms kept up` : 'no rate kept up with p99 < 50 ms'}, max ${int(maxDelivered(rs))} ev/s, lost ${sum(rs, (r) => r.lost)}, dup ${sum(rs, (r) => r.duplicates)}`;
  };
  say(`  tail: ${line(results)}`);
  if (fanoutResults) say(`  fanout (PostgreSQL first), same run: ${line(fanoutResults)}`);
}

/* The fan-out on a throwaway Redis Cluster, beside the single Redis's of the same run. */

const CLUSTER_BASE = 7131;

interface FanoutRun {
  label: string;
  /** The name the Redis servers' CPU is reported under. */
  cpuLabel: string;
  results: StepResult[];
  /** used_memory (bytes; a cluster's primaries summed) before the rate steps and the highest seen during them. */
  mem: { before: number; peak: number; last: number };
}
let fanoutRedis: FanoutRun | null = null;

const mib = (b: number) => fmt(b / 1024 / 1024, 1);
function memLine(m: FanoutRun['mem']): string {
  return `${mib(m.before)} MiB before, peak ${mib(m.peak)} MiB during the load (+${mib(m.peak - m.before)})`;
}

/**
 * `tools/scripts/redis-cluster.sh <cmd> 7131`: its last stdout line (`up`: the REDIS_URL, which
 * holds the password). In a process group of its own, stopped whole (redis-cli included) after 2 min.
 */
function clusterScript(cmd: 'up' | 'reset'): Promise<string> {
  return new Promise((res, rej) => {
    const child = spawn('bash', [join(ROOT, 'tools/scripts/redis-cluster.sh'), cmd, String(CLUSTER_BASE)], { cwd: ROOT, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4_000)));
    const timer = setTimeout(() => {
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        // already gone
      }
    }, 120_000);
    child.once('error', (e) => {
      clearTimeout(timer);
      rej(e);
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) return res(stdout.trim().split('\n').pop() ?? '');
      rej(new Error(`redis-cluster.sh ${cmd} ${CLUSTER_BASE} failed (${code ?? signal}): ${stderr.trim().split('\n').slice(-5).join(' | ')}`));
    });
  });
}

/** % of one core of the APIs together, the writer, PostgreSQL and the Redis server(s) in a step. */
function cpuParts(r: StepResult, redisLabel: string): string {
  let apisPct = 0;
  for (const [n, v] of r.cpuBy) if (n.startsWith('api')) apisPct += v;
  const p = (n: string) => fmt(r.cpuBy.get(n) ?? NaN, 0);
  return `APIs ${fmt(apisPct, 0)} / writer ${p('writer')} / PG ${p('postgres')} / Redis ${p(redisLabel)}`;
}

async function scenarioFanoutCluster(): Promise<void> {
  const rates = QUICK ? [5_000, 20_000] : [5_000, 10_000, 20_000, 30_000, 40_000];
  const n = QUICK ? 500 : 1000;
  let reset: Promise<unknown> | null = null;
  const resetOnce = () => (reset ??= clusterScript('reset'));
  onCleanup(resetOnce);
  await clusterScript('reset');
  const t0 = performance.now();
  const url = await clusterScript('up');
  if (!url.startsWith('redis+cluster://')) throw new Error('redis-cluster.sh up printed no redis+cluster:// URL');
  const prefix = `benchc-${RUN}`;
  const on: Api[] = [];
  let run: FanoutRun | null = null;
  try {
    await addRedisServers(url, 'redis-cluster').catch((e: Error) => notes.push(`fanout-cluster: the cluster's Redis servers not identified (${e.message}); their CPU is not counted`));
    on.push(...(await Promise.all(['api-ca', 'api-cb'].map((name) => startApi(name, { REDIS_URL: url, BULL_PREFIX: prefix })))));
    say(`\n## fanout-cluster — the same load on a Redis Cluster (3 primaries + 3 replicas, 127.0.0.1:${CLUSTER_BASE}..${CLUSTER_BASE + 5}, up in ${fmt((performance.now() - t0) / 1000)} s): ${n} clients on 2 API instances and the writer all on the cluster, ${STEP_MS / 1000} s per rate`);
    const chats = await startChats(`fc-${RUN}`, n, on);
    const pids = Object.fromEntries(on.map((a) => [a.name, a.svc.pid]));
    await withTesseraWriter(
      async (writer) => {
        const clients = await openClients(chats, sink);
        await rateSteps('warm-up', clients, writer, [2_000], pids, { stepMs: 1_000 });
        const redis = await benchRedis(url, 'bench-memory');
        try {
          const mem = memoryPoller(redis);
          const results = await rateSteps('tessera on cluster', clients, writer, rates, pids, { memory: mem });
          run = { label: 'Redis Cluster, 3 primaries', cpuLabel: 'redis-cluster', results, mem: await mem.stop() };
        } finally {
          redis.disconnect();
        }
        await Promise.all(clients.map((c) => c.close()));
      },
      { chats, redisUrl: url },
    );
  } finally {
    await Promise.all(on.map((a) => a.svc.stop()));
    // What the runtime left on the cluster (BullMQ keys under its prefix), then the cluster itself.
    await deleteKeys(url, `${prefix}:`).catch((e: Error) => notes.push(`fanout-cluster: keys not deleted (${e.message})`));
    await resetOnce();
  }
  const cluster = run as FanoutRun | null;
  if (!cluster) return;
  say(table(STEP_HEAD, stepRows(cluster.results)));
  say(`  Redis used_memory (summed over the 3 primaries): ${memLine(cluster.mem)}`);
  const runs = [fanoutRedis, cluster].filter((r): r is FanoutRun => !!r);
  // CPU at the highest rate that every run reached.
  const cpuRate = Math.max(0, ...rates.filter((r) => runs.every((x) => x.results.some((s) => s.target === r))));
  const head = ['Redis', ...rates.map((r) => `${int(r / 1000)}k p50/p99 ms`), 'max ev/s', 'lost', 'dup', `CPU % at ${int(cpuRate / 1000)}k (APIs / writer / PG / Redis)`, 'Redis used_memory MiB (peak, +Δ)'];
  const rowOf = (x: FanoutRun) => [
    x.label,
    ...rates.map((r) => {
      const s = x.results.find((y) => y.target === r);
      return s ? `${fmt(s.p50)} / ${fmt(s.p99)}` : '-';
    }),
    int(maxDelivered(x.results)),
    int(sum(x.results, (r) => r.lost)),
    int(sum(x.results, (r) => r.duplicates)),
    (() => {
      const s = x.results.find((y) => y.target === cpuRate);
      return s ? cpuParts(s, x.cpuLabel) : '-';
    })(),
    `${mib(x.mem.peak)} (+${mib(x.mem.peak - x.mem.before)})`,
  ];
  say(`\n  fan-out, same run: single Redis vs Redis Cluster\n${table(head, runs.map(rowOf))}`);
  const figures = (x: FanoutRun) => {
    const best = sustained(x.results);
    return `${best ? `${int(best.delivered)} ev/s at p99 ${fmt(best.p99)} ms (highest kept up with p99 < 50 ms)` : 'no rate kept up with p99 < 50 ms'}; max ${int(maxDelivered(x.results))} ev/s; lost ${sum(x.results, (r) => r.lost)}, dup ${sum(x.results, (r) => r.duplicates)}; Redis ${mib(x.mem.peak)} MiB peak`;
  };
  const top = cluster.results.find((r) => r.delivered === maxDelivered(cluster.results));
  summary.push({
    scenario: `fanout on a Redis Cluster (3 primaries + 3 replicas): ${n} clients, 2 instances`,
    tessera: figures(cluster),
    baseline: fanoutRedis ? `single Redis, same run: ${figures(fanoutRedis)}` : 'fanout (single Redis) not run',
    target: '≥ 20k ev/s at p99 < 50 ms',
    peer: '—',
    limit: top ? `CPU at the ${int(top.target)} ev/s step: ${top.cpu}` : undefined,
  });
}

async function scenarioChurn(): Promise<void> {
  // Up to the hot-tail issue's target (10k ev/s, 0 lost, 0 duplicated, p99 < 100 ms).
  const rates = [1_000, 2_000, 5_000, 10_000];
  const stepMs = QUICK ? 6_500 : 9_500;
  let churn: StepResult[] = [];
  let calm: StepResult[] = [];
  await withTesseraWriter(async (writer, chats) => {
    say(`\n## churn — ${chats.length} clients; every 3 s 10% dropped and reconnected (half to the other instance) with client.resume; ${stepMs / 1000} s per rate`);
    const clients = await openClients(chats, sink);
    calm = await rateSteps('no churn', clients, writer, rates, apiPids(), { stepMs: Math.min(stepMs, STEP_MS) });
    churn = await rateSteps('churn', clients, writer, rates, apiPids(), { churn: true, stepMs });
    const unexpected = sum(clients, (c) => c.unexpectedCloses);
    if (unexpected) notes.push(`churn: ${unexpected} connections closed by the server (clients reconnected and resumed)`);
    await Promise.all(clients.map((c) => c.close()));
  });
  say(table(STEP_HEAD, stepRows(churn)));
  const at = (r: number, rs: StepResult[]) => rs.find((x) => x.target === r);
  summary.push({
    scenario: `churn: ${(await theFanoutChats()).length} clients, 10% dropped every 3 s, resume`,
    tessera: rates
      .map((r) => at(r, churn))
      .filter((x): x is StepResult => !!x)
      .map((x) => `${int(x.target)}: ${int(x.delivered)} ev/s, p99 ${fmt(x.p99, 0)} ms, lost ${x.lost}, dup ${x.duplicates}`)
      .join('; '),
    baseline: `no churn: ${calm.map((x) => `${int(x.target)}: p99 ${fmt(x.p99, 0)} ms, lost ${x.lost}`).join('; ')}`,
    target: '≥ 10,000 ev/s, 0 lost, 0 duplicated, p99 < 100 ms',
    peer: 'socket.io + recovery: clean only to ~750 ev/s; 32% lost at 1–2k',
    limit: churn.length ? `CPU at the ${int(churn[churn.length - 1].target)} ev/s step: ${churn[churn.length - 1].cpu}; p99 under churn is the reconnect + replay time of the dropped 10%` : undefined,
  });
}

async function scenarioCeiling(): Promise<void> {
  const rates = QUICK ? [20_000, 60_000] : [20_000, 40_000, 60_000, 80_000, 100_000, 120_000];
  const n = QUICK ? 500 : 1000;
  const bare = await bareServers(2);
  say(`\n## ceiling — ${n} clients on 2 bare ws servers relaying Redis pub/sub (no storage), ${STEP_MS / 1000} s per rate`);
  const chats = Array.from({ length: n }, (_, i) => ({ id: `c${i}`, urls: bare.map((b) => `ws://127.0.0.1:${b.port}/ws/${WORKFLOW}/${APP}/c${i}/u${i}`) }));
  const writer = await Writer.start({ cmd: 'init', mode: 'raw', chats: chats.map((c) => c.id), databaseUrl, redisUrl: TEST_REDIS_URL, poolSize: 1, eventBytes: EVENT_BYTES, channelPrefix: `bare-${RUN}` });
  try {
    const clients = await openClients(chats, sink);
    const pids = Object.fromEntries(bare.map((b) => [b.name, b.svc.pid]));
    await rateSteps('warm-up', clients, writer, [5_000], pids, { stepMs: 1_000 });
    ceilingResults = await rateSteps('bare ws', clients, writer, rates, pids);
    await Promise.all(clients.map((c) => c.close()));
  } finally {
    await writer.stop();
    await Promise.all(bare.map((b) => b.svc.stop()));
  }
  say(table(STEP_HEAD, stepRows(ceilingResults)));
}

function fanoutSummary(): void {
  if (!fanoutResults) return;
  const best = sustained(fanoutResults);
  const top = maxDelivered(fanoutResults);
  const topStep = fanoutResults.find((r) => r.delivered === top);
  const ceil = ceilingResults ? maxDelivered(ceilingResults) : NaN;
  const n = fanoutChats?.length ?? 0;
  summary.push({
    scenario: `fanout: ${n} clients, 2 instances, ~${EVENT_BYTES} B events`,
    tessera: `${best ? `${int(best.delivered)} ev/s at p99 ${fmt(best.p99)} ms (highest rate kept up with p99 < 50 ms)` : 'no rate kept up with p99 < 50 ms'}; max delivered ${int(top)} ev/s; lost ${sum(fanoutResults, (r) => r.lost)}, dup ${sum(fanoutResults, (r) => r.duplicates)}`,
    baseline: ceilingResults ? `bare ws ceiling: max ${int(ceil)} ev/s` : 'ceiling not run',
    target: '≥ 20k ev/s at p99 < 50 ms',
    peer: 'socket.io ~12k ev/s at p99 < 40 ms',
    limit: topStep ? `CPU at the ${int(topStep.target)} ev/s step: ${topStep.cpu}` : undefined,
  });
  if (ceilingResults) {
    const cb = sustained(ceilingResults);
    summary.push({
      scenario: 'ceiling: Tessera fan-out ÷ bare ws broadcast of Redis pub/sub',
      tessera: `${fmt((top / ceil) * 100, 0)}% (max delivered ${int(top)} ÷ ${int(ceil)} ev/s)${best && cb ? `; at p99 < 50 ms: ${fmt((best.delivered / cb.delivered) * 100, 0)}%` : ''}`,
      baseline: `bare ws: max ${int(ceil)} ev/s${cb ? `, ${int(cb.delivered)} ev/s at p99 ${fmt(cb.p99)} ms` : ''}`,
      target: '≥ 75%',
      peer: 'raw ceiling ~100k msgs/s',
      limit: (() => {
        const c = ceilingResults.find((r) => r.delivered === ceil);
        return c ? `bare ws CPU at the ${int(c.target)} ev/s step: ${c.cpu}` : undefined;
      })(),
    });
  }
}

/* ------------------------------------------------------------------------------------------------
 * 5. resume
 * ---------------------------------------------------------------------------------------------- */

async function scenarioResume(): Promise<void> {
  const total = 10_000;
  const tries = QUICK ? 6 : 20;
  say(`\n## resume — a ${int(total)}-event chat, client.resume {lastClientIndex: 0} → chat.resume_boundary, ${tries} tries`);
  const [chat] = await startChats(`r-${RUN}`, 1);
  const pool = pgPool(databaseUrl, 4);
  pool.on('error', () => undefined);
  const timeline = new Timeline(pool);
  try {
    const pad = 'x'.repeat(80);
    for (let b = 0; b < total / 500; b++) {
      const batch: NewEvent[] = Array.from({ length: 500 }, (_, i) => ({
        key: `seed:${b}:${i}`,
        type: 'chat.text',
        data: { message_id: `m${b}`, agent: 'bench', role: 'assistant', delta: `word ${b * 500 + i} ${pad}`, done: false },
      }));
      await timeline.append(chat.id, batch);
    }
    // Baseline: the same 10k events read from PostgreSQL here, in pages of 2,000 as a replay does.
    const base: number[] = [];
    for (let t = 0; t < tries + 2; t++) {
      const s = performance.now();
      let after = 0;
      let n = 0;
      for (;;) {
        const page = await timeline.after(chat.id, after, 2000);
        n += page.length;
        for (const e of page) void e.wire;
        if (page.length) after = page[page.length - 1].index;
        if (page.length < 2000) break;
      }
      if (n !== total) throw new Error(`seeded ${n} events, expected ${total}`);
      if (t >= 2) base.push(performance.now() - s);
    }
    const times: number[] = [];
    const open: number[] = [];
    let bad = 0;
    for (let t = 0; t < tries + 2; t++) {
      const url = chat.urls[t % 2];
      const r = await resumeOnce(url, total);
      if (r.count !== total || !r.ordered) bad++;
      if (t >= 2) {
        times.push(r.ms);
        open.push(r.openMs);
      }
    }
    say(
      table(
        ['path', 'p50 ms', 'p99 ms', 'max ms'],
        [
          ['tessera: resume → boundary (10k events replayed)', fmt(pct(times, 50)), fmt(pct(times, 99)), fmt(Math.max(...times))],
          ['tessera: connect → chat_meta', fmt(pct(open, 50)), fmt(pct(open, 99)), fmt(Math.max(...open))],
          ['baseline: Timeline.after × 5 pages in-process', fmt(pct(base, 50)), fmt(pct(base, 99)), fmt(Math.max(...base))],
        ],
      ),
    );
    if (bad) notes.push(`resume: ${bad} tries did not receive all ${total} events in order`);
    summary.push({
      scenario: `resume: replay of a ${int(total)}-event chat`,
      tessera: `p50 ${fmt(pct(times, 50))} / p99 ${fmt(pct(times, 99))} ms to the boundary${bad ? ` (${bad} incomplete)` : ''}`,
      baseline: `read from PostgreSQL in-process: p50 ${fmt(pct(base, 50))} / p99 ${fmt(pct(base, 99))} ms`,
      target: '< 250 ms',
      peer: '—',
    });
  } finally {
    await pool.end();
  }
}

function resumeOnce(url: string, expect: number): Promise<{ ms: number; openMs: number; count: number; ordered: boolean }> {
  return new Promise((res, rej) => {
    const t0 = performance.now();
    const ws = new WebSocket(url, { perMessageDeflate: false });
    let sentAt = 0;
    let openMs = 0;
    let count = 0;
    let prev = 0;
    let ordered = true;
    const timer = setTimeout(() => {
      ws.terminate();
      rej(new Error('resume timed out'));
    }, 30_000);
    ws.on('message', (d) => {
      const s = d.toString();
      // Timeline events are counted by index without a full parse; control messages are parsed.
      const at = s.lastIndexOf('"index":');
      if (at > 0 && s.startsWith('{"type":"chat.text"')) {
        const idx = Number(s.slice(at + 8, -1));
        if (idx !== prev + 1) ordered = false;
        prev = idx;
        count++;
        return;
      }
      const m = JSON.parse(s) as Envelope;
      if (m.type === 'chat_meta') {
        openMs = performance.now() - t0;
        sentAt = performance.now();
        ws.send(JSON.stringify({ type: 'client.resume', lastClientIndex: 0 }));
      } else if (m.type === 'chat.resume_boundary') {
        const ms = performance.now() - sentAt;
        clearTimeout(timer);
        ws.once('close', () => res({ ms, openMs, count, ordered: ordered && count === expect }));
        ws.close();
      }
    });
    ws.on('error', (e) => {
      clearTimeout(timer);
      rej(e);
    });
  });
}

/* ------------------------------------------------------------------------------------------------
 * 6. memory
 * ---------------------------------------------------------------------------------------------- */

const MEM_PROBE = join(ROOT, 'tools/bench/lib/mem-probe.cjs');

/** GC in the process (via the probe; twice, a second apart, so that the heap has settled), then its RSS and heap figures. */
async function memoryOf(pid: number, file: string): Promise<{ rss: number; heap: number; external: number }> {
  let m = { heapUsed: NaN, external: NaN };
  for (let round = 0; round < 2; round++) {
    const before = existsSync(file) ? readFileSync(file, 'utf8') : '';
    process.kill(pid, 'SIGUSR2');
    const until = Date.now() + 5_000;
    while (Date.now() < until && (!existsSync(file) || readFileSync(file, 'utf8') === before)) await sleep(50);
    await sleep(round === 0 ? 1_000 : 300);
    m = JSON.parse(readFileSync(file, 'utf8')) as typeof m;
  }
  return { rss: rssOf(pid), heap: m.heapUsed, external: m.external };
}

async function scenarioMemory(): Promise<void> {
  const n = QUICK ? 500 : 1000;
  say(`\n## memory — ${n} idle WebSockets on one fresh process, after GC`);
  const dir = join(ROOT, 'tmp', `bench-mem-${RUN}`);
  mkdirSync(dir, { recursive: true });
  onCleanup(() => rmSync(dir, { recursive: true, force: true }));
  const probeArgs = ['--expose-gc', '--require', MEM_PROBE];
  const chats = await theFanoutChats();

  const measure = async (label: string, pid: number, file: string, urlOf: (i: number) => string, chatOf: (i: number) => string) => {
    // Warm-up: open and close 50 sockets (JIT, pools), then settle.
    const warm = Array.from({ length: 50 }, (_, i) => new FeedClient(chatOf(i), [urlOf(i)], 0, sink));
    await pooled(warm.length, 50, (i) => warm[i].open());
    await Promise.all(warm.map((c) => c.close()));
    await sleep(1_000);
    const before = await memoryOf(pid, file);
    const clients = Array.from({ length: n }, (_, i) => new FeedClient(chatOf(i), [urlOf(i)], 0, sink));
    await pooled(clients.length, 100, (i) => clients[i].open());
    await sleep(2_000);
    const after = await memoryOf(pid, file);
    await Promise.all(clients.map((c) => c.close()));
    const per = (k: 'rss' | 'heap' | 'external') => (after[k] - before[k]) / n;
    return { label, before, after, rss: per('rss'), heap: per('heap'), external: per('external') };
  };

  const api = await startApi('api-mem', { BENCH_MEM_FILE: join(dir, 'api.json') }, probeArgs);
  let t;
  try {
    const path = (c: Chat) => c.urls[0].replace(/^ws:\/\/[^/]+/, `ws://127.0.0.1:${api.port}`);
    t = await measure('tessera API instance', api.svc.pid, join(dir, 'api.json'), (i) => path(chats[i]), (i) => chats[i].id);
  } finally {
    await api.svc.stop();
  }
  const [bare] = await bareServers(1, { BENCH_MEM_FILE: join(dir, 'bare.json') }, probeArgs);
  let b;
  try {
    b = await measure('bare ws (+ Redis SUBSCRIBE per chat)', bare.svc.pid, join(dir, 'bare.json'), (i) => `ws://127.0.0.1:${bare.port}/ws/${WORKFLOW}/${APP}/m${i}/u${i}`, (i) => `m${i}`);
  } finally {
    await bare.svc.stop();
  }
  const kb = (x: number) => fmt(x / 1024, 1);
  const mb = (x: number) => fmt(x / 1024 / 1024, 1);
  say(
    table(
      ['process', 'RSS before MB', 'RSS after MB', 'RSS / socket KB', 'heap / socket KB', 'external / socket KB'],
      [t, b].map((r) => [r.label, mb(r.before.rss), mb(r.after.rss), kb(r.rss), kb(r.heap), kb(r.external)]),
    ),
  );
  summary.push({
    scenario: `memory: ${n} idle WebSockets on one instance`,
    tessera: `RSS +${kb(t.rss)} KB, JS heap +${kb(t.heap)} KB per socket`,
    baseline: `bare ws: RSS +${kb(b.rss)} KB, JS heap +${kb(b.heap)} KB per socket`,
    target: '< 20 KB',
    peer: 'Centrifugo ~30 KB',
    limit:
      'RSS grows less than the JS heap when the heap grows into pages the process already holds (a ' +
      'runtime instance starts with ~170 MB RSS); the larger of the two is the fairer per-socket figure. ' +
      "Kernel socket buffers and Redis's per-channel memory are in neither",
  });
}

/* ------------------------------------------------------------------------------------------------
 * main
 * ---------------------------------------------------------------------------------------------- */

async function main(): Promise<void> {
  const t0 = performance.now();
  if (CPU_PROF) mkdirSync(PROF_DIR, { recursive: true });
  const schema = await freshSchema(MIGRATIONS, 'bench_rt');
  onCleanup(() => schema.drop());
  onCleanup(() => agent.destroy());
  onCleanup(() => deleteKeys(TEST_REDIS_URL, `bench-${RUN}:`));
  databaseUrl = schema.url;
  await discoverServers(schema.url, TEST_REDIS_URL).catch((e: Error) => notes.push(`CPU of PostgreSQL/Redis: servers not identified (${e.message}); every process of those names counts`));
  baseEnv = {
    NODE_ENV: 'production',
    LOG_LEVEL: 'warn',
    REDIS_URL: TEST_REDIS_URL,
    DATABASE_URL: schema.url,
    BULL_PREFIX: `bench-${RUN}`,
    JWT_SECRET: SECRET,
    AUTH_ENABLED: 'true',
    SERVICE_KEY,
    HOST: '127.0.0.1',
    WORKFLOWS_DIR: workflowsDir(),
    ...(workerSettings.pool && { DB_POOL_SIZE: workerSettings.pool }),
    // Experiments: BENCH_ENV="K=V,K=V" is added to every runtime process's environment.
    ...Object.fromEntries((process.env.BENCH_ENV ?? '').split(',').filter(Boolean).map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)])),
  };
  say(`runtime benchmark${QUICK ? ' (quick)' : ''}: ${SCENARIOS.join(', ')}; schema ${schema.schema}, BullMQ prefix bench-${RUN}`);
  const needWorkers = ['turns', 'openloop', 'sweep', 'agui'].some((s) => SCENARIOS.includes(s));
  const [a, b, w] = await Promise.all([startApi('api-a'), startApi('api-b'), needWorkers ? startWorkers(workerSettings.workers, workerEnv(workerSettings)) : Promise.resolve([])]);
  apis.push(a, b);
  workers = w;
  say(`started 2 API instances${workers.length ? ` and ${workers.length} worker process(es)` : ''} in ${fmt((performance.now() - t0) / 1000)} s`);

  const run: Record<string, () => Promise<void>> = {
    turns: scenarioTurns,
    openloop: scenarioOpenLoop,
    sweep: scenarioSweep,
    agui: scenarioAgui,
    floor: scenarioFloor,
    resume: scenarioResume,
    fanout: scenarioFanout,
    'fanout-cluster': scenarioFanoutCluster,
    'fanout-tail': scenarioFanoutTail,
    churn: scenarioChurn,
    ceiling: scenarioCeiling,
    memory: scenarioMemory,
  };
  for (const s of SCENARIOS) {
    const ts = performance.now();
    try {
      await run[s]();
    } catch (e) {
      notes.push(`${s}: failed: ${(e as Error).message}`);
      say(`  ${s} failed: ${(e as Error).stack}`);
    }
    say(`  (${s}: ${fmt((performance.now() - ts) / 1000)} s)`);
    if (s === 'ceiling' || (s === 'fanout' && !SCENARIOS.includes('ceiling'))) fanoutSummary();
  }
  // Keep the summary in scenario order: fanout/ceiling rows go after churn when both ran.
  const order = ['turns:', 'turns over AG-UI', 'turns, open', 'resume', 'fanout:', 'fanout on', 'ceiling', 'churn', 'memory'];
  summary.sort((x, y) => order.findIndex((o) => x.scenario.startsWith(o)) - order.findIndex((o) => y.scenario.startsWith(o)));
  say(`\n## summary (${QUICK ? 'quick; ' : ''}${fmt((performance.now() - t0) / 1000, 0)} s; 2 API instances, ${workerSettings.workers} worker process(es), ${describeWorkers(workerSettings)}; this machine: ${cpus().length} cores)\n`);
  say(markdown(['scenario', 'Tessera', 'baseline (same run)', 'target', 'peer (same run where measured)'], summary.map((r) => [r.scenario, r.tessera, r.baseline, r.target, r.peer])));
  for (const r of summary) if (r.limit) say(`\n${r.scenario}: ${r.limit}`);
  for (const n of notes) say(`\nnote: ${n}`);
  await cleanup();
}

runMain(main, { deadlineMs: 15 * 60_000 });

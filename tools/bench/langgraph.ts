/**
 * The LangGraph peer of the turn load: the LangGraph JS Agent Server's in-memory dev server (what
 * `langgraph dev` serves; `@langchain/langgraph-api` 1.5.1), one graph of one node whose fake chat
 * model streams the same 20 tokens with no delay (tools/bench/peers/langgraph/graph.mjs), driven
 * the way runtime.ts drives Tessera: `threads` threads at once, each running `runs` runs in
 * sequence over the HTTP + SSE API (`POST /threads/{id}/runs/stream`, stream mode `messages`).
 * Figures are printed, never asserted.
 *
 *   npx tsx tools/bench/langgraph.ts [--threads 100] [--runs 5] [--cpu-prof]
 *
 * --cpu-prof writes the server's CPU profile to tmp/bench-prof/ (read it with profile-summary.ts).
 *
 * The peer's packages live in tools/bench/peers/langgraph, its own package with its own lock (not
 * a workspace of the root). When one is missing or at another version they are installed there
 * with `npm ci --prefer-offline` (npm's cache first, then the registry); when that fails, the
 * peer is skipped with the reason. The server runs as one node process on a free port on
 * 127.0.0.1, started as `langgraph dev` starts it (`--import tsx/esm --import preload.mjs
 * entrypoint.mjs`, NODE_ENV=development, 10 queue workers) minus the file watcher; its state
 * (which the dev server persists to JSON files) goes to a folder of its own, removed at the end.
 *
 * Knobs (env): BENCH_LANGGRAPH_JOBS (queue workers, `langgraph dev --n-jobs-per-worker`, 10),
 * BENCH_LANGGRAPH_STREAM_MODE (`messages` or `messages-tuple`), BENCH_LANGGRAPH_LOG_LEVEL (warn,
 * as the runtime benchmark's LOG_LEVEL; the dev server's own default is debug).
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { createParser, type EventSourceMessage } from 'eventsource-parser';
import { cpuReport, cpuSample } from './lib/cpu';
import { cpuSecondsOf, freePort, onCleanup, ROOT, runMain, sleep, stopChild } from './lib/proc';
import { fmt, pct, table } from './lib/stats';

export interface PeerResult {
  /** What ran. */
  peer: string;
  threads: number;
  runsWanted: number;
  runsDone: number;
  secs: number;
  timedOut: boolean;
  /** Runs that failed or whose streamed reply was not the 20 words. */
  errors: number;
  runsPerSec: number;
  /** Input sent → the run's `metadata` event: the time it waited for one of the server's queue workers. */
  startedP50Ms: number;
  startedP99Ms: number;
  /** Input sent → first token chunk of the reply. */
  firstTextP50Ms: number;
  firstTextP99Ms: number;
  /** Input sent → end of the run's SSE stream. */
  completeP50Ms: number;
  completeP99Ms: number;
  /** CPU of the server process per run done (user + system). */
  serverCpuMsPerRun: number;
  /** Where the CPU went during the load: "langgraph 112%, bench 7%, … (sum …; other/exited processes …; of 200%)". */
  cpu: string;
  /** Why the peer did not run (its packages could not be installed, its server did not start). */
  skipped?: string;
}

export const PEER_DIR = join(ROOT, 'tools/bench/peers/langgraph');
const API_DIST = join(PEER_DIR, 'node_modules/@langchain/langgraph-api/dist');
const GRAPH_ID = 'bench';
const REPLY = 'one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen seventeen eighteen nineteen twenty';
const JOBS = Number(process.env.BENCH_LANGGRAPH_JOBS ?? 10);
const STREAM_MODE = process.env.BENCH_LANGGRAPH_STREAM_MODE ?? 'messages';
const LOG_LEVEL = process.env.BENCH_LANGGRAPH_LOG_LEVEL ?? 'warn';
if (STREAM_MODE !== 'messages' && STREAM_MODE !== 'messages-tuple') throw new Error(`BENCH_LANGGRAPH_STREAM_MODE: "${STREAM_MODE}" is neither messages nor messages-tuple`);

function peerName(): string {
  const v = (pkg: string) => installedVersion(pkg) ?? '?';
  return `LangGraph JS in-memory dev server (langgraph-api ${v('@langchain/langgraph-api')}, langgraph ${v('@langchain/langgraph')}, core ${v('@langchain/core')}), ${JOBS} queue workers`;
}

/* ------------------------------------------------------------------------------------------------
 * packages
 * ---------------------------------------------------------------------------------------------- */

function installedVersion(pkg: string): string | undefined {
  try {
    return (JSON.parse(readFileSync(join(PEER_DIR, 'node_modules', pkg, 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return undefined;
  }
}

/** The pinned packages that are missing or at another version. */
function missingPackages(): string[] {
  const pinned = (JSON.parse(readFileSync(join(PEER_DIR, 'package.json'), 'utf8')) as { dependencies: Record<string, string> }).dependencies;
  return Object.entries(pinned)
    .filter(([name, version]) => installedVersion(name) !== version)
    .map(([name, version]) => `${name}@${version}`);
}

/** `npm ci` in the peer's folder when a pinned package is missing; the reason when it cannot be had. */
async function ensureInstalled(say: (s: string) => void): Promise<string | undefined> {
  const missing = missingPackages();
  if (!missing.length) return undefined;
  say(`  langgraph peer: installing its packages (npm ci in tools/bench/peers/langgraph; missing ${missing.join(', ')})`);
  const err = await new Promise<string | undefined>((res) =>
    execFile('npm', ['ci', '--prefix', PEER_DIR, '--prefer-offline', '--no-audit', '--no-fund'], { cwd: PEER_DIR, timeout: 5 * 60_000, maxBuffer: 16 << 20 }, (e, _out, stderr) =>
      res(e ? `npm ci failed (${e.message.split('\n')[0]}): ${stderr.trim().split('\n').slice(-5).join(' / ')}` : undefined),
    ),
  );
  if (err) return err;
  const still = missingPackages();
  return still.length ? `after npm ci, still missing ${still.join(', ')}` : undefined;
}

/* ------------------------------------------------------------------------------------------------
 * server
 * ---------------------------------------------------------------------------------------------- */

interface Server {
  port: number;
  pid: number;
  output(): string;
  stop(): Promise<void>;
}

/**
 * Start the dev server the way `langgraph dev` does (langgraph-api's cli/spawn.mjs with a node
 * loader instead of tsx's watching CLI, so that the server is this one process), on a free port,
 * with a fresh state folder; ready when `GET /ok` answers.
 */
async function startServer(nodeArgs: string[] = []): Promise<Server> {
  const port = await freePort();
  const stateDir = join(PEER_DIR, `.state-${randomBytes(4).toString('hex')}`);
  mkdirSync(stateDir, { recursive: true });
  // The fields of langgraph-api's StartServerSchema; `cwd` holds the state, the graph is beside it
  // (paths resolve from `cwd`, and so do the graph's imports, from the peer's node_modules).
  const payload = { port, nWorkers: JOBS, host: '127.0.0.1', cwd: stateDir, graphs: { [GRAPH_ID]: '../graph.mjs:graph' } };
  const child: ChildProcess = spawn(
    process.execPath,
    [
      ...nodeArgs,
      '--import',
      pathToFileURL(join(PEER_DIR, 'node_modules/tsx/dist/esm/index.mjs')).href,
      '--import',
      pathToFileURL(join(API_DIST, 'preload.mjs')).href,
      join(API_DIST, 'cli/entrypoint.mjs'),
      // The parent's IPC pipe (`langgraph dev` passes its pid to receive the Studio URL); 0 has
      // none, so the server does not try to talk back.
      '0',
      JSON.stringify(payload),
    ],
    {
      cwd: PEER_DIR,
      env: {
        ...process.env,
        NODE_ENV: 'development',
        LANGGRAPH_API_URL: `http://127.0.0.1:${port}`,
        LOG_LEVEL,
        LOG_JSON: 'true',
        LANGSMITH_TRACING: 'false',
        LANGCHAIN_TRACING_V2: 'false',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let out = '';
  const collect = (d: Buffer) => (out = (out + d.toString()).slice(-20_000));
  child.stdout!.on('data', collect);
  child.stderr!.on('data', collect);
  let stopped: Promise<void> | undefined;
  const stop = () =>
    (stopped ??= stopChild(child).finally(() => rmSync(stateDir, { recursive: true, force: true })));
  onCleanup(stop);
  const killOnExit = () => child.exitCode === null && child.kill('SIGKILL');
  process.once('exit', killOnExit);
  child.once('exit', () => process.removeListener('exit', killOnExit));
  const server: Server = { port, pid: child.pid!, output: () => out, stop };
  const until = Date.now() + 60_000;
  while (Date.now() < until) {
    if (child.exitCode !== null || child.signalCode !== null) {
      await stop();
      throw new Error(`the LangGraph server exited: ${out.slice(-2_000)}`);
    }
    const ok = await new Promise<boolean>((res) => {
      const req = http.get({ host: '127.0.0.1', port, path: '/ok', agent: false }, (r) => {
        r.resume();
        res(r.statusCode === 200);
      });
      req.setTimeout(2_000, () => req.destroy());
      req.on('error', () => res(false));
    });
    if (ok) return server;
    await sleep(100);
  }
  await stop();
  throw new Error(`the LangGraph server did not answer GET /ok within 60 s: ${out.slice(-2_000)}`);
}

/* ------------------------------------------------------------------------------------------------
 * HTTP + SSE client
 * ---------------------------------------------------------------------------------------------- */

function postJson(agent: http.Agent, port: number, path: string, body: unknown): Promise<any> {
  const payload = Buffer.from(JSON.stringify(body));
  return new Promise((res, rej) => {
    const req = http.request(
      { host: '127.0.0.1', port, path, method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': String(payload.length) } },
      (r) => {
        let text = '';
        r.setEncoding('utf8');
        r.on('data', (c: string) => (text += c));
        r.on('end', () => (r.statusCode === 200 ? res(JSON.parse(text)) : rej(new Error(`POST ${path}: ${r.statusCode} ${text.slice(0, 300)}`))));
      },
    );
    req.setTimeout(30_000, () => req.destroy(new Error(`POST ${path} timed out`)));
    req.on('error', rej);
    req.end(payload);
  });
}

interface RunTimes {
  /** Until the `metadata` event: a queue worker has picked the run up. */
  started: number;
  firstText: number;
  complete: number;
}

/** Content of an AI message chunk as the API serializes it (string, or content blocks). */
function textOf(content: unknown): string {
  if (typeof content === 'string') return content;
  if (Array.isArray(content)) return content.map((b: { text?: string }) => b?.text ?? '').join('');
  return '';
}

/**
 * One run on a thread: `POST /threads/{id}/runs/stream`, read its SSE stream to the end. First
 * text is the first event that carries reply text (`messages/partial` with AI content in stream
 * mode `messages`, a `messages` tuple in `messages-tuple`). Rejects unless the streamed reply is
 * the 20 words.
 */
function streamRun(agent: http.Agent, port: number, threadId: string, input: string): Promise<RunTimes> {
  const payload = Buffer.from(
    JSON.stringify({ assistant_id: GRAPH_ID, input: { messages: [{ role: 'user', content: input }] }, stream_mode: [STREAM_MODE] }),
  );
  const path = `/threads/${threadId}/runs/stream`;
  return new Promise((res, rej) => {
    const sentAt = performance.now();
    let started = NaN;
    let firstText = NaN;
    let reply = '';
    let error = '';
    const onEvent = ({ event = '', data }: EventSourceMessage) => {
      if (event === 'error') error = data.slice(0, 300);
      if (event === 'metadata' && Number.isNaN(started)) started = performance.now() - sentAt;
      let text = '';
      if (STREAM_MODE === 'messages' && event === 'messages/partial') {
        // The message so far, whole: the reply is its last state.
        const [m] = JSON.parse(data) as { type: string; content: unknown }[];
        if (m?.type !== 'ai') return;
        text = textOf(m.content);
        reply = text;
      } else if (STREAM_MODE === 'messages-tuple' && event === 'messages') {
        const [m] = JSON.parse(data) as [{ type: string; content: unknown }];
        if (m?.type !== 'ai' && m?.type !== 'AIMessageChunk') return;
        text = textOf(m.content);
        reply += text;
      }
      if (text && Number.isNaN(firstText)) firstText = performance.now() - sentAt;
    };
    const req = http.request(
      { host: '127.0.0.1', port, path, method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': String(payload.length), accept: 'text/event-stream' } },
      (r) => {
        r.setEncoding('utf8');
        if (r.statusCode !== 200) {
          let text = '';
          r.on('data', (c: string) => (text += c));
          r.on('end', () => rej(new Error(`POST ${path}: ${r.statusCode} ${text.slice(0, 300)}`)));
          return;
        }
        const parser = createParser({
          onEvent: (m) => {
            try {
              onEvent(m);
            } catch (e) {
              error ||= `unreadable event: ${(e as Error).message}`;
            }
          },
        });
        r.on('data', (c: string) => parser.feed(c));
        r.on('end', () => {
          const complete = performance.now() - sentAt;
          if (error) rej(new Error(`run failed: ${error}`));
          else if (reply.trim() !== REPLY) rej(new Error(`the streamed reply was ${JSON.stringify(reply.slice(0, 200))}`));
          else res({ started, firstText, complete });
        });
        r.on('error', rej);
      },
    );
    req.setTimeout(60_000, () => req.destroy(new Error(`POST ${path} timed out`)));
    req.on('error', rej);
    req.end(payload);
  });
}

/* ------------------------------------------------------------------------------------------------
 * load
 * ---------------------------------------------------------------------------------------------- */

interface Load {
  runsDone: number;
  secs: number;
  timedOut: boolean;
  errors: string[];
  started: number[];
  firstText: number[];
  complete: number[];
  serverCpuSecs: number;
  /** cpuReport of the load: the server, this process, and what else ran on the machine. */
  cpu: string;
}

/** `threads` new threads; then at once each runs `runs` runs in sequence. Timed from the first input to the last stream's end. */
async function load(server: Server, agent: http.Agent, threads: number, runs: number, timeoutMs: number): Promise<Load> {
  const ids: string[] = [];
  for (let i = 0; i < threads; i += 32) {
    const batch = await Promise.all(Array.from({ length: Math.min(32, threads - i) }, () => postJson(agent, server.port, '/threads', {})));
    ids.push(...batch.map((t: { thread_id: string }) => t.thread_id));
  }
  const started: number[] = [];
  const firstText: number[] = [];
  const complete: number[] = [];
  const errors: string[] = [];
  let runsDone = 0;
  let stop = false;
  const cpu0 = cpuSecondsOf(server.pid);
  const c0 = cpuSample({ langgraph: server.pid });
  const t0 = performance.now();
  const all = Promise.all(
    ids.map(async (id) => {
      for (let r = 0; r < runs && !stop; r++) {
        try {
          const t = await streamRun(agent, server.port, id, `turn ${r}`);
          started.push(t.started);
          firstText.push(t.firstText);
          complete.push(t.complete);
        } catch (e) {
          errors.push((e as Error).message);
        }
        runsDone++;
      }
    }),
  );
  let timer: NodeJS.Timeout | undefined;
  const timedOut = await Promise.race([all.then(() => false), new Promise<boolean>((r) => (timer = setTimeout(() => r(true), timeoutMs)))]);
  clearTimeout(timer);
  const secs = (performance.now() - t0) / 1000;
  const serverCpuSecs = cpuSecondsOf(server.pid) - cpu0;
  const cpu = cpuReport(c0, cpuSample({ langgraph: server.pid }));
  if (timedOut) {
    stop = true;
    // Streams still open end with an error (counted after the figures were taken).
    agent.destroy();
    await all;
  }
  return { runsDone, secs, timedOut, errors, started, firstText, complete, serverCpuSecs, cpu };
}

/**
 * Install the peer's packages when missing, start its server, warm it up (10 threads × 2 runs, not
 * counted), run `threads` × `runs`, stop the server. Never throws for the peer's own trouble
 * (install, start, failed runs): that is in `skipped` and `errors`.
 */
export async function measureLangGraph(opts: {
  threads: number;
  runs: number;
  timeoutMs?: number;
  say?: (s: string) => void;
  /** Extra node flags for the server (e.g. --cpu-prof). */
  nodeArgs?: string[];
}): Promise<PeerResult> {
  const say = opts.say ?? ((s: string) => process.stdout.write(s + '\n'));
  const base: PeerResult = {
    peer: 'LangGraph JS in-memory dev server',
    threads: opts.threads,
    runsWanted: opts.threads * opts.runs,
    runsDone: 0,
    secs: NaN,
    timedOut: false,
    errors: 0,
    runsPerSec: NaN,
    startedP50Ms: NaN,
    startedP99Ms: NaN,
    firstTextP50Ms: NaN,
    firstTextP99Ms: NaN,
    completeP50Ms: NaN,
    completeP99Ms: NaN,
    serverCpuMsPerRun: NaN,
    cpu: '',
  };
  if (!existsSync(join(PEER_DIR, 'package-lock.json'))) return { ...base, skipped: 'tools/bench/peers/langgraph/package-lock.json is missing' };
  const notInstalled = await ensureInstalled(say);
  if (notInstalled) return { ...base, skipped: notInstalled };
  let server: Server;
  try {
    server = await startServer(opts.nodeArgs);
  } catch (e) {
    return { ...base, skipped: (e as Error).message };
  }
  const agent = new http.Agent({ keepAlive: true, maxSockets: opts.threads + 16 });
  try {
    const warm = await load(server, agent, Math.min(10, opts.threads), 2, 60_000);
    if (warm.errors.length === warm.runsDone) return { ...base, peer: peerName(), skipped: `every warm-up run failed: ${warm.errors[0]}\n${server.output().slice(-2_000)}` };
    const l = await load(server, agent, opts.threads, opts.runs, opts.timeoutMs ?? 120_000);
    const ok = l.complete.length;
    if (l.errors.length) say(`  langgraph peer: ${l.errors.length} runs failed, e.g. ${l.errors[0]}`);
    return {
      ...base,
      peer: peerName(),
      runsDone: ok,
      secs: l.secs,
      timedOut: l.timedOut,
      errors: l.errors.length,
      runsPerSec: ok / l.secs,
      startedP50Ms: pct(l.started, 50),
      startedP99Ms: pct(l.started, 99),
      firstTextP50Ms: pct(l.firstText, 50),
      firstTextP99Ms: pct(l.firstText, 99),
      completeP50Ms: pct(l.complete, 50),
      completeP99Ms: pct(l.complete, 99),
      serverCpuMsPerRun: (l.serverCpuSecs * 1000) / Math.max(1, ok),
      cpu: l.cpu,
    };
  } finally {
    agent.destroy();
    await server.stop();
  }
}

/** One line for a summary table: "74 runs/s; first text p50 588 / p99 1,090 ms; 9.5 ms server CPU per run". */
export function describePeer(r: PeerResult): string {
  if (r.skipped) return `LangGraph: skipped (${r.skipped.split('\n')[0]})`;
  return (
    `LangGraph ${fmt(r.runsPerSec, 0)} runs/s; first text p50 ${fmt(r.firstTextP50Ms, 0)} / p99 ${fmt(r.firstTextP99Ms, 0)} ms; ` +
    `server CPU ${fmt(r.serverCpuMsPerRun)} ms per run (same run)${r.timedOut ? ' (timed out)' : ''}${r.errors ? `; ${r.errors} errors` : ''}`
  );
}

/* ------------------------------------------------------------------------------------------------
 * alone: npx tsx tools/bench/langgraph.ts [--threads N] [--runs N]
 * ---------------------------------------------------------------------------------------------- */

if (require.main === module) {
  const arg = (name: string, dflt: number) => {
    const at = process.argv.indexOf(`--${name}`);
    const v = at >= 0 ? Number(process.argv[at + 1]) : dflt;
    if (!Number.isInteger(v) || v < 1) throw new Error(`--${name} wants a positive integer`);
    return v;
  };
  const threads = arg('threads', 100);
  const runs = arg('runs', 5);
  const profDir = join(ROOT, 'tmp/bench-prof');
  const cpuProf = process.argv.includes('--cpu-prof');
  runMain(async () => {
    if (cpuProf) mkdirSync(profDir, { recursive: true });
    process.stdout.write(`LangGraph peer: ${threads} threads × ${runs} runs, stream mode ${STREAM_MODE}, all threads at once (closed loop)\n`);
    const r = await measureLangGraph({ threads, runs, nodeArgs: cpuProf ? ['--cpu-prof', `--cpu-prof-dir=${profDir}`] : [] });
    if (r.skipped) throw new Error(`LangGraph peer skipped: ${r.skipped}`);
    process.stdout.write(`${r.peer}\n  cpu: ${r.cpu}\n\n`);
    process.stdout.write(
      table(
        ['path', 'threads × runs', 'runs done', 'runs/s', 'input→run started p50/p99 ms', 'input→first text p50/p99 ms', 'input→stream end p50/p99 ms', 'server CPU ms/run', 'errors'],
        [
          [
            'langgraph dev (in-memory)',
            `${r.threads} × ${r.runsWanted / r.threads}`,
            `${r.runsDone}${r.timedOut ? ' (timed out)' : ''}`,
            fmt(r.runsPerSec, 0),
            `${fmt(r.startedP50Ms)} / ${fmt(r.startedP99Ms)}`,
            `${fmt(r.firstTextP50Ms)} / ${fmt(r.firstTextP99Ms)}`,
            `${fmt(r.completeP50Ms)} / ${fmt(r.completeP99Ms)}`,
            fmt(r.serverCpuMsPerRun),
            String(r.errors),
          ],
        ],
      ) + '\n',
    );
  }, { deadlineMs: 10 * 60_000 });
}

/**
 * Observability benchmark (issue 8): durable ingest from the runtime's queue into PostgreSQL, and
 * event → live socket latency while ingesting, each next to a baseline measured in the same run.
 * Figures are printed, never asserted.
 *
 *   npx tsx tools/bench/observability.ts [--quick] [ingest] [latency]
 *
 *   ingest   the `observability-events` queue is filled with N events (200,000; --quick 50,000) in
 *            batches of 250, added exactly as the runtime's observer adds them (TypedQueue, its job
 *            options, the ObservedEvent payload of chat events) while 1, then 2 observability
 *            processes consume; timed from the first add until every event is committed (the
 *            sessions' event counts, updated in the same transaction, add up to N).
 *            Baseline: the same rows, read back, inserted by bare multi-row INSERTs (pg, 250 rows a
 *            statement, 4 connections: INGEST_CONCURRENCY) into a table made `LIKE events INCLUDING
 *            ALL` (same columns, same indexes); only the INSERTs are timed.
 *   latency  two observability processes consume; an operator's socket on the first (`WS /ws`,
 *            `{"type":"subscribe","all":true}`) receives every event. Events are queued at fixed
 *            rates with their send time as `timestamp`; latency = arrival at the client − timestamp.
 *
 * Processes as deployed (apps/observability/src/main.ts, TypeScript through tsx's loader, one node
 * process each), a fresh PostgreSQL schema and BullMQ prefix (removed at the end), auth on.
 * Knobs (env): BENCH_OBS_EVENTS, BENCH_OBS_RATES ("1000,5000,10000"), BENCH_OBS_STEP_MS.
 */
import { randomBytes } from 'node:crypto';
import { cpus } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import WebSocket from 'ws';
import { Queue, type ObservedEvent } from '@tessera/contracts';
import { bullConnection, createLogger, pgConnectionString, signToken, TypedQueue } from '@tessera/kit';
import { freshSchema, TEST_REDIS_URL, entryOf } from '../../libs/kit/src/testing';
import { cpuDelta, cpuReport, cpuSample, discoverServers, type CpuSample } from './lib/cpu';
import { pooled } from './lib/http';
import { cleanup, freePort, onCleanup, ROOT, rssOf, runMain, sleep, spawnService, type Service } from './lib/proc';
import { deleteKeys } from './lib/redis-keys';
import { fmt, int, markdown, pct } from './lib/stats';

const argv = process.argv.slice(2);
const QUICK = argv.includes('--quick');
const KNOWN = ['ingest', 'latency'];
const named = argv.filter((a) => !a.startsWith('--'));
for (const n of named) if (!KNOWN.includes(n)) throw new Error(`unknown scenario "${n}"; known: ${KNOWN.join(', ')}`);
const SCENARIOS = named.length ? named : KNOWN;

const EVENTS = Number(process.env.BENCH_OBS_EVENTS ?? (QUICK ? 50_000 : 200_000));
const BATCH = 250;
const RATES = (process.env.BENCH_OBS_RATES ?? (QUICK ? '1000,5000' : '1000,5000,10000')).split(',').map(Number);
const STEP_MS = Number(process.env.BENCH_OBS_STEP_MS ?? (QUICK ? 3_000 : 5_000));
const RUN = randomBytes(3).toString('hex');
// The live channel is one for every deployment on a Redis: other tests' events may pass by; ours are told by app and session.
const APP = `bench-${RUN}`;
const PREFIX = `bench-obs-${RUN}`;
const SECRET = `bench-secret-${randomBytes(16).toString('hex')}`;
const logger = createLogger('bench', 'warn');
const say = (s: string) => process.stdout.write(s + '\n');

let schema = '';
let databaseUrl = '';
let db: pg.Pool;
let queue: TypedQueue<typeof Queue.ObservabilityEvents>;
const summary: string[][] = [];
const notes: string[] = [];

/* ------------------------------------------------------------------------------------------------
 * what the runtime puts on the queue
 * ---------------------------------------------------------------------------------------------- */

/** A chat's timeline event as the runtime's observer maps it (apps/runtime/src/turns/observe.ts): ~200 B of payload. */
function chatEvent(session: string, index: number, timestamp: string): ObservedEvent {
  const base = { session_id: session, app_id: APP, user_id: `user-${session}`, workflow_name: 'bench', agent: 'assistant', index, timestamp };
  const k = index % 25;
  if (k === 24) {
    const payload = { agent: 'assistant', prompt_tokens: 420, completion_tokens: 24, total_tokens: 444, model: 'scripted' };
    return { ...base, type: 'chat.usage_delta', payload, usage: { prompt_tokens: 420, completion_tokens: 24, total_tokens: 444 } };
  }
  if (k === 12) {
    const payload = { agent: 'assistant', tool_name: 'lookup', tool_call_id: `call-${index}`, payload: { query: 'weather in Lisbon', units: 'metric' }, awaiting_response: false };
    return { ...base, type: 'chat.tool_call', payload, usage: null };
  }
  const payload = { agent: 'assistant', role: 'assistant', message_id: `m-${session}-${Math.floor(index / 25)}`, delta: 'lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor ', done: false };
  return { ...base, type: 'chat.text', payload, usage: null };
}

/** The runtime's queue, with its job options (apps/runtime/src/services.ts). */
function runtimeQueue() {
  return new TypedQueue(Queue.ObservabilityEvents, bullConnection(TEST_REDIS_URL), logger, {
    prefix: PREFIX,
    defaultJobOptions: { attempts: 3, backoff: { type: 'exponential', delay: 1000 }, removeOnComplete: true, removeOnFail: { count: 10_000 } },
  });
}

/* ------------------------------------------------------------------------------------------------
 * processes
 * ---------------------------------------------------------------------------------------------- */

interface Instance {
  name: string;
  port: number;
  svc: Service;
}

async function startInstances(n: number): Promise<Instance[]> {
  return Promise.all(
    Array.from({ length: n }, async (_, i) => {
      const port = await freePort();
      const env = { NODE_ENV: 'production', LOG_LEVEL: 'warn', REDIS_URL: TEST_REDIS_URL, DATABASE_URL: databaseUrl, BULL_PREFIX: PREFIX, JWT_SECRET: SECRET, SERVICE_KEY: `bench-service-key-${RUN}`, HOST: '127.0.0.1', PORT: String(port), RETENTION_DAYS: '0' };
      const name = `observability-${i + 1}`;
      return { name, port, svc: await spawnService(name, entryOf('observability'), env, { port }) };
    }),
  );
}

const stopAll = (list: Instance[]) => Promise.all(list.map((i) => i.svc.stop()));
const pidsOf = (list: Instance[]) => Object.fromEntries(list.map((i) => [i.name, i.svc.pid]));

async function storedCount(): Promise<number> {
  const r = await db.query<{ n: string }>('SELECT COALESCE(sum(event_count), 0)::text AS n FROM sessions');
  return Number(r.rows[0].n);
}

async function emptyTables(): Promise<void> {
  await db.query('TRUNCATE events, sessions, tombstones');
}

/* ------------------------------------------------------------------------------------------------
 * ingest
 * ---------------------------------------------------------------------------------------------- */

/** N events in batches of BATCH, two batches per session (a chat's consecutive writes), added 16 at a time. */
async function ingestRun(instances: number): Promise<void> {
  await emptyTables();
  const list = await startInstances(instances);
  const batches = Math.ceil(EVENTS / BATCH);
  const sessions = Math.ceil(batches / 2);
  const tag = randomBytes(3).toString('hex');
  let rss = 0;
  const a = cpuSample(pidsOf(list));
  const t0 = performance.now();
  const filling = pooled(batches, 16, async (b) => {
    // Every session's first batch, then every session's second: a chat's writes come one after the other.
    const session = `s-${tag}-${b % sessions}`;
    const first = Math.floor(b / sessions) * BATCH;
    const at = new Date().toISOString();
    const n = Math.min(BATCH, EVENTS - b * BATCH);
    await queue.add({ events: Array.from({ length: n }, (_, i) => chatEvent(session, first + i, at)) });
  }).then(() => performance.now() - t0);
  let stored = 0;
  const deadline = t0 + 10 * 60_000;
  while (stored < EVENTS && performance.now() < deadline) {
    await sleep(100);
    stored = await storedCount();
    for (const i of list) rss = Math.max(rss, rssOf(i.svc.pid));
  }
  const secs = (performance.now() - t0) / 1000;
  const b = cpuSample(pidsOf(list));
  const fillSecs = (await filling) / 1000;
  const rate = stored / secs;
  say(`  ${instances} instance(s): ${int(stored)} of ${int(EVENTS)} events stored in ${fmt(secs, 2)} s = ${int(rate)} events/s (queue filled in ${fmt(fillSecs, 2)} s)`);
  say(`    CPU: ${cpuReport(a, b)}`);
  say(`    CPU per 1,000 events: ${perThousand(a, b, stored)}; peak RSS per instance ${fmt(rss / 1024 / 1024, 0)} MB`);
  if (stored < EVENTS) notes.push(`ingest with ${instances} instance(s): only ${stored} of ${EVENTS} events stored within 10 min`);
  summary.push([`ingest, ${instances} instance(s): ${int(EVENTS)} events in batches of ${BATCH}`, `${int(rate)} events/s`, '', '≥ 20,000 events/s', `peak RSS ${fmt(rss / 1024 / 1024, 0)} MB/instance; ${perThousand(a, b, stored)}`]);
  await stopAll(list);
}

function perThousand(a: CpuSample, b: CpuSample, events: number): string {
  const rows = [...cpuDelta(a, b)].filter(([n, v]) => n !== '(machine)' && v > 0).sort((x, y) => y[1] - x[1]);
  return rows.map(([n, v]) => `${n} ${fmt((v / events) * 1000 * 1000, 0)} ms`).join(', ');
}

/**
 * The rows the service stored, read back in pages (not timed) and inserted by plain multi-row
 * INSERTs into a copy of the table (timed): what storing them costs PostgreSQL without a queue,
 * sessions, idempotency or rollups.
 */
async function baseline(): Promise<void> {
  await db.query('DROP TABLE IF EXISTS baseline_events');
  await db.query('CREATE TABLE baseline_events (LIKE events INCLUDING ALL)');
  const cols = (
    await db.query<{ name: string }>(
      `SELECT attname AS name FROM pg_attribute WHERE attrelid = 'events'::regclass AND attnum > 0 AND NOT attisdropped AND attgenerated = '' ORDER BY attnum`,
    )
  ).rows.map((r) => `"${r.name}"`);
  // Values as PostgreSQL's text, sent back as text: nothing is parsed or re-encoded in between.
  const asText = { getTypeParser: () => (v: string) => v } as unknown as pg.CustomTypesConfig;
  const reader = new pg.Client({ connectionString: pgConnectionString(databaseUrl), types: asText, options: `-c search_path="${schema}"` });
  await reader.connect();
  const writers = new pg.Pool({ connectionString: pgConnectionString(databaseUrl), max: 4, options: `-c search_path="${schema}"` });
  const sqlFor = (rows: number) =>
    `INSERT INTO baseline_events (${cols.join(', ')}) VALUES ${Array.from({ length: rows }, (_, r) => `(${cols.map((_, c) => `$${r * cols.length + c + 1}`).join(', ')})`).join(', ')}`;
  let inserted = 0;
  let ms = 0;
  let pgCpu = 0;
  let after: [string, number] = ['', 0];
  try {
    for (;;) {
      const page = await reader.query({ text: `SELECT ${cols.join(', ')} FROM events WHERE (session_id, seq) > ($1, $2) ORDER BY session_id, seq LIMIT 10000`, values: after, rowMode: 'array' });
      if (page.rows.length === 0) break;
      const rows = page.rows as string[][];
      const last = rows[rows.length - 1];
      after = [last[cols.indexOf('"session_id"')], Number(last[cols.indexOf('"seq"')])];
      const a = cpuSample({});
      const t0 = performance.now();
      await pooled(Math.ceil(rows.length / BATCH), 4, async (i) => {
        const slice = rows.slice(i * BATCH, (i + 1) * BATCH);
        await writers.query(sqlFor(slice.length), slice.flat());
      });
      ms += performance.now() - t0;
      pgCpu += cpuDelta(a, cpuSample({})).get('postgres') ?? 0;
      inserted += rows.length;
    }
  } finally {
    await reader.end();
    await writers.end();
    await db.query('DROP TABLE IF EXISTS baseline_events');
  }
  const rate = inserted / (ms / 1000);
  say(`  baseline: ${int(inserted)} rows by multi-row INSERT (${BATCH} rows, 4 connections) in ${fmt(ms / 1000, 2)} s = ${int(rate)} rows/s; postgres ${fmt((pgCpu / inserted) * 1e6, 0)} ms CPU per 1,000 rows`);
  for (const row of summary) if (row[0].startsWith('ingest')) row[2] = `bare multi-row INSERT: ${int(rate)} rows/s`;
}

async function scenarioIngest(): Promise<void> {
  say(`\n## ingest: ${int(EVENTS)} events from the queue into PostgreSQL`);
  await ingestRun(1);
  await ingestRun(2);
  await baseline();
}

/* ------------------------------------------------------------------------------------------------
 * latency
 * ---------------------------------------------------------------------------------------------- */

interface LiveClient {
  latencies: number[];
  /** Arrival − `received_at` (stamped as the instance inserts the batch): insert, commit, Redis, socket. */
  live: number[];
  received: number;
  ws: WebSocket;
}

/** An operator's socket subscribed to every event; resolves once `subscribed` arrived. */
async function liveClient(port: number): Promise<LiveClient> {
  const tok = await signToken(SECRET, { sub: 'bench-operator', apps: [APP], roles: ['operator'] }, { expiresIn: '1h' });
  const ws = new WebSocket(`ws://127.0.0.1:${port}/ws?access_token=${encodeURIComponent(tok)}`);
  const c: LiveClient = { latencies: [], live: [], received: 0, ws };
  await new Promise<void>((resolve, reject) => {
    ws.once('error', reject);
    ws.on('message', (d) => {
      const now = Date.now();
      const m = JSON.parse(d.toString()) as { type: string; session_id?: string; event?: { timestamp: string; received_at: string } };
      if (m.type === 'init') ws.send(JSON.stringify({ type: 'subscribe', all: true }));
      else if (m.type === 'subscribed') resolve();
      else if (m.type === 'event' && m.session_id?.startsWith(`live-${RUN}-`)) {
        c.received++;
        c.latencies.push(now - Date.parse(m.event!.timestamp));
        c.live.push(now - Date.parse(m.event!.received_at));
      }
    });
  });
  return c;
}

/** Queue `rate` events/s for STEP_MS, in 50 ms ticks of batches of at most BATCH, stamped with their send time. */
async function paced(rate: number, tag: string): Promise<number> {
  const tickMs = 50;
  const perTick = Math.max(1, Math.round((rate * tickMs) / 1000));
  const ticks = Math.round(STEP_MS / tickMs);
  const next = new Map<string, number>();
  const adds: Promise<unknown>[] = [];
  let sent = 0;
  const t0 = performance.now();
  for (let t = 0; t < ticks; t++) {
    for (let left = perTick; left > 0; left -= BATCH) {
      const session = `live-${RUN}-${tag}-${(t + left) % 100}`;
      const first = next.get(session) ?? 0;
      const n = Math.min(BATCH, left);
      next.set(session, first + n);
      const at = new Date().toISOString();
      adds.push(queue.add({ events: Array.from({ length: n }, (_, i) => chatEvent(session, first + i, at)) }));
      sent += n;
    }
    const wait = t0 + (t + 1) * tickMs - performance.now();
    if (wait > 0) await sleep(wait);
  }
  await Promise.all(adds);
  return sent;
}

async function scenarioLatency(): Promise<void> {
  say(`\n## latency: event → operator socket while ingesting (2 instances, the socket on the first)`);
  await emptyTables();
  const list = await startInstances(2);
  const client = await liveClient(list[0].port);
  try {
    for (const rate of RATES) {
      client.latencies = [];
      client.live = [];
      client.received = 0;
      const a = cpuSample(pidsOf(list));
      const sent = await paced(rate, `${rate}`);
      const until = performance.now() + 15_000;
      while (client.received < sent && performance.now() < until) await sleep(50);
      const b = cpuSample(pidsOf(list));
      const l = client.latencies;
      say(`  ${int(rate)} events/s for ${STEP_MS / 1000} s: ${int(client.received)} of ${int(sent)} received; p50 ${fmt(pct(l, 50), 0)} ms, p99 ${fmt(pct(l, 99), 0)} ms, max ${fmt(pct(l, 100), 0)} ms`);
      say(`    of which from its insert statement (received_at) to the socket: p50 ${fmt(pct(client.live, 50), 0)} ms, p99 ${fmt(pct(client.live, 99), 0)} ms`);
      say(`    CPU: ${cpuReport(a, b)}`);
      summary.push([`event → live socket at ${int(rate)} events/s`, `p50 ${fmt(pct(l, 50), 0)} / p99 ${fmt(pct(l, 99), 0)} ms; ${int(client.received)} of ${int(sent)} received`, '', 'p99 < 100 ms', '']);
    }
  } finally {
    client.ws.terminate();
    await stopAll(list);
  }
}

/* ------------------------------------------------------------------------------------------------
 * main
 * ---------------------------------------------------------------------------------------------- */

async function main(): Promise<void> {
  const t0 = performance.now();
  const fresh = await freshSchema(join(ROOT, 'apps/observability/prisma/migrations'), 'bench_obs');
  onCleanup(() => fresh.drop());
  onCleanup(() => deleteKeys(TEST_REDIS_URL, `${PREFIX}:`));
  schema = fresh.schema;
  databaseUrl = fresh.url;
  db = new pg.Pool({ connectionString: pgConnectionString(databaseUrl), max: 2, options: `-c search_path="${schema}"` });
  onCleanup(() => db.end());
  queue = runtimeQueue();
  onCleanup(() => queue.close());
  await discoverServers(databaseUrl, TEST_REDIS_URL).catch((e: Error) => notes.push(`CPU of PostgreSQL/Redis: servers not identified (${e.message})`));
  say(`observability benchmark${QUICK ? ' (quick)' : ''}: ${SCENARIOS.join(', ')}; schema ${schema}, BullMQ prefix ${PREFIX}`);
  if (SCENARIOS.includes('ingest')) await scenarioIngest();
  if (SCENARIOS.includes('latency')) await scenarioLatency();
  say(`\n## summary (${fmt((performance.now() - t0) / 1000, 0)} s; this machine: ${cpus().length} cores)\n`);
  say(markdown(['load', 'Tessera', 'baseline (same run)', 'target', 'notes'], summary));
  for (const n of notes) say(`\nnote: ${n}`);
  await cleanup();
}

runMain(main, { deadlineMs: 20 * 60_000 });

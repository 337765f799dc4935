/**
 * Client core benchmark (issue 13): events/s applied by `@tessera/client`'s ChatConnection (index
 * check, resume bookkeeping, a storage write of the last index per event, listener emit) next to
 * a bare `ws` client reading the same stream (JSON.parse and an index check, nothing else), in the
 * same run, one after the other on the same chat. Figures are printed, never asserted.
 *
 *   npx tsx tools/bench/client.ts [--quick]
 *
 *   replay  a chat of BENCH_CLIENT_EVENTS (20,000) ~200 B events (one message each), `client.resume` from nothing →
 *           `chat.resume_boundary`: per try, time and events/s (BENCH_CLIENT_TRIES tries each)
 *   live    a writer process appends events as a turn does (EventWriter → Timeline → ChatFeed) at
 *           rising rates; per event, latency from its write (`sent_at`) to applied; p50/p99 and
 *           events/s applied per rate
 *   size    the core bundled for the browser, minified and gzipped, next to a full-zod baseline (client-size.ts)
 *
 * Processes: one runtime API instance (`apps/runtime/src/main.ts`, tsx, LOG_LEVEL=warn, auth on)
 * on a fresh PostgreSQL schema (dropped at the end) and a unique BullMQ prefix; the writer is this
 * file in a child process (BENCH_CLIENT_ROLE=writer) so it does not share the clients' core. Each
 * event is its own message (the runtime's EventWriter merges queued deltas of one message, which
 * fanout-writer.ts's single message id would turn into a few large events). The clients run in
 * this process with a Map as storage (a browser's localStorage is slower; the host chooses).
 */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import WebSocket from 'ws';
import { signToken } from '@tessera/kit';
// The sources: the package's exports name its build (dist/), which this benchmark does not need.
import { ChatConnection, storageKey, type HostStorage, type SocketFactory } from '../../libs/client/src';
import { clientSizes, sizeTable } from './client-size';
import { freshSchema, TEST_REDIS_URL, entryOf } from '../../libs/kit/src/testing';
import { Redis } from 'ioredis';
import { BusPublisher, BusSubscriber, createLogger, pgPool } from '@tessera/kit';
import { ChatFeed } from '../../apps/runtime/src/bus/feed';
import { Timeline } from '../../apps/runtime/src/store/timeline';
import { EventWriter } from '../../apps/runtime/src/turns/event-writer';
import { wallNow } from './lib/clients';
import { agent, httpCall } from './lib/http';
import { cleanup, freePort, onCleanup, ROOT, runMain, sleep, spawnService, type Service } from './lib/proc';
import { deleteKeys } from './lib/redis-keys';
import { fmt, int, pct, table } from './lib/stats';

const QUICK = process.argv.includes('--quick');
const EVENTS = Number(process.env.BENCH_CLIENT_EVENTS ?? (QUICK ? 5_000 : 20_000));
const TRIES = Number(process.env.BENCH_CLIENT_TRIES ?? (QUICK ? 3 : 7));
const RATES = (process.env.BENCH_CLIENT_RATES ?? (QUICK ? '1000,5000' : '1000,2000,5000,10000')).split(',').map(Number);
const STEP_MS = Number(process.env.BENCH_CLIENT_STEP_MS ?? (QUICK ? 2_000 : 4_000));
const RUN = randomBytes(3).toString('hex');
const SECRET = `bench-secret-${randomBytes(16).toString('hex')}`;
const APP = 'app1';
const USER = `bench-client-${RUN}`;
const WORKFLOW = 'bench';
const say = (s: string) => process.stdout.write(s + '\n');

type WriterCommand = { cmd: 'init'; chatId: string; databaseUrl: string } | { cmd: 'step'; rate: number; durationMs: number } | { cmd: 'flush' } | { cmd: 'stop' };
type WriterReply = { cmd: 'ready' } | { cmd: 'step'; sent: number; elapsedMs: number } | { cmd: 'flush'; lastIndex: number; failures: number } | { cmd: 'error'; message: string };

class Writer {
  constructor(readonly svc: Service) {}
  ask<T extends WriterReply['cmd']>(m: WriterCommand): Promise<Extract<WriterReply, { cmd: T }>> {
    return new Promise((res, rej) => {
      this.svc.child.once('message', (r: WriterReply) => (r.cmd === 'error' ? rej(new Error(`writer: ${r.message}`)) : res(r as Extract<WriterReply, { cmd: T }>)));
      this.svc.child.send(m);
    });
  }
}

/** The writer's side (child process): the runtime's EventWriter → Timeline → ChatFeed, open loop at a rate. */
function writerRole(): void {
  let writer: EventWriter | null = null;
  let lastIndex = 0;
  let failures = 0;
  let n = 0;
  let close = async () => undefined as unknown;
  const padding = 'x'.repeat(60);
  const emit = () => {
    const data = { message_id: `m${++n}`, agent: 'bench', role: 'assistant', delta: padding, done: false, sent_at: wallNow() };
    writer!.emit('chat.text', data as never).catch(() => void failures++);
  };
  const step = (rate: number, durationMs: number) =>
    new Promise<{ sent: number; elapsedMs: number }>((res) => {
      const t0 = performance.now();
      let sent = 0;
      const tick = () => {
        const elapsed = performance.now() - t0;
        const due = Math.floor((rate * Math.min(elapsed, durationMs)) / 1000);
        while (sent < due) {
          emit();
          sent++;
        }
        if (elapsed >= durationMs) return res({ sent, elapsedMs: elapsed });
        setTimeout(tick, 2);
      };
      tick();
    });
  const reply = (r: WriterReply) => process.send!(r);
  process.on('message', (m: WriterCommand) => {
    void (async () => {
      try {
        if (m.cmd === 'init') {
          const pool = pgPool(m.databaseUrl, 10);
          const pub = new Redis(TEST_REDIS_URL);
          const sub = new Redis(TEST_REDIS_URL, { maxRetriesPerRequest: null });
          writer = new EventWriter(m.chatId, `bench-${RUN}`, new Timeline(pool), new ChatFeed(new BusPublisher(pub, { perTick: true }), new BusSubscriber(sub, createLogger('bench-writer', 'warn'))), (stored) => {
            lastIndex = Math.max(lastIndex, stored[stored.length - 1].index);
          });
          close = async () => {
            await writer?.drain().catch(() => undefined);
            pub.disconnect();
            sub.disconnect();
            await pool.end();
          };
          reply({ cmd: 'ready' });
        } else if (m.cmd === 'step') reply({ cmd: 'step', ...(await step(m.rate, m.durationMs)) });
        else if (m.cmd === 'flush') {
          await writer!.drain();
          reply({ cmd: 'flush', lastIndex, failures });
        } else if (m.cmd === 'stop') {
          await close();
          process.exit(0);
        }
      } catch (e) {
        reply({ cmd: 'error', message: (e as Error).stack ?? String(e) });
      }
    })();
  });
  process.once('disconnect', () => void close().finally(() => process.exit(0)));
  console.log('client bench writer ready');
}

/** What one client kind does with the chat's stream; `applied` counts timeline events applied. */
interface Reader {
  applied: number;
  latencies: number[];
  /** Connects and resumes from `from`; resolves at the boundary with the ms from open to boundary. */
  open(from: number): Promise<number>;
  close(): void;
}

function memoryStorage(): HostStorage {
  const m = new Map<string, string>();
  return { getItem: (k) => m.get(k) ?? null, setItem: (k, v) => void m.set(k, v), removeItem: (k) => void m.delete(k) };
}

/** ChatConnection, the way an app uses it: a listener on every event. */
function clientCore(base: string, token: string, chatId: string): Reader {
  let conn: ChatConnection | null = null;
  const r: Reader = {
    applied: 0,
    latencies: [],
    open(from) {
      const storage = memoryStorage();
      const host = { storage, getAccessToken: () => token, httpBaseUrl: base, wsBaseUrl: base.replace('http', 'ws'), WebSocket: WebSocket as unknown as SocketFactory };
      // Start where the bare client starts: the stored last index is what resume counts from.
      if (from > 0) storage.setItem(storageKey(APP, USER, chatId, 'last_index'), String(from));
      conn = new ChatConnection(host, { appId: APP, userId: USER, chatId, workflowName: WORKFLOW });
      return new Promise((res, rej) => {
        let t0 = 0;
        const timer = setTimeout(() => rej(new Error('ChatConnection: no resume boundary in 60 s')), 60_000);
        conn!.on((e) => {
          if (e.kind === 'timeline') {
            r.applied++;
            const sent = (e.event.data as { sent_at?: number }).sent_at;
            if (sent !== undefined && t0 > 0) r.latencies.push(wallNow() - sent);
          } else if (e.kind === 'status' && e.status === 'resuming') t0 = performance.now();
          else if (e.kind === 'control' && e.event.type === 'chat.resume_boundary') {
            clearTimeout(timer);
            res(performance.now() - t0);
          }
        });
        conn!.connect();
      });
    },
    close: () => conn?.close(),
  };
  return r;
}

/** The baseline: a bare ws client that parses each message and checks its index. */
function bareWs(url: string): Reader {
  let ws: WebSocket | null = null;
  const r: Reader = {
    applied: 0,
    latencies: [],
    open(from) {
      return new Promise((res, rej) => {
        let t0 = 0;
        let last = from;
        const timer = setTimeout(() => rej(new Error('bare ws: no resume boundary in 60 s')), 60_000);
        ws = new WebSocket(url, { perMessageDeflate: false });
        ws.on('open', () => {
          t0 = performance.now();
          ws!.send(JSON.stringify({ type: 'client.resume', lastClientIndex: from }));
        });
        ws.on('message', (d) => {
          const m = JSON.parse(d.toString()) as { type: string; index?: number; data: { sent_at?: number } };
          if (typeof m.index === 'number') {
            if (m.index !== last + 1) return;
            last = m.index;
            r.applied++;
            if (m.data.sent_at !== undefined) r.latencies.push(wallNow() - m.data.sent_at);
          } else if (m.type === 'chat.resume_boundary') {
            clearTimeout(timer);
            res(performance.now() - t0);
          }
        });
        ws.on('error', rej);
      });
    },
    close: () => ws?.terminate(),
  };
  return r;
}

async function main(): Promise<void> {
  const schema = await freshSchema(join(ROOT, 'apps/runtime/prisma/migrations'), 'bench_cl');
  onCleanup(() => schema.drop());
  onCleanup(() => agent.destroy());
  onCleanup(() => deleteKeys(TEST_REDIS_URL, `bench-cl-${RUN}:`));
  const port = await freePort();
  await spawnService(
    'runtime',
    entryOf('runtime'),
    {
      NODE_ENV: 'production',
      LOG_LEVEL: 'warn',
      PORT: String(port),
      HOST: '127.0.0.1',
      REDIS_URL: TEST_REDIS_URL,
      DATABASE_URL: schema.url,
      BULL_PREFIX: `bench-cl-${RUN}`,
      JWT_SECRET: SECRET,
      SERVICE_KEY: `bench-service-key-${RUN}-0123456789`,
      AUTH_ENABLED: 'true',
      WORKFLOWS_DIR: join(ROOT, 'tools/bench/workflows'),
      OBSERVABILITY_EVENTS: 'false',
      DOCUMENTS_URL: 'off',
      AGENTS_URL: 'off',
    },
    { port },
  );
  const base = `http://127.0.0.1:${port}`;
  const token = await signToken(SECRET, { sub: USER, apps: [APP] });
  const started = await httpCall(`${base}/api/chats/${APP}/${WORKFLOW}/start`, 'POST', { user_id: USER, client_request_id: RUN }, { authorization: `Bearer ${token}` });
  if (started.status !== 201 && started.status !== 200) throw new Error(`chat start: ${started.status} ${JSON.stringify(started.json)}`);
  const chatId = started.json.chat_id as string;
  const wsUrl = `${base.replace('http', 'ws')}${started.json.websocket_url}?access_token=${encodeURIComponent(token)}`;

  const writerSvc = await spawnService('writer', 'tools/bench/client.ts', { BENCH_CLIENT_ROLE: 'writer', LOG_LEVEL: 'warn' }, { log: 'client bench writer ready', ipc: true });
  const writer = new Writer(writerSvc);
  await writer.ask<'ready'>({ cmd: 'init', chatId, databaseUrl: schema.url });
  say(`client core benchmark${QUICK ? ' (quick)' : ''}: one runtime instance, ~200 B events; ChatConnection (Map storage) vs bare ws (JSON.parse + index check), one after the other`);
  say(`\n## size — what the client adds to a browser app\n${sizeTable(await clientSizes())}`);

  // replay: fill the chat, then resume it from nothing, alternating the two clients.
  await writer.ask<'step'>({ cmd: 'step', rate: 20_000, durationMs: Math.ceil((EVENTS / 20_000) * 1000) });
  const fill = await writer.ask<'flush'>({ cmd: 'flush' });
  if (fill.failures) say(`writer: ${fill.failures} failed writes`);
  const filled = fill.lastIndex;
  const times: Record<'core' | 'bare', number[]> = { core: [], bare: [] };
  // This process runs only the client under test during a try: its CPU time is the client's cost.
  const cpu: Record<'core' | 'bare', number[]> = { core: [], bare: [] };
  for (let i = 0; i < TRIES; i++) {
    for (const kind of i % 2 ? (['bare', 'core'] as const) : (['core', 'bare'] as const)) {
      const reader = kind === 'core' ? clientCore(base, token, chatId) : bareWs(wsUrl);
      const c0 = process.cpuUsage();
      const ms = await reader.open(0);
      const c = process.cpuUsage(c0);
      cpu[kind].push((c.user + c.system) / filled);
      reader.close();
      if (reader.applied !== filled) throw new Error(`${kind}: applied ${reader.applied} of ${filled} events`);
      times[kind].push(ms);
    }
  }
  say(`\n## replay — client.resume of a ${int(filled)}-event chat → boundary, ${TRIES} tries each`);
  const rate = (ms: number) => int(filled / (ms / 1000));
  say(
    table(
      ['client', 'p50 ms', 'p99 ms', 'events/s at p50', 'events/s best', 'client CPU µs/event (p50)'],
      [
        ['ChatConnection', fmt(pct(times.core, 50)), fmt(pct(times.core, 99)), rate(pct(times.core, 50)), rate(Math.min(...times.core)), fmt(pct(cpu.core, 50), 2)],
        ['baseline: bare ws', fmt(pct(times.bare, 50)), fmt(pct(times.bare, 99)), rate(pct(times.bare, 50)), rate(Math.min(...times.bare)), fmt(pct(cpu.bare, 50), 2)],
      ],
    ),
  );

  // live: the same rates for each client, connected alone and live (resumed to the end first).
  const rows: string[][] = [];
  for (const target of RATES) {
    for (const kind of ['core', 'bare'] as const) {
      const from = (await writer.ask<'flush'>({ cmd: 'flush' })).lastIndex;
      const reader = kind === 'core' ? clientCore(base, token, chatId) : bareWs(wsUrl);
      await reader.open(from);
      await sleep(200);
      const step = await writer.ask<'step'>({ cmd: 'step', rate: target, durationMs: STEP_MS });
      const end = (await writer.ask<'flush'>({ cmd: 'flush' })).lastIndex;
      const until = performance.now() + 15_000;
      while (reader.applied < end - from && performance.now() < until) await sleep(20);
      const seconds = step.elapsedMs / 1000;
      reader.close();
      rows.push([
        int(target),
        kind === 'core' ? 'ChatConnection' : 'bare ws',
        int(reader.applied / seconds),
        fmt(pct(reader.latencies, 50)),
        fmt(pct(reader.latencies, 99)),
        fmt(Math.max(...reader.latencies), 0),
        int(end - from - reader.applied),
      ]);
    }
  }
  say(`\n## live — a writer appends at each rate for ${STEP_MS / 1000} s; latency from write to applied`);
  say(table(['target ev/s', 'client', 'applied ev/s', 'p50 ms', 'p99 ms', 'max ms', 'not applied'], rows));
  writerSvc.child.send({ cmd: 'stop' } satisfies WriterCommand);
  await cleanup();
}

if (process.env.BENCH_CLIENT_ROLE === 'writer') writerRole();
else runMain(main, { deadlineMs: 10 * 60_000 });

/**
 * Load generator of the fan-out benchmarks (tools/bench/runtime.ts), a child process driven over
 * IPC so that it does not share a core with the clients that measure delivery.
 *
 * - `tessera` mode writes the way a runtime worker does: one `EventWriter` per chat (the runtime's
 *   own class: group commit into the PostgreSQL `Timeline`, then publish on the `ChatFeed`), so
 *   every event is stored, indexed and published exactly as a turn's events are.
 * - `tail` mode is a prototype of the hot tail that issue 23 designs (not the runtime's code): per
 *   chat and tick, one Lua script takes the chat's next indexes, appends the envelopes to the chat's
 *   Redis stream and publishes them on the chat's channel (what the runtime's instances deliver, as
 *   they do a worker's batches); a flusher in this process writes them to PostgreSQL with their
 *   indexes in batches (every 5 ms or 500 events) and trims the streams up to what it wrote. One
 *   Redis only (the script publishes on a channel it does not declare as a key).
 * - `raw` mode publishes the same envelopes straight to Redis pub/sub (pipelined), for the bare
 *   ws server: the ceiling with no storage at all. Its channels (`bare…:chat:…`) are the bare
 *   server's, heard by plain SUBSCRIBE: PUBLISH. The platform's own channels (`tessera:chat:…`) are
 *   heard by SSUBSCRIBE only, so a raw publish there is an SPUBLISH, as the platform's bus sends.
 *
 * `redisUrl` may name one Redis or a Redis Cluster (`redis+cluster://…`): clients are the kit's
 * `createRedis`, as a worker's are. On a cluster nothing is pipelined across slots (ioredis refuses
 * a pipeline whose keys are on different slots): each publish goes on its own.
 *
 * Each event carries `sent_at` (ms since the epoch, sub-ms precision) so clients measure latency.
 * The load is open loop: events are emitted at the target rate whatever the system does.
 */
import { randomBytes } from 'node:crypto';
import type { ChainableCommander } from 'ioredis';
import { BusPublisher, BusSubscriber, channelOf, createLogger, createRedis, isCluster, pgPool } from '@tessera/kit';
import { deleteKeys } from './lib/redis-keys';
import { ChatFeed } from '../../apps/runtime/src/bus/feed';
import type { StoredEvent } from '../../apps/runtime/src/store/timeline';
import { Timeline } from '../../apps/runtime/src/store/timeline';
import { EventWriter } from '../../apps/runtime/src/turns/event-writer';

export type WriterCommand =
  | { cmd: 'init'; mode: 'tessera' | 'raw' | 'tail'; chats: string[]; databaseUrl: string; redisUrl: string; poolSize: number; eventBytes: number; channelPrefix?: string }
  | { cmd: 'step'; rate: number; durationMs: number }
  | { cmd: 'flush' }
  | { cmd: 'stop' };

export type WriterReply =
  | { cmd: 'ready' }
  | { cmd: 'step'; sent: number; elapsedMs: number; stored: number; failures: number; lastIndex: Record<string, number> }
  | { cmd: 'flush'; lastIndex: Record<string, number>; stored: number; failures: number }
  | { cmd: 'error'; message: string };

const now = () => performance.timeOrigin + performance.now();
const reply = (m: WriterReply) => process.send!(m);

let emitOne: (chatIdx: number) => void = () => undefined;
let drainAll: () => Promise<void> = async () => undefined;
let chats: string[] = [];
const lastIndex: Record<string, number> = {};
let stored = 0;
let failures = 0;
let closeAll: () => Promise<void> = async () => undefined;
let padding = '';

let seq = 0;
/**
 * The envelope's data: ~`bytes` bytes on the wire once the runtime wraps it. Each event is a
 * message of its own, so that the writer's coalescing of text deltas leaves them apart: this load
 * measures events fanned out, one per append.
 */
function dataOf(): Record<string, unknown> {
  return { message_id: `f${(seq++ % 1e6).toString().padStart(6, '0')}`, agent: 'bench', role: 'assistant', delta: padding, done: false, sent_at: now() };
}

/**
 * KEYS: the chat's stream, its index counter. ARGV: the chat's channel, the chat id, the timestamp,
 * then each event's data (JSON). Returns the last index given.
 */
const TAIL_APPEND = `
local top = tonumber(redis.call('GET', KEYS[2]) or '0')
local events = {}
for i = 4, #ARGV do
  top = top + 1
  local wire = '{"type":"chat.text","data":' .. ARGV[i] .. ',"timestamp":"' .. ARGV[3] .. '","index":' .. top .. '}'
  redis.call('XADD', KEYS[1], top .. '-1', 'w', wire)
  events[#events + 1] = {index = top, type = 'chat.text', wire = wire}
end
redis.call('SET', KEYS[2], top)
redis.call('SPUBLISH', ARGV[1], cjson.encode({chat_id = ARGV[2], events = events}))
return top
`;

/**
 * The flusher's batches: small and frequent. Batches of 2,000 every 20 ms made the live path's
 * p99 at 20k ev/s 375 ms (each batch a burst of PostgreSQL and of this process's serialising);
 * 500 every 5 ms, 55–77 ms; no PostgreSQL writes at all, 39 ms (`--quick`, 500 clients).
 */
const FLUSH_ROWS = 500;
const FLUSH_EVERY_MS = 5;

/** The hot tail's live path: Redis first (index, stream, publish), PostgreSQL after, in batches. */
async function initTail(c: Extract<WriterCommand, { cmd: 'init' }>, logger: ReturnType<typeof createLogger>): Promise<void> {
  const pool = pgPool(c.databaseUrl, c.poolSize);
  pool.on('error', () => undefined);
  const redis = createRedis(c.redisUrl, logger, 'bench-writer-tail');
  redis.defineCommand('tailAppend', { numberOfKeys: 2, lua: TAIL_APPEND });
  const append = (redis as unknown as { tailAppend(...a: string[]): Promise<number> }).tailAppend.bind(redis);
  const run = randomBytes(4).toString('hex');
  const keys = chats.map((chat) => [`bench-tail-${run}:{${chat}}:stream`, `bench-tail-${run}:{${chat}}:top`]);
  const channels = chats.map((chat) => channelOf('chatEvents', chat).name);
  // The counters start where the chats' stored timelines end (earlier scenarios wrote to them).
  const tops = await pool.query<{ chat_id: string; top: number }>('SELECT chat_id, max(idx)::int AS top FROM chat_events WHERE chat_id = ANY($1) GROUP BY chat_id', [chats]);
  for (const r of tops.rows) await redis.set(keys[chats.indexOf(r.chat_id)][1], r.top);
  const queued: Record<string, unknown>[][] = chats.map(() => []);
  const dirty = new Set<number>();
  type Row = { chat: number; index: number; data: Record<string, unknown>; ts: string };
  const unflushed: Row[] = [];
  const appends = new Set<Promise<unknown>>();
  let flushing: Promise<void> | null = null;
  const writeBatch = async (rows: Row[]) => {
    const chatIds = rows.map((r) => chats[r.chat]);
    await pool.query(
      `INSERT INTO chat_events (chat_id, idx, key, type, data, created_at)
       SELECT c, i, c || ':' || i, 'chat.text', d, t::timestamptz FROM unnest($1::text[], $2::int[], $3::jsonb[], $4::text[]) AS x(c, i, d, t)
       ON CONFLICT DO NOTHING`,
      [chatIds, rows.map((r) => r.index), rows.map((r) => JSON.stringify(r.data)), rows.map((r) => r.ts)],
    );
    // What is in PostgreSQL leaves the streams.
    const upTo = new Map<number, number>();
    for (const r of rows) upTo.set(r.chat, Math.max(upTo.get(r.chat) ?? 0, r.index));
    const pipe = redis.pipeline();
    for (const [i, index] of upTo) pipe.xtrim(keys[i][0], 'MINID', `${index + 1}`);
    await pipe.exec();
  };
  const flushPg = (): Promise<void> => {
    if (flushing || unflushed.length === 0) return flushing ?? Promise.resolve();
    const rows = unflushed.splice(0, FLUSH_ROWS);
    flushing = writeBatch(rows)
      .catch(() => void (failures += rows.length))
      .finally(() => {
        flushing = null;
        if (unflushed.length >= FLUSH_ROWS) void flushPg();
      });
    return flushing;
  };
  const flusher = setInterval(() => void flushPg(), FLUSH_EVERY_MS);
  emitOne = (i) => {
    queued[i].push(dataOf());
    dirty.add(i);
  };
  (globalThis as { __flushTick?: () => void }).__flushTick = () => {
    const ts = new Date().toISOString();
    for (const i of dirty) {
      const datas = queued[i];
      queued[i] = [];
      const p = append(keys[i][0], keys[i][1], channels[i], chats[i], ts, ...datas.map((d) => JSON.stringify(d))).then(
        (top) => {
          const first = Number(top) - datas.length + 1;
          datas.forEach((data, k) => unflushed.push({ chat: i, index: first + k, data, ts }));
          lastIndex[chats[i]] = Number(top);
          stored += datas.length;
          if (unflushed.length >= FLUSH_ROWS) void flushPg();
        },
        () => void (failures += datas.length),
      );
      appends.add(p);
      void p.finally(() => appends.delete(p));
    }
    dirty.clear();
  };
  drainAll = async () => {
    (globalThis as { __flushTick?: () => void }).__flushTick?.();
    await Promise.all([...appends]);
    while (unflushed.length || flushing) await flushPg();
  };
  closeAll = async () => {
    clearInterval(flusher);
    await drainAll();
    await deleteKeys(c.redisUrl, `bench-tail-${run}:`).catch(() => undefined);
    redis.disconnect();
    await pool.end();
  };
}

async function init(c: Extract<WriterCommand, { cmd: 'init' }>): Promise<void> {
  chats = c.chats;
  // Size the padding once so that the wire envelope is about eventBytes long.
  const sample = `{"type":"chat.text","data":${JSON.stringify({ ...dataOf(), delta: '' })},"timestamp":"2026-01-01T00:00:00.000Z","index":12345}`;
  padding = 'x'.repeat(Math.max(0, c.eventBytes - sample.length));
  const logger = createLogger('bench-writer', 'warn');
  if (c.mode === 'tail') return initTail(c, logger);
  if (c.mode === 'tessera') {
    const pool = pgPool(c.databaseUrl, c.poolSize);
    pool.on('error', () => undefined);
    const timeline = new Timeline(pool);
    if (process.env.BENCH_INFLIGHT) (timeline as unknown as { maxInFlight: number }).maxInFlight = Number(process.env.BENCH_INFLIGHT);
    const pub = createRedis(c.redisUrl, logger, 'bench-writer-pub');
    const sub = createRedis(c.redisUrl, logger, 'bench-writer-sub', { maxRetriesPerRequest: null });
    const feed = new ChatFeed(new BusPublisher(pub, { perTick: true }), new BusSubscriber(sub, logger));
    const run = randomBytes(4).toString('hex');
    const onStored = (chat: string) => (events: StoredEvent[]) => {
      stored += events.length;
      const last = events[events.length - 1].index;
      if (last > (lastIndex[chat] ?? 0)) lastIndex[chat] = last;
    };
    const writers = chats.map((chat) => new EventWriter(chat, `fanout-${run}`, timeline, feed, onStored(chat)));
    let gen = 0;
    emitOne = (i) => {
      const w = writers[i];
      // A writer whose write failed stays failed (as a turn would): count it, start a new one.
      w.emit('chat.text', dataOf() as never).catch(() => {
        failures++;
        if (writers[i] === w) writers[i] = new EventWriter(chats[i], `fanout-${run}-${++gen}`, timeline, feed, onStored(chats[i]));
      });
    };
    drainAll = async () => {
      await Promise.all(writers.map((w) => w.drain().catch(() => undefined)));
    };
    closeAll = async () => {
      await drainAll();
      pub.disconnect();
      sub.disconnect();
      await pool.end();
    };
  } else {
    const pub = createRedis(c.redisUrl, logger, 'bench-writer-raw');
    const prefix = c.channelPrefix ?? 'bare';
    const sharded = prefix === 'tessera';
    const channels = chats.map((chat) => `${prefix}:chat:${chat}:events`);
    const next = chats.map(() => 0);
    // One Redis: pipelines of 256. A cluster: each publish on its own, awaited together at a flush.
    const cluster = isCluster(pub);
    let pipe: ChainableCommander | null = cluster ? null : pub.pipeline();
    let sentAlone: Promise<unknown>[] = [];
    let queued = 0;
    emitOne = (i) => {
      const index = ++next[i];
      const wire = `{"type":"chat.text","data":${JSON.stringify(dataOf())},"timestamp":"${new Date().toISOString()}","index":${index}}`;
      if (pipe) {
        if (sharded) pipe.spublish(channels[i], wire);
        else pipe.publish(channels[i], wire);
      } else sentAlone.push((sharded ? pub.spublish(channels[i], wire) : pub.publish(channels[i], wire)).catch(() => void failures++));
      lastIndex[chats[i]] = index;
      stored++;
      if (++queued >= 256) void flushPipe();
    };
    const flushPipe = (): Promise<void> => {
      if (!queued) return Promise.resolve();
      queued = 0;
      if (!pipe) {
        const out = sentAlone;
        sentAlone = [];
        return Promise.all(out).then(() => undefined);
      }
      const p = pipe;
      pipe = pub.pipeline();
      return p.exec().then(
        () => undefined,
        () => void failures++,
      );
    };
    // Flushed at the end of every tick too (see step()).
    drainAll = async () => void (await flushPipe());
    (globalThis as { __flushTick?: () => void }).__flushTick = () => void flushPipe();
    closeAll = async () => {
      await flushPipe();
      pub.disconnect();
    };
  }
}

/** Emit at `rate` ev/s for `durationMs`, round-robin over the chats, in ticks of ~2 ms. */
function step(rate: number, durationMs: number): Promise<{ sent: number; elapsedMs: number }> {
  return new Promise((res) => {
    const t0 = performance.now();
    let sent = 0;
    let cursor = 0;
    const tick = () => {
      const elapsed = performance.now() - t0;
      const due = Math.min(Math.floor((rate * Math.min(elapsed, durationMs)) / 1000), Math.ceil((rate * durationMs) / 1000));
      while (sent < due) {
        emitOne(cursor);
        cursor = (cursor + 1) % chats.length;
        sent++;
      }
      (globalThis as { __flushTick?: () => void }).__flushTick?.();
      if (elapsed >= durationMs) return res({ sent, elapsedMs: elapsed });
      setTimeout(tick, 2);
    };
    tick();
  });
}

process.on('message', (m: WriterCommand) => {
  void (async () => {
    try {
      if (m.cmd === 'init') {
        await init(m);
        reply({ cmd: 'ready' });
      } else if (m.cmd === 'step') {
        const s = await step(m.rate, m.durationMs);
        reply({ cmd: 'step', ...s, stored, failures, lastIndex });
      } else if (m.cmd === 'flush') {
        await drainAll();
        reply({ cmd: 'flush', lastIndex, stored, failures });
      } else if (m.cmd === 'stop') {
        await closeAll();
        process.exit(0);
      }
    } catch (e) {
      reply({ cmd: 'error', message: (e as Error).stack ?? String(e) });
    }
  })();
});
process.once('disconnect', () => process.exit(0));
process.once('SIGTERM', () => void closeAll().finally(() => process.exit(0)));
console.log('fanout writer ready');

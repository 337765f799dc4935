/**
 * Load generator of the fan-out benchmarks (tools/bench/runtime.ts), a child process driven over
 * IPC so that it does not share a core with the clients that measure delivery.
 *
 * - `tessera` mode writes the way a runtime worker does: one `EventWriter` per chat (the runtime's
 *   own class: group commit into the PostgreSQL `Timeline`, then publish on the `ChatFeed`), so
 *   every event is stored, indexed and published exactly as a turn's events are.
 * - `tail` mode is the same with the timeline's tail on (EVENT_TAIL=on: store/tail.ts): each batch
 *   indexed and stored in the chat's Redis stream, then published; a TailFlusher in this process,
 *   as in a worker, writes PostgreSQL behind. `tailPrefix` is the API instances' BULL_PREFIX.
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
import { BusPublisher, BusSubscriber, createLogger, createRedis, isCluster, pgPool } from '@tessera/kit';
import { deleteKeys } from './lib/redis-keys';
import { ChatFeed } from '../../apps/runtime/src/bus/feed';
import { EventTail } from '../../apps/runtime/src/store/tail';
import { TailFlusher } from '../../apps/runtime/src/store/tail-flusher';
import type { StoredEvent } from '../../apps/runtime/src/store/timeline';
import { Timeline } from '../../apps/runtime/src/store/timeline';
import { EventWriter } from '../../apps/runtime/src/turns/event-writer';

export type WriterCommand =
  | { cmd: 'init'; mode: 'tessera' | 'raw' | 'tail'; chats: string[]; databaseUrl: string; redisUrl: string; poolSize: number; eventBytes: number; channelPrefix?: string; tailPrefix?: string }
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

async function init(c: Extract<WriterCommand, { cmd: 'init' }>): Promise<void> {
  chats = c.chats;
  // Size the padding once so that the wire envelope is about eventBytes long.
  const sample = `{"type":"chat.text","data":${JSON.stringify({ ...dataOf(), delta: '' })},"timestamp":"2026-01-01T00:00:00.000Z","index":12345}`;
  padding = 'x'.repeat(Math.max(0, c.eventBytes - sample.length));
  const logger = createLogger('bench-writer', 'warn');
  if (c.mode === 'tessera' || c.mode === 'tail') {
    const pool = pgPool(c.databaseUrl, c.poolSize);
    pool.on('error', () => undefined);
    const run = randomBytes(4).toString('hex');
    // The tail: the runtime's own (EVENT_TAIL=on), and its flusher, which a worker runs.
    const tailRedis = c.mode === 'tail' ? createRedis(c.redisUrl, logger, 'bench-writer-tail') : null;
    // Under the API instances' BULL_PREFIX: they read the same tails (a resume, a gap).
    const tailPrefix = c.tailPrefix ?? `bench-tail-${run}`;
    const tail = tailRedis ? new EventTail(tailRedis, pool, { prefix: tailPrefix, keep: 1_000, maxUnflushed: 100_000, maxBehind: 1_000_000, idleTtlMs: 3600_000 }) : undefined;
    const flusher = tail && tailRedis ? new TailFlusher(tail, tailRedis, logger, `${tailPrefix}:tail:flusher`).start() : null;
    const timeline = new Timeline(pool, tail);
    if (process.env.BENCH_INFLIGHT) (timeline as unknown as { maxInFlight: number }).maxInFlight = Number(process.env.BENCH_INFLIGHT);
    const pub = createRedis(c.redisUrl, logger, 'bench-writer-pub');
    const sub = createRedis(c.redisUrl, logger, 'bench-writer-sub', { maxRetriesPerRequest: null });
    const feed = new ChatFeed(new BusPublisher(pub, { perTick: true }), new BusSubscriber(sub, logger));
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
      // Everything in PostgreSQL too, as after the PostgreSQL-first writer's drain.
      if (tail) await Promise.all(chats.map((chat) => tail.flushChat(chat)));
    };
    closeAll = async () => {
      await drainAll();
      await flusher?.close();
      await tail?.close();
      if (tailRedis) {
        // The tails' keys, and anything else under the prefix (the API instances of fanout-tail use it alone).
        await deleteKeys(c.redisUrl, `${tailPrefix}:`).catch(() => undefined);
        tailRedis.disconnect();
      }
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

import { randomUUID } from 'node:crypto';
import type { Pool } from 'pg';
import { channelOf, isCluster, isStorageUnreachable, type Logger, type RedisClient } from '@tessera/kit';
import { toStored, type NewEvent, type StoredEvent } from './timeline';

/**
 * The hot tail of every chat's timeline, in Redis (EVENT_TAIL=on): events are indexed, stored in
 * the chat's stream and delivered at once; PostgreSQL gets them behind, in batches
 * (TailFlusher), and stays the durable log that everything older is read from.
 *
 * Per chat, under one hash tag (one slot of a cluster):
 * - `…:log`: a stream whose entry ids are the events' indexes (`<index>-0`); fields k (key),
 *   t (type), d (data, JSON), ts (timestamp, ISO).
 * - `…:keys`: a sorted set of the keys of the events in the stream, scored by index: an event
 *   whose key is there is not appended again (a re-run makes the same keys). Keys made fresh for
 *   one event (NewEvent.fresh: a turn's own sequence) are neither looked up nor kept.
 * - `…:flushed`: the highest index PostgreSQL holds from this stream.
 * - `…:closing`: a turn's closing events while its end is saved (holdClosing, recoverClosing).
 * - `…:append`: the last append's token and answer, so that an append sent twice stores once.
 * The stream keeps its newest `keep` events once they are flushed (resume reads them from Redis)
 * and never drops one that is not; when PostgreSQL is away and more than `maxUnflushed` wait in a
 * chat, or more than `maxBehind` in this process's write-behind (all its chats), an append is
 * refused (TailFull) as a PostgreSQL append would be. A flushed, idle chat's keys expire.
 *
 * A chat whose stream is gone (never written, expired, or lost with Redis) starts again from
 * PostgreSQL's highest index: the append asks for it (one statement), and skips keys already
 * stored there.
 */
export interface TailOptions {
  /** Key prefix (`<prefix>:tail:{<chat>}:…`). */
  prefix: string;
  /** Flushed events kept in each chat's stream for resumes. */
  keep: number;
  /** Unflushed events a chat may hold before appends are refused. */
  maxUnflushed: number;
  /**
   * Events this process may have appended that PostgreSQL does not hold yet, over all its chats,
   * before its appends are refused: with `maxUnflushed`, what bounds Redis (and this process's
   * memory) in total while PostgreSQL is away.
   */
  maxBehind: number;
  /** A flushed chat's keys expire after this long without an append. */
  idleTtlMs: number;
}

/** The chat holds `maxUnflushed` events PostgreSQL has not taken yet, or this process `maxBehind` (PostgreSQL is away or behind). */
export class TailFull extends Error {
  readonly code = 'TAIL_FULL';
  /** Handled as storage out of reach (the kit's isStorageUnreachable): a 503, a job put back. */
  readonly storageUnreachable = true;
  constructor(chatId: string, why: 'chat' | 'process') {
    super(`the timeline of chat ${chatId} waits for storage (${why === 'chat' ? 'the chat holds' : 'this process holds'} too many events it has not written)`);
  }
}

/** How long a chat's last append answers a call sent again (ioredis resends within its reconnect attempts: seconds). */
const LAST_APPEND_TTL_MS = 300_000;

/**
 * Appends to one or more chats (one Redis: the appends of one event-loop tick, all chats in one
 * call). KEYS: per chat its log, keys, flushed, channel and last-append key, then (when ARGV[1] is
 * '1') the flusher's marks. ARGV: marks, maxUnflushed, timestamp, then per chat: base ('' =
 * unknown), chat id, chat id as JSON, number of events, the append's token, then per event: key,
 * type, data (JSON), fresh ('1': its
 * key is new by construction, neither looked up nor kept), type as JSON, and its wire envelope up
 * to the index as a JSON string without its closing quote (the script adds the index and `}"`: no
 * JSON is encoded here). Each chat's events are indexed, stored in its stream, published on its
 * channel (ChatEventBatch) and the chat marked for the flusher: the live path is this one round
 * trip. Returns per chat {0, position, index, …}, or {-1} (no stream: the base is needed) or {-2}
 * (too much unflushed).
 *
 * A call run twice answers the second time what it answered the first, and stores nothing again:
 * ioredis sends a command again when its connection drops before the answer (a Redis killed right
 * after it ran the script and wrote its AOF), and fresh keys are not looked up. The chat's
 * last-append key holds the last append's token and answer for LAST_APPEND_TTL_MS.
 */
const APPEND = `
local marks = ARGV[1] == '1'
local maxUnflushed = tonumber(ARGV[2])
local ts = ARGV[3]
local results = {}
local a = 4
local k = 0
while a <= #ARGV do
  local base, chatId, chatJson, n, token = ARGV[a], ARGV[a + 1], ARGV[a + 2], tonumber(ARGV[a + 3]), ARGV[a + 4]
  a = a + 5
  local log, keys, flushedKey, channel, lastKey = KEYS[k + 1], KEYS[k + 2], KEYS[k + 3], KEYS[k + 4], KEYS[k + 5]
  k = k + 5
  local res
  local last
  local prev = redis.call('GET', lastKey)
  if prev and string.sub(prev, 1, #token + 1) == token .. '|' then
    -- This very append, sent again: what it stored the first time.
    res = cjson.decode(string.sub(prev, #token + 2))
  else
    local top = redis.call('XREVRANGE', log, '+', '-', 'COUNT', 1)
    if #top == 0 then
      if base == '' then res = {-1} else
        last = tonumber(base)
        redis.call('SET', flushedKey, last)
      end
    else
      last = tonumber(string.match(top[1][1], '^(%d+)'))
      local flushed = redis.call('GET', flushedKey)
      if flushed and last - tonumber(flushed) >= maxUnflushed then res = {-2} end
    end
  end
  if not res then
    res = {0}
    local entries = {}
    for i = a, a + (n - 1) * 6, 6 do
      local fresh = ARGV[i + 3] == '1'
      if fresh or not redis.call('ZSCORE', keys, ARGV[i]) then
        last = last + 1
        redis.call('XADD', log, last .. '-0', 'k', ARGV[i], 't', ARGV[i + 1], 'd', ARGV[i + 2], 'ts', ts)
        if not fresh then redis.call('ZADD', keys, last, ARGV[i]) end
        res[#res + 1] = (i - a) / 6
        res[#res + 1] = last
        entries[#entries + 1] = '{"index":' .. last .. ',"type":' .. ARGV[i + 4] .. ',"wire":' .. ARGV[i + 5] .. last .. '}"}'
      end
    end
    if #entries > 0 then
      if redis.call('PTTL', log) >= 0 then
        redis.call('PERSIST', log)
        redis.call('PERSIST', keys)
        redis.call('PERSIST', flushedKey)
      end
      redis.call('SPUBLISH', channel, '{"chat_id":' .. chatJson .. ',"events":[' .. table.concat(entries, ',') .. ']}')
      if marks then redis.call('ZINCRBY', KEYS[#KEYS], 1, chatId) end
    end
    redis.call('SET', lastKey, token .. '|' .. cjson.encode(res), 'PX', ${LAST_APPEND_TTL_MS})
  end
  a = a + n * 6
  results[#results + 1] = res
end
return results`;

/** KEYS: log. ARGV: start, end, count. The stream's first index (or false) and the entries asked for. */
const RANGE = `
local first = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', 1)
if #first == 0 then return false end
return { first[1][1], redis.call('XRANGE', KEYS[1], ARGV[1], ARGV[2], 'COUNT', ARGV[3]) }`;

/**
 * KEYS: log, keys, flushed, and (one Redis only) the flusher's marks. ARGV: flushed up to, keep,
 * idle TTL ms, chat id. Records what PostgreSQL holds, trims the stream to its newest `keep` events
 * and what is not flushed, and lets a chat whose every event is flushed expire when idle (and
 * takes it off the marks: an append after this script marks it again). Returns the stream's last
 * index (0 when empty).
 */
const FLUSHED = `
local upto = tonumber(ARGV[1])
local cur = tonumber(redis.call('GET', KEYS[3]) or '0')
if upto > cur then redis.call('SET', KEYS[3], upto) else upto = cur end
local top = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
if #top == 0 then return 0 end
local last = tonumber(string.match(top[1][1], '^(%d+)'))
local minid = math.min(upto + 1, last - tonumber(ARGV[2]) + 1)
if minid > 1 then
  redis.call('XTRIM', KEYS[1], 'MINID', minid .. '-0')
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', '(' .. minid)
end
if upto >= last then
  for i = 1, 3 do redis.call('PEXPIRE', KEYS[i], ARGV[3]) end
  if KEYS[4] then redis.call('ZREM', KEYS[4], ARGV[4]) end
end
return last`;

/** KEYS: dirty. ARGV: chat, score read before its flush. Unmarks the chat unless it was appended to since. */
const UNMARK = `
if redis.call('ZSCORE', KEYS[1], ARGV[1]) == ARGV[2] then return redis.call('ZREM', KEYS[1], ARGV[1]) end
return 0`;

type Entry = [id: string, fields: string[]];

/** An append waiting for its tick's script call. */
type Append = { chatId: string; events: NewEvent[]; data: string[]; resolve: (stored: StoredEvent[]) => void; reject: (e: unknown) => void };

/** How long held closing events are kept for recovery (a turn's end is saved within seconds, or the process died). */
const CLOSING_TTL_MS = 24 * 3600_000;

/** Chats in one append call at most (one Redis: the appends of one tick). */
const GROUP_CHATS = 100;

/** A row the write-behind inserts: chat, index, key, type, timestamp, data (JSON). */
type FlushRow = { c: string; i: number; k: string; t: string; ts: string; d: string };

/** The write-behind's batches: small and frequent (the prototype's measure: 500 rows every 5 ms kept the live path's p99 lowest). */
const WRITE_ROWS = 500;
const WRITE_EVERY_MS = 5;
/** How often the tails hear what PostgreSQL holds (trim, unmark); and the wait after a failed write. */
const REPORT_EVERY_MS = 1_000;
const FAILED_RETRY_MS = 500;

type TailCommands = {
  tailAppend(numberOfKeys: number, ...keysAndArgv: string[]): Promise<number[][]>;
  tailRange(log: string, start: string, end: string, count: number): Promise<[string, Entry[]] | null>;
  tailFlushed(numberOfKeys: number, ...keysAndArgv: (string | number)[]): Promise<number>;
  tailUnmark(dirty: string, chatId: string, score: string): Promise<number>;
};

const BASE_SQL = `SELECT coalesce((SELECT idx FROM chat_events WHERE chat_id = $1 ORDER BY idx DESC LIMIT 1), 0) AS top,
  coalesce((SELECT array_agg(key) FROM chat_events WHERE chat_id = $1 AND key = ANY($2::text[])), '{}') AS stored`;

/**
 * The flusher's statement: events with the indexes the tail gave them, in one statement for many
 * chats. An event already stored at its index (a flush repeated after a crash) is skipped; one
 * whose key was stored at another index (a re-run's event appended again after its key left the
 * tail's window: it was delivered, so it is kept) is stored under its key with `#<index>` added.
 */
const FLUSH_SQL = `
INSERT INTO chat_events (chat_id, idx, key, type, data, created_at)
SELECT x.c, x.i,
  CASE WHEN EXISTS (SELECT 1 FROM chat_events e WHERE e.chat_id = x.c AND e.key = x.k AND e.idx <> x.i) THEN x.k || '#' || x.i ELSE x.k END,
  x.t, ($6::jsonb) -> (x.ord::int - 1), x.ts::timestamptz
FROM unnest($1::text[], $2::int[], $3::text[], $4::text[], $5::text[]) WITH ORDINALITY AS x(c, i, k, t, ts, ord)
ON CONFLICT DO NOTHING`;

export class EventTail {
  private readonly cmd: TailCommands;
  private readonly dirtyKey: string;

  constructor(
    private readonly redis: RedisClient,
    private readonly pool: Pool,
    readonly o: TailOptions,
    private readonly logger?: Logger,
  ) {
    // Keys given per call: the flusher's marks are in the script on one Redis only (on a cluster they are on another slot).
    redis.defineCommand('tailAppend', { lua: APPEND });
    redis.defineCommand('tailRange', { numberOfKeys: 1, lua: RANGE });
    redis.defineCommand('tailFlushed', { lua: FLUSHED });
    redis.defineCommand('tailUnmark', { numberOfKeys: 1, lua: UNMARK });
    this.cmd = redis as unknown as TailCommands;
    // Not under a chat's hash tag: on a cluster it is a key of its own, marked after each append.
    this.dirtyKey = `${o.prefix}:tail:dirty`;
    this.marksInScript = !isCluster(redis);
  }

  private readonly marksInScript: boolean;
  /** This tail's appends' tokens: its own id and a count of its script calls. */
  private readonly token = randomUUID();
  private calls = 0;
  /** What this process appended and PostgreSQL does not hold yet (written behind, in order), but for the rows being written. */
  private behind: FlushRow[] = [];
  /** Rows of the write in flight (out of `behind` until it succeeds or fails). */
  private writingRows = 0;
  private writing: Promise<void> | null = null;
  private writeTimer: NodeJS.Timeout | null = null;
  /** Chats written behind since their tails were last told, with the highest index written. */
  private reported = new Map<string, number>();
  private reportTimer: NodeJS.Timeout | null = null;
  private lastWarn = 0;
  private closed = false;

  /** The flushed mark of a chat's tail moved to `upto` (trim; its flusher mark taken off when nothing waits, with `unmark` and one Redis). */
  private flushed(chatId: string, upto: number, unmark: boolean): Promise<number> {
    const keys: string[] = [...this.keysOf(chatId), ...(unmark && this.marksInScript ? [this.dirtyKey] : [])];
    return this.cmd.tailFlushed(keys.length, ...keys, upto, this.o.keep, this.o.idleTtlMs, chatId);
  }

  /**
   * Write-behind: what this process appended goes to PostgreSQL from memory, in batches of up to
   * WRITE_ROWS every WRITE_EVERY_MS (no Redis read), and the tails hear what PostgreSQL holds every
   * REPORT_EVERY_MS (one script per chat: mark, trim, unmark). What a process that dies leaves
   * behind is in its chats' tails, marked: the TailFlusher writes it from there.
   */
  private behindAppend(chatId: string, stored: StoredEvent[], keys: string[], types: string[], data: string[], timestamp: string): void {
    for (let j = 0; j < stored.length; j++) this.behind.push({ c: chatId, i: stored[j].index, k: keys[j], t: types[j], ts: timestamp, d: data[j] });
    if (this.behind.length >= WRITE_ROWS) void this.writeBehind();
    else this.writeTimer ??= later(() => void this.writeBehind(), WRITE_EVERY_MS);
  }

  private writeBehind(): Promise<void> {
    if (this.writeTimer) clearTimeout(this.writeTimer);
    this.writeTimer = null;
    if (this.writing || this.behind.length === 0) return this.writing ?? Promise.resolve();
    const rows = this.behind.splice(0, WRITE_ROWS * 4);
    this.writingRows = rows.length;
    this.writing = this.insert(rows).then(
      () => {
        for (const r of rows) if (r.i > (this.reported.get(r.c) ?? 0)) this.reported.set(r.c, r.i);
        this.reportSoon();
      },
      (e: Error) => {
        // PostgreSQL away: the rows wait (in order) for the next try; appends stop at maxUnflushed.
        this.behind = rows.concat(this.behind);
        if (Date.now() - this.lastWarn > 10_000) {
          this.lastWarn = Date.now();
          this.logger?.warn(isStorageUnreachable(e) ? 'timeline tail waits for the database' : 'timeline tail write failed', { error: e.message, waiting: this.behind.length });
        }
      },
    ).finally(() => {
      this.writing = null;
      this.writingRows = 0;
      if (this.behind.length && !this.closed) this.writeTimer ??= later(() => void this.writeBehind(), this.lastFailed() ? FAILED_RETRY_MS : WRITE_EVERY_MS);
    });
    return this.writing;
  }

  private lastFailedAt = 0;
  private lastFailed(): boolean {
    return Date.now() - this.lastFailedAt < FAILED_RETRY_MS;
  }

  private insert(rows: FlushRow[]): Promise<unknown> {
    return insertRows(this.pool, rows).catch((e: Error) => {
      this.lastFailedAt = Date.now();
      throw e;
    });
  }

  /**
   * Tells the tails of the chats written behind what PostgreSQL holds: each at most once a second
   * (after each batch, and on a timer for chats gone quiet), so that the scripts are spread over
   * time rather than sent for every chat at once; `all` (a drain): every chat now.
   */
  private async report(all = false): Promise<void> {
    const now = Date.now();
    const due: [string, number][] = [];
    for (const [chatId, upto] of this.reported) {
      if (!all && (this.toldAt.get(chatId) ?? 0) > now - REPORT_EVERY_MS) continue;
      due.push([chatId, upto]);
      this.reported.delete(chatId);
      this.toldAt.set(chatId, now);
    }
    if (this.toldAt.size > 4 * (this.reported.size + due.length) + 1000)
      for (const [chatId, at] of this.toldAt) if (at <= now - REPORT_EVERY_MS) this.toldAt.delete(chatId);
    await Promise.all(due.map(([chatId, upto]) => this.flushed(chatId, upto, true).catch(() => undefined)));
  }

  /** Reports what a batch wrote (the chats due), and arms the timer for those not due yet. */
  private reportSoon(): void {
    void this.report();
    if (this.reported.size && !this.closed)
      this.reportTimer ??= later(() => {
        this.reportTimer = null;
        this.reportSoon();
      }, REPORT_EVERY_MS);
  }

  /** When each chat's tail was last told (kept for a second). */
  private toldAt = new Map<string, number>();

  /** Writes what this process holds behind, and tells the tails (shutdown, or before a read from PostgreSQL). */
  async drainBehind(): Promise<void> {
    while (this.behind.length || this.writing) {
      await this.writeBehind();
      if (this.lastFailed()) break;
    }
    if (this.reportTimer) clearTimeout(this.reportTimer);
    this.reportTimer = null;
    await this.report(true);
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.drainBehind().catch(() => undefined);
    if (this.writeTimer) clearTimeout(this.writeTimer);
  }

  keysOf(chatId: string): [log: string, keys: string, flushed: string] {
    return [this.keyOf(chatId, 'log'), this.keyOf(chatId, 'keys'), this.keyOf(chatId, 'flushed')];
  }

  /** One of a chat's tail keys, all under the chat's hash tag (one slot of a cluster). */
  keyOf(chatId: string, name: 'log' | 'keys' | 'flushed' | 'closing' | 'append'): string {
    return `${this.o.prefix}:tail:{${chatId}}:${name}`;
  }

  /**
   * Indexes and stores the events (keys already in the tail, or in PostgreSQL when the tail starts
   * afresh, are skipped), publishes them on the chat's channel and marks the chat for the flusher.
   * Resolves with what was stored (and published). On one Redis the appends of one event-loop tick
   * go in one script call (like PostgreSQL's group commit: one call's overhead for many chats).
   */
  append(chatId: string, events: NewEvent[]): Promise<StoredEvent[]> {
    if (events.length === 0) return Promise.resolve([]);
    // PostgreSQL away or behind: what this process holds unwritten stays bounded, whatever the chats.
    if (this.behind.length + this.writingRows >= this.o.maxBehind) return Promise.reject(new TailFull(chatId, 'process'));
    return new Promise<StoredEvent[]>((resolve, reject) => {
      const a: Append = { chatId, events, data: events.map((e) => JSON.stringify(e.data)), resolve, reject };
      if (!this.marksInScript) return void this.appendAlone(a);
      this.queued.push(a);
      if (this.queued.length === 1) setImmediate(this.appendQueued);
    });
  }

  private queued: Append[] = [];

  private readonly appendQueued = (): void => {
    const group = this.queued;
    this.queued = [];
    for (let i = 0; i < group.length; i += GROUP_CHATS) void this.appendGroup(group.slice(i, i + GROUP_CHATS));
  };

  /** One call for the group; a chat whose stream must start from PostgreSQL goes again alone. */
  private async appendGroup(group: Append[]): Promise<void> {
    const timestamp = new Date().toISOString();
    let results: number[][];
    try {
      results = await this.call(group, timestamp, group.map(() => ''));
    } catch (e) {
      for (const a of group) a.reject(e);
      return;
    }
    group.forEach((a, j) => {
      if (results[j][0] === -1) return void this.appendAlone(a);
      this.settle(a, results[j], timestamp, a.events.map((_, i) => i));
    });
  }

  /** One chat's append on its own (a cluster, or a stream that starts from PostgreSQL's highest index). */
  private async appendAlone(a: Append): Promise<void> {
    try {
      const timestamp = new Date().toISOString();
      let offered = a.events.map((_, i) => i);
      let [r] = await this.call([a], timestamp, ['']);
      if (r[0] === -1) {
        // No stream: it starts after PostgreSQL's highest index, without what PostgreSQL holds.
        const base = await this.pool.query<{ top: number; stored: string[] }>({ name: 'tail-base', text: BASE_SQL, values: [a.chatId, a.events.map((e) => e.key)] });
        const stored = new Set(base.rows[0].stored);
        offered = offered.filter((i) => !stored.has(a.events[i].key));
        if (offered.length === 0) return a.resolve([]);
        [r] = await this.call([{ ...a, events: offered.map((i) => a.events[i]), data: offered.map((i) => a.data[i]) }], timestamp, [String(base.rows[0].top)]);
      }
      const out = this.settle(a, r, timestamp, offered);
      if (out.length && !this.marksInScript) await this.redis.zincrby(this.dirtyKey, 1, a.chatId);
    } catch (e) {
      a.reject(e);
    }
  }

  private call(group: Append[], timestamp: string, bases: string[]): Promise<number[][]> {
    const keys: string[] = [];
    const argv: string[] = [this.marksInScript ? '1' : '0', String(this.o.maxUnflushed), timestamp];
    group.forEach((a, j) => {
      keys.push(...this.keysOf(a.chatId), channelOf('chatEvents', a.chatId).name, this.keyOf(a.chatId, 'append'));
      argv.push(bases[j], a.chatId, JSON.stringify(a.chatId), String(a.events.length), `${this.token}:${this.calls++}`);
      a.events.forEach((e, i) => {
        const type = JSON.stringify(e.type);
        const head = JSON.stringify(`{"type":${type},"data":${a.data[i]},"timestamp":"${timestamp}","index":`).slice(0, -1);
        argv.push(e.key, e.type, a.data[i], e.fresh ? '1' : '0', type, head);
      });
    });
    if (this.marksInScript) keys.push(this.dirtyKey);
    return this.cmd.tailAppend(keys.length, ...keys, ...argv);
  }

  /** Resolves the append with what the script stored (`offered`: the events it was given, by position in `a.events`). */
  private settle(a: Append, r: number[], timestamp: string, offered: number[]): StoredEvent[] {
    if (r[0] === -2) {
      a.reject(new TailFull(a.chatId, 'chat'));
      return [];
    }
    const out: StoredEvent[] = [];
    const picked: number[] = [];
    for (let j = 1; j < r.length; j += 2) {
      const i = offered[r[j]];
      picked.push(i);
      out.push(toStored({ idx: r[j + 1], type: a.events[i].type, data: a.data[i], ts: timestamp }));
    }
    if (out.length)
      this.behindAppend(
        a.chatId,
        out,
        picked.map((i) => a.events[i].key),
        picked.map((i) => a.events[i].type),
        picked.map((i) => a.data[i]),
        timestamp,
      );
    a.resolve(out);
    return out;
  }

  /**
   * Events with index > after (≤ upTo), at most `limit`, from the tail; `first` is the tail's
   * oldest index (null: the chat has no tail, PostgreSQL holds all of it).
   */
  async range(chatId: string, after: number, limit: number, upTo?: number): Promise<{ first: number | null; events: StoredEvent[] }> {
    const r = await this.cmd.tailRange(this.keysOf(chatId)[0], `${after + 1}-0`, upTo === undefined ? '+' : `${upTo}-0`, limit);
    if (!r) return { first: null, events: [] };
    return { first: indexOf(r[0]), events: r[1].map(entryToStored) };
  }

  /** The chat's highest index in the tail, or null when it has no tail. */
  async top(chatId: string): Promise<number | null> {
    const r = (await this.redis.xrevrange(this.keysOf(chatId)[0], '+', '-', 'COUNT', 1)) as Entry[];
    return r.length ? indexOf(r[0][0]) : null;
  }

  /** Chats with events PostgreSQL may not hold yet, with the mark each had (at most `n`). */
  async dirty(n: number): Promise<{ chatId: string; mark: string }[]> {
    const r = await this.redis.zrange(this.dirtyKey, 0, n - 1, 'WITHSCORES');
    const out: { chatId: string; mark: string }[] = [];
    for (let i = 0; i < r.length; i += 2) out.push({ chatId: r[i], mark: r[i + 1] });
    return out;
  }

  /**
   * Writes the chat's unflushed events to PostgreSQL (at most `max`) and records them as flushed.
   * Safe to run twice at once or again after a crash (a stored index is skipped). Returns how many
   * were written and whether the chat has none left.
   */
  async flush(chats: string[], max: number): Promise<Map<string, { written: number; done: boolean }>> {
    const found = await Promise.all(
      chats.map(async (chatId) => {
        await this.recoverClosing(chatId);
        const [log, , flushed] = this.keysOf(chatId);
        const from = Number((await this.redis.get(flushed)) ?? 0) + 1;
        return { chatId, from, entries: (await this.redis.xrange(log, `${from}-0`, '+', 'COUNT', max)) as Entry[] };
      }),
    );
    const rows: FlushRow[] = [];
    for (const f of found) {
      for (const [id, fields] of f.entries) {
        const e = fieldsOf(fields);
        rows.push({ c: f.chatId, i: indexOf(id), k: e.k, t: e.t, ts: e.ts, d: e.d });
      }
    }
    if (rows.length) await insertRows(this.pool, rows);
    const out = new Map<string, { written: number; done: boolean }>();
    await Promise.all(
      found.map(async (f) => {
        const upto = f.entries.length ? indexOf(f.entries[f.entries.length - 1][0]) : f.from - 1;
        const last = await this.flushed(f.chatId, upto, false);
        out.set(f.chatId, { written: f.entries.length, done: f.entries.length < max && upto >= last });
      }),
    );
    return out;
  }

  /** Takes the chat off the flusher's list unless it was appended to after `mark` was read. */
  unmark(chatId: string, mark: string): Promise<number> {
    return this.cmd.tailUnmark(this.dirtyKey, chatId, mark);
  }

  /** Writes everything the chat's tail holds to PostgreSQL now (before a read made there). */
  async flushChat(chatId: string): Promise<void> {
    await this.drainBehind();
    for (;;) {
      const r = (await this.flush([chatId], 1000)).get(chatId);
      if (!r || r.done || r.written === 0) return;
    }
  }

  /**
   * A turn's closing events, held in the chat's tail while the turn's end is saved in PostgreSQL
   * (TurnEnd): if the process dies before it appends them, they are not lost with it. The chat is
   * marked, so that the sweeper looks at it once it is quiet.
   */
  async holdClosing(chatId: string, inputId: string, events: NewEvent[]): Promise<void> {
    await Promise.all([this.redis.set(this.keyOf(chatId, 'closing'), JSON.stringify({ input_id: inputId, events }), 'PX', CLOSING_TTL_MS), this.redis.zincrby(this.dirtyKey, 1, chatId)]);
  }

  releaseClosing(chatId: string): Promise<unknown> {
    return this.redis.del(this.keyOf(chatId, 'closing'));
  }

  /**
   * Closing events a process held and did not append (it died between saving its turn's end and
   * appending them): appended now if the turn's end was saved (its input is done, or cancelled by
   * a newer message), dropped if not (the input runs again and ends itself). Their keys make a
   * second append of them (the holder was only slow) store nothing. Called under the chat's lease
   * before a turn, and by the sweeper.
   */
  async recoverClosing(chatId: string): Promise<void> {
    const held = await this.redis.get(this.keyOf(chatId, 'closing'));
    if (!held) return;
    const { input_id: inputId, events } = JSON.parse(held) as { input_id: string; events: NewEvent[] };
    const r = await this.pool.query<{ status: string }>({ name: 'tail-closing-input', text: 'SELECT status FROM chat_inputs WHERE id = $1', values: [inputId] });
    const status = r.rows[0]?.status;
    if (status === 'done' || status === 'cancelled') await this.append(chatId, events);
    await this.releaseClosing(chatId);
  }
}

/** A timer that does not keep the process alive (close() drains what it would have done). */
function later(fn: () => void, ms: number): NodeJS.Timeout {
  return setTimeout(fn, ms).unref();
}

function indexOf(id: string): number {
  return Number(id.slice(0, id.indexOf('-')));
}

function fieldsOf(fields: string[]): { k: string; t: string; d: string; ts: string } {
  const e = { k: '', t: '', d: 'null', ts: '' };
  for (let j = 0; j < fields.length; j += 2) e[fields[j] as keyof typeof e] = fields[j + 1];
  return e;
}

function entryToStored([id, fields]: Entry): StoredEvent {
  const e = fieldsOf(fields);
  return toStored({ idx: indexOf(id), type: e.t, data: e.d, ts: e.ts });
}

/** The write-behind's and the sweeper's statement (FLUSH_SQL) for these rows. */
function insertRows(pool: Pool, rows: FlushRow[]): Promise<unknown> {
  return pool.query({
    name: 'tail-flush',
    text: FLUSH_SQL,
    values: [rows.map((r) => r.c), rows.map((r) => r.i), rows.map((r) => r.k), rows.map((r) => r.t), rows.map((r) => r.ts), `[${rows.map((r) => r.d).join(',')}]`],
  });
}

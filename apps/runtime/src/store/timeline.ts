import type { Pool } from 'pg';
import type { TimelineEvent } from '@tessera/contracts';
import { GroupCommit, type Waiting } from '@tessera/kit';
import type { ChatFeed } from '../bus/feed';
import type { EventTail } from './tail';

/** An event to append: `key` makes the append idempotent (a re-run turn makes the same keys). */
export interface NewEvent {
  key: string;
  type: string;
  data: Record<string, unknown>;
  /**
   * The key was made for this event alone (an EventWriter's own sequence, under a turn id of its
   * attempt): nothing appends it again, so the timeline's tail does not look it up or remember it.
   */
  fresh?: boolean;
}

/** A stored event ready to send: the wire envelope is built once, from the stored JSON text. */
export interface StoredEvent extends TimelineEvent {
  /** `{"type","data","timestamp","index"}` as sent to clients. */
  wire: string;
}

/**
 * `created_at` as the wire's timestamp, formatted by the database (what Date#toISOString gives
 * for the stored millisecond), so that no Date is parsed and formatted again per event.
 */
export const TS = `to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS ts`;

/**
 * One chat's events. The data of all events is one JSON array parameter ($4), parsed once by the
 * database, rather than a text[] of JSON documents (each escaped again as an array element).
 *
 * The next index is one past the chat's highest stored index (one backward step of the primary
 * key): no row is updated per append. Two writers of one chat that read the same highest index
 * collide on the primary key; the loser waits for the winner's commit, fails with a unique
 * violation and is retried, and then reads past it. So an index is never given twice, and an
 * index becomes visible only after every smaller one is (the one that allocated it had read them).
 */
const APPEND_SQL = `
WITH incoming AS (
  SELECT k, t, ord FROM unnest($2::text[], $3::text[]) WITH ORDINALITY AS x(k, t, ord)
), fresh AS (
  SELECT i.* FROM incoming i
  WHERE NOT EXISTS (SELECT 1 FROM chat_events e WHERE e.chat_id = $1 AND e.key = i.k)
), top AS (
  SELECT coalesce((SELECT idx FROM chat_events WHERE chat_id = $1 ORDER BY idx DESC LIMIT 1), 0) AS idx
)
INSERT INTO chat_events (chat_id, idx, key, type, data, created_at)
SELECT $1, top.idx + row_number() OVER (ORDER BY f.ord), f.k, f.t, $4::jsonb -> (f.ord::int - 1), now()
FROM fresh f CROSS JOIN top
RETURNING idx, key, type, data::text AS data, ${TS}`;

/**
 * The events of several chats in one statement (group commit): the same rules per chat as
 * APPEND_SQL (keys already stored are skipped, indexes follow the given order from the chat's
 * highest stored index); a key given twice for a chat is stored once, at its first place.
 */
const APPEND_MANY_SQL = `
WITH incoming AS (
  SELECT c, k, t, ord FROM unnest($1::text[], $2::text[], $3::text[]) WITH ORDINALITY AS x(c, k, t, ord)
), firsts AS (
  SELECT DISTINCT ON (c, k) c, k, t, ord FROM incoming ORDER BY c, k, ord
), fresh AS (
  SELECT i.* FROM firsts i
  WHERE NOT EXISTS (SELECT 1 FROM chat_events e WHERE e.chat_id = i.c AND e.key = i.k)
), tops AS (
  SELECT c, coalesce((SELECT e.idx FROM chat_events e WHERE e.chat_id = c ORDER BY e.idx DESC LIMIT 1), 0) AS idx
  FROM (SELECT DISTINCT c FROM fresh) chats
)
INSERT INTO chat_events (chat_id, idx, key, type, data, created_at)
SELECT f.c, t.idx + row_number() OVER (PARTITION BY f.c ORDER BY f.ord), f.k, f.t, $4::jsonb -> (f.ord::int - 1), now()
FROM fresh f JOIN tops t ON t.c = f.c
RETURNING chat_id, idx, key, type, data::text AS data, ${TS}`;

/** The chat's highest index (0 before its first event). */
export const LAST_INDEX_SQL = (chatIdColumn: string) => `coalesce((SELECT e.idx FROM chat_events e WHERE e.chat_id = ${chatIdColumn} ORDER BY e.idx DESC LIMIT 1), 0)`;

const AFTER_SQL = `SELECT idx, type, data::text AS data, ${TS} FROM chat_events WHERE chat_id = $1 AND idx > $2 ORDER BY idx LIMIT $3`;
const AFTER_UPTO_SQL = `SELECT idx, type, data::text AS data, ${TS} FROM chat_events WHERE chat_id = $1 AND idx > $2 AND idx <= $4 ORDER BY idx LIMIT $3`;

export const UNIQUE_VIOLATION = '23505';
const DEADLOCK = '40P01';
/** Appends retried after losing a race for an index (each retry reads past the winner). */
const MAX_RETRIES = 8;
/** Events per group-commit statement, at most. */
const MAX_GROUP_EVENTS = 2000;

type Row = { idx: number; key: string; type: string; data: string; ts: string };

type Pending = Waiting<{ chatId: string; events: NewEvent[] }, StoredEvent[]>;

export function wireOf(type: string, dataJson: string, timestamp: string, index: number): string {
  return `{"type":${JSON.stringify(type)},"data":${dataJson},"timestamp":"${timestamp}","index":${index}}`;
}

/**
 * The chat's durable timeline in PostgreSQL. Indexes are allocated by the database in the same
 * statement that inserts (see APPEND_SQL), so any process may append and the order is one per
 * chat; keys already present are skipped, so a re-run appends nothing twice.
 *
 * Appends are group-committed across chats: at most a few statements are in flight per process,
 * and appends that arrive meanwhile are written together by the next one, so that a process
 * writing to many chats at once pays one statement (and one commit) per group instead of one per
 * chat; a lone append still goes out at once. The single-chat and read statements are prepared
 * once per connection.
 */
export class Timeline {
  private readonly commits: GroupCommit<{ chatId: string; events: NewEvent[] }, StoredEvent[]>;

  /**
   * With `tail` (EVENT_TAIL=on), appends go to the chat's tail in Redis (store/tail.ts) and reads
   * take the tail's events from there, anything older from PostgreSQL.
   */
  constructor(
    private readonly pool: Pool,
    readonly tail?: EventTail,
  ) {
    const max = (pool as { options?: { max?: number } }).options?.max ?? 10;
    this.commits = new GroupCommit({
      // Few statements in flight make big groups (one commit each, the cost that dominates); the rest of the pool stays free for reads (replays) and other writes.
      maxInFlight: Math.min(4, Math.max(1, Math.floor(max / 4))),
      maxSize: MAX_GROUP_EVENTS,
      sizeOf: (p) => p.events.length,
      write: (group) => this.write(group),
    });
  }

  /** Stores the events (keys already stored are skipped); `record` also publishes them. */
  append(chatId: string, events: NewEvent[]): Promise<StoredEvent[]> {
    if (events.length === 0) return Promise.resolve([]);
    if (this.tail) return this.tail.append(chatId, events);
    return this.commits.add({ chatId, events });
  }

  /**
   * Puts events on the chat's timeline, then publishes what was stored on its feed (events already
   * stored under their keys are neither stored nor published again). Stored first, so a client
   * that resumes from the log never misses an event a live socket saw; resolves once published.
   * The tail does both in one script. A turn's own events take this path in batches
   * (EventWriter), and its end in one statement (TurnEnd).
   */
  async record(chatId: string, events: NewEvent[], feed: Pick<ChatFeed, 'publish'>): Promise<StoredEvent[]> {
    const stored = await this.append(chatId, events);
    if (!this.tail) await feed.publish(chatId, stored);
    return stored;
  }

  /** Events with index > after, in order, at most `limit`. */
  async after(chatId: string, after: number, limit = 1000, upTo?: number): Promise<StoredEvent[]> {
    if (!this.tail) return this.stored(chatId, after, limit, upTo);
    // The tail first: whatever it no longer holds (trimmed once flushed) is in PostgreSQL.
    const { first, events } = await this.tail.range(chatId, after, limit, upTo);
    if (first === null || first <= after + 1) return first === null ? this.stored(chatId, after, limit, upTo) : events;
    const older = await this.stored(chatId, after, limit, Math.min(first - 1, upTo ?? Infinity));
    return older.length >= limit ? older : older.concat(events.slice(0, limit - older.length));
  }

  /** Events with index > after (≤ upTo) from PostgreSQL. */
  private async stored(chatId: string, after: number, limit: number, upTo?: number): Promise<StoredEvent[]> {
    const r = await this.pool.query<Row>(
      upTo === undefined
        ? { name: 'timeline-after', text: AFTER_SQL, values: [chatId, after, limit] }
        : { name: 'timeline-after-upto', text: AFTER_UPTO_SQL, values: [chatId, after, limit, upTo] },
    );
    const out = new Array<StoredEvent>(r.rows.length);
    for (let i = 0; i < r.rows.length; i++) out[i] = toStored(r.rows[i]);
    return out;
  }

  /**
   * Messages that runs of a turn (event keys starting with `keyPrefix`) began and never closed
   * (a worker died mid-message), with what they said so far. Read on a re-run only.
   */
  async openMessages(chatId: string, keyPrefix: string): Promise<{ messageId: string; agent: string; content: string }[]> {
    await this.tail?.flushChat(chatId);
    const r = await this.pool.query<{ message_id: string; agent: string; content: string }>({
      text: `SELECT data->>'message_id' AS message_id, min(data->>'agent') AS agent, string_agg(data->>'delta', '' ORDER BY idx) AS content
             FROM chat_events WHERE chat_id = $1 AND type = 'chat.text' AND left(key, length($2)) = $2
             GROUP BY data->>'message_id' HAVING NOT bool_or((data->>'done')::boolean) ORDER BY min(idx)`,
      values: [chatId, keyPrefix],
    });
    return r.rows.map((m) => ({ messageId: m.message_id, agent: m.agent, content: m.content }));
  }

  /** Whether the chat's timeline holds a `chat.run_complete` of the turn (read on rare paths only: no index serves it). */
  async hasRunComplete(chatId: string, turnId: string): Promise<boolean> {
    await this.tail?.flushChat(chatId);
    const r = await this.pool.query({
      text: `SELECT 1 FROM chat_events WHERE chat_id = $1 AND type = 'chat.run_complete' AND data->>'turn_id' = $2 LIMIT 1`,
      values: [chatId, turnId],
    });
    return (r.rowCount ?? 0) > 0;
  }

  /**
   * Where to read a turn from when it may have begun already: just before its opening event (keyed
   * `key`) if that is stored, else the log's end as of the same snapshot, which the opening, still
   * to come, will follow. With the tail, PostgreSQL's part of the log: what the tail holds past it
   * comes after.
   */
  async indexBefore(chatId: string, key: string): Promise<number> {
    const r = await this.pool.query<{ opened: string | null; last: string }>({
      name: 'timeline-index-before',
      text: `SELECT (SELECT idx FROM chat_events WHERE chat_id = $1 AND key = $2) AS opened, ${LAST_INDEX_SQL('$1')} AS last`,
      values: [chatId, key],
    });
    const { opened, last } = r.rows[0];
    return opened !== null ? Number(opened) - 1 : Number(last);
  }

  async lastIndex(chatId: string): Promise<number> {
    const top = await this.tail?.top(chatId);
    if (top != null) return top;
    const r = await this.pool.query<{ last_index: number }>({ name: 'timeline-last-index', text: `SELECT ${LAST_INDEX_SQL('$1')} AS last_index`, values: [chatId] });
    return r.rows[0]?.last_index ?? 0;
  }

  /* ---------------------------------------------------------------- group commit */

  private async write(group: Pending[]): Promise<void> {
    if (group.length === 1 || group.every((p) => p.chatId === group[0].chatId)) {
      // One chat: the single-chat statement, its events in the order they were queued.
      const chatId = group[0].chatId;
      const all = group.length === 1 ? group[0].events : group.flatMap((p) => p.events);
      try {
        const rows = await this.retrying(() => this.appendOne(chatId, all));
        settle(group, (p) => p.chatId, rows.map((r) => [chatId, r]));
      } catch (e) {
        if (group.length === 1) group[0].reject(e);
        else for (const p of group) await this.writeAlone(p);
      }
      return;
    }
    try {
      const rows = await this.retrying(() => this.appendMany(group));
      settle(group, (p) => p.chatId, rows.map((r) => [r.chat_id, r]));
    } catch {
      // Something in the group is refused (bad data, a deleted chat…): each append on its own,
      // so that only the one at fault fails.
      for (const p of group) await this.writeAlone(p);
    }
  }

  private async writeAlone(p: Pending): Promise<void> {
    try {
      const rows = await this.retrying(() => this.appendOne(p.chatId, p.events));
      p.resolve(rows.sort((a, b) => a.idx - b.idx).map(toStored));
    } catch (e) {
      p.reject(e);
    }
  }

  private async retrying<T>(fn: () => Promise<T>): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await fn();
      } catch (e) {
        const code = (e as { code?: string }).code;
        // Two writers of one chat took the same next index, or raced on the same key (a re-run
        // overlapping its predecessor): the retry reads past the winner's rows, or skips the key.
        // Two groups waiting on each other's rows: the retry gets them in turn.
        if ((code === UNIQUE_VIOLATION || code === DEADLOCK) && attempt < MAX_RETRIES) continue;
        throw e;
      }
    }
  }

  private async appendOne(chatId: string, events: NewEvent[]): Promise<Row[]> {
    const keys = new Array<string>(events.length);
    const types = new Array<string>(events.length);
    const data = new Array<Record<string, unknown>>(events.length);
    for (let i = 0; i < events.length; i++) {
      keys[i] = events[i].key;
      types[i] = events[i].type;
      data[i] = events[i].data;
    }
    const r = await this.pool.query<Row>({ name: 'timeline-append', text: APPEND_SQL, values: [chatId, keys, types, JSON.stringify(data)] });
    return r.rows;
  }

  private async appendMany(group: Pending[]): Promise<(Row & { chat_id: string })[]> {
    // Chats in a stable order, so that concurrent groups insert into the same chats in one order.
    const ordered = group.map((p, i) => ({ p, i })).sort((a, b) => (a.p.chatId < b.p.chatId ? -1 : a.p.chatId > b.p.chatId ? 1 : a.i - b.i));
    const chats: string[] = [];
    const keys: string[] = [];
    const types: string[] = [];
    const data: Record<string, unknown>[] = [];
    for (const { p } of ordered) {
      for (const e of p.events) {
        chats.push(p.chatId);
        keys.push(e.key);
        types.push(e.type);
        data.push(e.data);
      }
    }
    // Not a prepared statement: planned each time with the actual chats, every lookup goes by
    // primary key (a generic plan was measured to fall back to sequential scans).
    const r = await this.pool.query<Row & { chat_id: string }>({ text: APPEND_MANY_SQL, values: [chats, keys, types, JSON.stringify(data)] });
    return r.rows;
  }
}

/**
 * Give each pending append its stored events, in index order: rows are matched by chat and key
 * (a key skipped as already stored gives nothing back, as before).
 */
function settle(group: Pending[], chatOf: (p: Pending) => string, rows: [string, Row][]): void {
  if (group.length === 1) {
    const out = rows.map(([, r]) => r).sort((a, b) => a.idx - b.idx);
    group[0].resolve(out.map(toStored));
    return;
  }
  const per: Row[][] = group.map(() => []);
  // Most often every append of the group is to a chat of its own: rows go by chat alone.
  const byChat = new Map<string, number>();
  group.forEach((p, i) => byChat.set(chatOf(p), i));
  if (byChat.size === group.length) {
    for (const [chat, r] of rows) {
      const i = byChat.get(chat);
      if (i !== undefined) per[i].push(r);
    }
  } else {
    const owner = new Map<string, number>();
    group.forEach((p, i) => {
      for (const e of p.events) {
        const k = `${chatOf(p)}\u0000${e.key}`;
        if (!owner.has(k)) owner.set(k, i);
      }
    });
    for (const [chat, r] of rows) {
      const i = owner.get(`${chat}\u0000${r.key}`);
      if (i !== undefined) per[i].push(r);
    }
  }
  group.forEach((p, i) => p.resolve(per[i].sort((a, b) => a.idx - b.idx).map(toStored)));
}

export function toStored(r: { idx: number; type: string; data: string; ts: string }): StoredEvent {
  const timestamp = r.ts;
  return {
    index: r.idx,
    type: r.type,
    get data() {
      return JSON.parse(r.data) as Record<string, unknown>;
    },
    timestamp,
    wire: wireOf(r.type, r.data, timestamp, r.idx),
  };
}

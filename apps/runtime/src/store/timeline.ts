import type { Pool } from 'pg';
import type { TimelineEvent } from '@tessera/contracts';

/** An event to append: `key` makes the append idempotent (a re-run turn makes the same keys). */
export interface NewEvent {
  key: string;
  type: string;
  data: Record<string, unknown>;
}

/** A stored event ready to send: the wire envelope is built once, from the stored JSON text. */
export interface StoredEvent extends TimelineEvent {
  /** `{"type","data","timestamp","index"}` as sent to clients. */
  wire: string;
}

const APPEND_SQL = `
WITH incoming AS (
  SELECT k, t, d, ord FROM unnest($2::text[], $3::text[], $4::text[]) WITH ORDINALITY AS x(k, t, d, ord)
), fresh AS (
  SELECT i.* FROM incoming i
  WHERE NOT EXISTS (SELECT 1 FROM chat_events e WHERE e.chat_id = $1 AND e.key = i.k)
), bumped AS (
  UPDATE chats SET last_index = last_index + (SELECT count(*) FROM fresh), updated_at = now()
  WHERE id = $1 RETURNING last_index
)
INSERT INTO chat_events (chat_id, idx, key, type, data, created_at)
SELECT $1, b.last_index - (SELECT count(*) FROM fresh) + row_number() OVER (ORDER BY f.ord), f.k, f.t, f.d::jsonb, now()
FROM fresh f CROSS JOIN bumped b
RETURNING idx, type, data::text AS data, created_at`;

const UNIQUE_VIOLATION = '23505';

export function wireOf(type: string, dataJson: string, timestamp: string, index: number): string {
  return `{"type":${JSON.stringify(type)},"data":${dataJson},"timestamp":"${timestamp}","index":${index}}`;
}

/**
 * The chat's durable timeline in PostgreSQL. Indexes are allocated by the database in the same
 * statement that inserts, under the chat row's lock, so any process may append and the order is
 * one per chat; keys already present are skipped, so a re-run appends nothing twice.
 */
export class Timeline {
  constructor(private readonly pool: Pool) {}

  async append(chatId: string, events: NewEvent[]): Promise<StoredEvent[]> {
    if (events.length === 0) return [];
    const params = [chatId, events.map((e) => e.key), events.map((e) => e.type), events.map((e) => JSON.stringify(e.data))];
    for (let attempt = 0; ; attempt++) {
      try {
        const r = await this.pool.query<{ idx: number; type: string; data: string; created_at: Date }>(APPEND_SQL, params);
        return r.rows.sort((a, b) => a.idx - b.idx).map(toStored);
      } catch (e) {
        // Two writers raced on the same key (a re-run overlapping its predecessor): the retry skips it.
        if ((e as { code?: string }).code === UNIQUE_VIOLATION && attempt < 3) continue;
        throw e;
      }
    }
  }

  /** Events with index > after, in order, at most `limit`. */
  async after(chatId: string, after: number, limit = 1000, upTo?: number): Promise<StoredEvent[]> {
    const r = await this.pool.query<{ idx: number; type: string; data: string; created_at: Date }>(
      upTo === undefined
        ? 'SELECT idx, type, data::text AS data, created_at FROM chat_events WHERE chat_id = $1 AND idx > $2 ORDER BY idx LIMIT $3'
        : 'SELECT idx, type, data::text AS data, created_at FROM chat_events WHERE chat_id = $1 AND idx > $2 AND idx <= $4 ORDER BY idx LIMIT $3',
      upTo === undefined ? [chatId, after, limit] : [chatId, after, limit, upTo],
    );
    return r.rows.map(toStored);
  }

  async lastIndex(chatId: string): Promise<number> {
    const r = await this.pool.query<{ last_index: number }>('SELECT last_index FROM chats WHERE id = $1', [chatId]);
    return r.rows[0]?.last_index ?? 0;
  }

  /** Keys of this turn already stored (a re-run after a worker died). */
  async keysWithPrefix(chatId: string, prefix: string): Promise<Set<string>> {
    const r = await this.pool.query<{ key: string }>("SELECT key FROM chat_events WHERE chat_id = $1 AND key LIKE $2 || '%'", [chatId, prefix]);
    return new Set(r.rows.map((x) => x.key));
  }
}

function toStored(r: { idx: number; type: string; data: string; created_at: Date }): StoredEvent {
  const timestamp = r.created_at.toISOString();
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

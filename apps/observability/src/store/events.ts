import type { Pool } from 'pg';
import type { observability } from '@tessera/contracts';
import { startOrder } from '../domain/start-order';
import type { SessionKey } from './sessions';

type StoredEvent = observability.StoredEvent;

/** An `events` row as pg returns it. */
export interface EventRow {
  session_id: string;
  seq: number;
  event_id: string | null;
  event_type: string;
  timestamp: Date;
  received_at: Date;
  agent_name: string | null;
  tool_name: string | null;
  tool_input: unknown;
  tool_output: unknown;
  error: string | null;
  exit_code: number | null;
  reason: string | null;
  role: string | null;
  content: Record<string, unknown>[] | null;
  attributes: Record<string, unknown>;
  model: string | null;
}

export function toStoredEvent(r: EventRow): StoredEvent {
  return {
    seq: r.seq,
    session_id: r.session_id,
    event_type: r.event_type,
    event_id: r.event_id,
    timestamp: r.timestamp.toISOString(),
    received_at: r.received_at.toISOString(),
    agent_name: r.agent_name,
    model: r.model,
    tool_name: r.tool_name,
    ...(r.tool_input !== null && r.tool_input !== undefined && { tool_input: r.tool_input }),
    ...(r.tool_output !== null && r.tool_output !== undefined && { tool_output: r.tool_output }),
    error: r.error,
    exit_code: r.exit_code,
    reason: r.reason,
    role: r.role,
    content: r.content,
    attributes: r.attributes,
  };
}

const AFTER_SQL = 'SELECT * FROM events WHERE app_id = $4 AND session_id = $1 AND seq > $2 ORDER BY seq LIMIT $3';
const AFTER_TYPE_SQL = 'SELECT * FROM events WHERE app_id = $4 AND session_id = $1 AND seq > $2 AND event_type = $5 ORDER BY seq LIMIT $3';
/** What orders a session's events by start (domain/start-order.ts): light columns of every event. */
const START_KEYS_SQL = `SELECT seq, timestamp, event_type, attributes ->> 'start_time_unix_nano' AS nanos, attributes ->> 'span_id' AS span_id, attributes ->> 'parent_span_id' AS parent
  FROM events WHERE app_id = $1 AND session_id = $2`;
const BY_SEQS_SQL = 'SELECT * FROM events WHERE app_id = $1 AND session_id = $2 AND seq = ANY($3::int[])';

/** A session's stored events in seq or start order; callers check the session is in the reader's scope first. */
export class EventStore {
  constructor(private readonly pool: Pool) {}

  /** `key`: the session's app ('' for none) and id; `after` and `limit` fit int4 (the contracts bound them). */
  async after(key: SessionKey, after: number, limit: number, eventType?: string, order: 'seq' | 'start' = 'seq'): Promise<StoredEvent[]> {
    if (order === 'start') return this.afterByStart(key, after, limit, eventType);
    const r = await this.pool.query<EventRow>(
      eventType === undefined
        ? { name: 'events-after', text: AFTER_SQL, values: [key.id, after, limit, key.app] }
        : { name: 'events-after-type', text: AFTER_TYPE_SQL, values: [key.id, after, limit, key.app, eventType] },
    );
    return r.rows.map(toStoredEvent);
  }

  /**
   * In the order the events started, after the event of seq `after` in that order (0: from the
   * first). The order needs every event's place in its trace, so each read sorts the session's
   * light columns (no index of its own: ingest, the hot path, keeps one index per event).
   */
  private async afterByStart(key: SessionKey, after: number, limit: number, eventType?: string): Promise<StoredEvent[]> {
    const keys = await this.pool.query<{ seq: number; timestamp: Date; event_type: string; nanos: string | null; span_id: string | null; parent: string | null }>({
      name: 'events-start-keys',
      text: START_KEYS_SQL,
      values: [key.app, key.id],
    });
    const typeOf = new Map(keys.rows.map((r) => [r.seq, r.event_type]));
    let ordered = startOrder(keys.rows.map((r) => ({ seq: r.seq, at: r.timestamp.getTime(), nanos: r.nanos, spanId: r.span_id, parentSpanId: r.parent })));
    if (eventType !== undefined) ordered = ordered.filter((seq) => typeOf.get(seq) === eventType);
    const from = after === 0 ? 0 : ordered.indexOf(after) + 1;
    if (after !== 0 && from === 0) return [];
    const page = ordered.slice(from, from + limit);
    if (page.length === 0) return [];
    const rows = await this.pool.query<EventRow>({ name: 'events-by-seqs', text: BY_SEQS_SQL, values: [key.app, key.id, page] });
    const place = new Map(page.map((seq, i) => [seq, i]));
    return rows.rows.sort((a, b) => place.get(a.seq)! - place.get(b.seq)!).map(toStoredEvent);
  }
}

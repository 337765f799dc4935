import type { Pool } from 'pg';
import type { observability } from '@tessera/contracts';
import type { SessionKey } from './sessions';

type StoredEvent = observability.StoredEvent;

interface EventRow {
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

/** A session's stored events in seq order; callers check the session is in the reader's scope first. */
export class EventStore {
  constructor(private readonly pool: Pool) {}

  /** `key`: the session's app ('' for none) and id; `after` and `limit` fit int4 (the contracts bound them). */
  async after(key: SessionKey, after: number, limit: number, eventType?: string): Promise<StoredEvent[]> {
    const r = await this.pool.query<EventRow>(
      eventType === undefined
        ? { name: 'events-after', text: AFTER_SQL, values: [key.id, after, limit, key.app] }
        : { name: 'events-after-type', text: AFTER_TYPE_SQL, values: [key.id, after, limit, key.app, eventType] },
    );
    return r.rows.map(toStoredEvent);
  }
}

import type { observability } from '@tessera/contracts';
import type { NormalizedEvent } from '../domain/event';

/*
 * The Ingestor's statements and how a batch becomes their parameters: one array per column
 * (unnest), so a batch of any size is one statement, prepared once per connection.
 */

/** Session rows of a batch, created when new; attribution is filled in where still empty. */
export const UPSERT_SQL = `
INSERT INTO sessions AS s (id, source, app_id, user_id, workflow, agent_name, project_dir, session_name)
SELECT x.id, x.source, x.app_id, x.user_id, x.workflow, x.agent_name, x.project_dir, COALESCE(x.session_name, '')
FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[])
  AS x(id, source, app_id, user_id, workflow, agent_name, project_dir, session_name)
WHERE NOT EXISTS (SELECT 1 FROM tombstones t WHERE t.session_id = x.id)
ORDER BY x.id
ON CONFLICT (id) DO UPDATE SET
  user_id = COALESCE(s.user_id, EXCLUDED.user_id),
  workflow = COALESCE(s.workflow, EXCLUDED.workflow),
  agent_name = COALESCE(s.agent_name, EXCLUDED.agent_name),
  project_dir = COALESCE(s.project_dir, EXCLUDED.project_dir),
  session_name = CASE WHEN s.session_name = '' THEN EXCLUDED.session_name ELSE s.session_name END
RETURNING s.id, s.app_id, s.status, s.last_seq, s.source_index`;

/**
 * Read after the upsert, so under the session rows' locks: a deletion that committed meanwhile
 * shows its tombstone, and the event ids already stored are exactly those (every writer of a
 * session's events holds its row lock until it commits).
 */
export const KNOWN_SQL = `
SELECT session_id, NULL::text AS event_id FROM tombstones WHERE session_id = ANY($1::text[])
UNION ALL
SELECT e.session_id, e.event_id FROM events e
JOIN unnest($2::text[], $3::text[]) AS k(s, id) ON e.session_id = k.s AND e.event_id = k.id`;

/**
 * The fresh events and the sessions' new rollups in one statement: the rows, their seqs and
 * the sessions' last_seq move together. Each event's JSON fields travel in one JSON array
 * ($12), parsed once by the database.
 */
export const INSERT_SQL = `
WITH ins AS (
  INSERT INTO events (session_id, seq, event_id, event_type, timestamp, received_at, agent_name, tool_name, tool_input, tool_output, error, exit_code, reason, role, content, attributes)
  SELECT x.s, x.seq, x.eid, x.t, x.ts, $13, x.agent, x.tool, d.v -> 'i', d.v -> 'o', x.err, x.code, x.reason, x.role, d.v -> 'c', COALESCE(d.v -> 'a', '{}'::jsonb)
  FROM unnest($1::text[], $2::int[], $3::text[], $4::text[], $5::timestamptz[], $6::text[], $7::text[], $8::text[], $9::int[], $10::text[], $11::text[])
    WITH ORDINALITY AS x(s, seq, eid, t, ts, agent, tool, err, code, reason, role, ord)
  CROSS JOIN LATERAL (SELECT $12::jsonb -> (x.ord::int - 1) AS v) d
  ON CONFLICT (session_id, event_id) DO NOTHING
  RETURNING 1
), upd AS (
  UPDATE sessions s SET
    last_seq = u.last_seq, event_count = s.event_count + u.n,
    input_tokens = s.input_tokens + u.inp, output_tokens = s.output_tokens + u.outp, error_count = s.error_count + u.errs,
    first_event_at = LEAST(s.first_event_at, u.first_at), last_event_at = GREATEST(s.last_event_at, u.last_at),
    last_event_type = u.last_type, status = u.status, modified_at = $13, source_index = GREATEST(s.source_index, u.max_index)
  FROM unnest($14::text[], $15::int[], $16::int[], $17::int8[], $18::int8[], $19::int[], $20::timestamptz[], $21::timestamptz[], $22::text[], $23::text[], $24::int[])
    AS u(id, last_seq, n, inp, outp, errs, first_at, last_at, last_type, status, max_index)
  WHERE s.id = u.id
  RETURNING s.*
)
SELECT upd.*, (SELECT count(*) FROM ins)::int AS inserted FROM upd`;

export interface Fresh {
  at: number;
  seq: number;
  e: NormalizedEvent;
}

export interface Rollup {
  id: string;
  lastSeq: number;
  n: number;
  input: number;
  output: number;
  errors: number;
  firstAt: Date;
  lastAt: Date;
  lastType: string;
  status: observability.SessionStatus;
  maxIndex: number;
}

export function insertValues(fresh: Fresh[], rollups: Rollup[], receivedAt: Date): unknown[] {
  const n = fresh.length;
  const cols = Array.from({ length: 11 }, () => new Array<unknown>(n));
  const json = new Array<Record<string, unknown>>(n);
  for (let i = 0; i < n; i++) {
    const { seq, e } = fresh[i];
    cols[0][i] = e.sessionId;
    cols[1][i] = seq;
    cols[2][i] = e.eventId;
    cols[3][i] = e.eventType;
    cols[4][i] = e.timestamp;
    cols[5][i] = e.agentName;
    cols[6][i] = e.toolName;
    cols[7][i] = e.error;
    cols[8][i] = e.exitCode;
    cols[9][i] = e.reason;
    cols[10][i] = e.role;
    const d: Record<string, unknown> = { a: e.attributes };
    if (e.toolInput !== undefined && e.toolInput !== null) d.i = e.toolInput;
    if (e.toolOutput !== undefined && e.toolOutput !== null) d.o = e.toolOutput;
    if (e.content !== null) d.c = e.content;
    json[i] = d;
  }
  return [
    ...cols,
    JSON.stringify(json),
    receivedAt,
    rollups.map((r) => r.id),
    rollups.map((r) => r.lastSeq),
    rollups.map((r) => r.n),
    rollups.map((r) => r.input),
    rollups.map((r) => r.output),
    rollups.map((r) => r.errors),
    rollups.map((r) => r.firstAt),
    rollups.map((r) => r.lastAt),
    rollups.map((r) => r.lastType),
    rollups.map((r) => r.status),
    rollups.map((r) => r.maxIndex),
  ];
}

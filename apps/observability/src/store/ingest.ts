import type { PoolClient } from 'pg';
import type { observability } from '@tessera/contracts';
import type { NormalizedEvent } from '../domain/event';
import type { SessionRow } from './sessions';

/*
 * The Ingestor's writes and how a batch becomes their parameters: one array per column (unnest),
 * so a batch of any size is one statement, prepared once per connection. Each runs on the batch's
 * client, inside the transaction the Ingestor opens (ingest/ingestor.ts), which decides what a
 * batch stores; these only say how.
 */

/**
 * The key of a session in SQL: its app ('' for none) and id. A tombstone of app '*' (a deletion
 * from before sessions were keyed by app) holds its id in every app.
 */
export const NO_APP = '';
export const appKey = (appId: string | null): string => appId ?? NO_APP;

/** Session rows of a batch, created when new (in (app, id) order: the lock order); attribution is filled in where still empty. */
const UPSERT_SQL = `
INSERT INTO sessions AS s (app_id, id, source, user_id, workflow, agent_name, project_dir, session_name)
SELECT x.app_id, x.id, x.source, x.user_id, x.workflow, x.agent_name, x.project_dir, COALESCE(x.session_name, '')
FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[])
  AS x(app_id, id, source, user_id, workflow, agent_name, project_dir, session_name)
WHERE NOT EXISTS (SELECT 1 FROM tombstones t WHERE t.session_id = x.id AND t.app_id IN (x.app_id, '*'))
ORDER BY x.app_id, x.id
ON CONFLICT (app_id, id) DO UPDATE SET
  user_id = COALESCE(s.user_id, EXCLUDED.user_id),
  workflow = COALESCE(s.workflow, EXCLUDED.workflow),
  agent_name = COALESCE(s.agent_name, EXCLUDED.agent_name),
  project_dir = COALESCE(s.project_dir, EXCLUDED.project_dir),
  session_name = CASE WHEN s.session_name = '' THEN EXCLUDED.session_name ELSE s.session_name END
RETURNING s.app_id, s.id, s.status, s.last_seq, s.source_index, s.user_id, s.workflow, s.agent_name`;

/**
 * Read after the upsert, so under the session rows' locks: a deletion that committed meanwhile
 * shows its tombstone, and the event ids already stored are exactly those (every writer of a
 * session's events holds its row lock until it commits).
 */
const KNOWN_SQL = `
SELECT k.a AS app_id, k.s AS session_id, NULL::text AS event_id FROM unnest($1::text[], $2::text[]) AS k(a, s)
WHERE EXISTS (SELECT 1 FROM tombstones t WHERE t.session_id = k.s AND t.app_id IN (k.a, '*'))
UNION ALL
SELECT e.app_id, e.session_id, e.event_id FROM events e
JOIN unnest($3::text[], $4::text[], $5::text[]) AS k(a, s, id) ON e.app_id = k.a AND e.session_id = k.s AND e.event_id = k.id`;

/**
 * The fresh events and the sessions' new rollups in one statement: the rows, their seqs and
 * the sessions' last_seq move together. Each event's JSON fields travel in one JSON array
 * ($13), parsed once by the database. The title is set once (the first user message stored);
 * the cost stays NULL (unknown) until a priced call adds to it.
 */
const INSERT_SQL = `
WITH ins AS (
  INSERT INTO events (app_id, session_id, seq, event_id, event_type, timestamp, received_at, agent_name, tool_name, tool_input, tool_output, error, exit_code, reason, role, content, attributes, model)
  SELECT x.a, x.s, x.seq, x.eid, x.t, x.ts, $14, x.agent, x.tool, d.v -> 'i', d.v -> 'o', x.err, x.code, x.reason, x.role, d.v -> 'c', COALESCE(d.v -> 'a', '{}'::jsonb), d.v ->> 'm'
  FROM unnest($1::text[], $2::text[], $3::int[], $4::text[], $5::text[], $6::timestamptz[], $7::text[], $8::text[], $9::text[], $10::int[], $11::text[], $12::text[])
    WITH ORDINALITY AS x(a, s, seq, eid, t, ts, agent, tool, err, code, reason, role, ord)
  CROSS JOIN LATERAL (SELECT $13::jsonb -> (x.ord::int - 1) AS v) d
  ON CONFLICT (app_id, session_id, event_id) DO NOTHING
  RETURNING 1
), upd AS (
  UPDATE sessions s SET
    last_seq = u.last_seq, event_count = s.event_count + u.n,
    input_tokens = s.input_tokens + u.inp, output_tokens = s.output_tokens + u.outp, error_count = s.error_count + u.errs,
    first_event_at = LEAST(s.first_event_at, u.first_at), last_event_at = GREATEST(s.last_event_at, u.last_at),
    last_event_type = u.last_type, status = u.status, modified_at = $14, source_index = GREATEST(s.source_index, u.max_index),
    title = COALESCE(s.title, u.title), model = COALESCE(u.model, s.model),
    cost_usd = CASE WHEN u.priced > 0 THEN COALESCE(s.cost_usd, 0) + u.cost ELSE s.cost_usd END, unpriced_calls = s.unpriced_calls + u.unpriced
  FROM unnest($15::text[], $16::text[], $17::int[], $18::int[], $19::int8[], $20::int8[], $21::int[], $22::timestamptz[], $23::timestamptz[], $24::text[], $25::text[], $26::int[],
      $27::text[], $28::text[], $29::numeric[], $30::int[], $31::int[])
    AS u(app_id, id, last_seq, n, inp, outp, errs, first_at, last_at, last_type, status, max_index, title, model, cost, priced, unpriced)
  WHERE s.app_id = u.app_id AND s.id = u.id
  RETURNING s.*
)
SELECT upd.*, (SELECT count(*) FROM ins)::int AS inserted FROM upd`;

export interface Fresh {
  at: number;
  seq: number;
  e: NormalizedEvent;
}

export interface Rollup {
  /** The session's app key ('' for none). */
  app: string;
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
  /** The first user message of the batch, as a title (kept only by a session without one). */
  title: string | null;
  /** The model of the batch's last model call. */
  model: string | null;
  /** USD of the batch's priced calls, how many there were, and how many had no known price. */
  cost: number;
  priced: number;
  unpriced: number;
}

function insertValues(fresh: Fresh[], rollups: Rollup[], receivedAt: Date): unknown[] {
  const n = fresh.length;
  const cols = Array.from({ length: 12 }, () => new Array<unknown>(n));
  const json = new Array<Record<string, unknown>>(n);
  for (let i = 0; i < n; i++) {
    const { seq, e } = fresh[i];
    cols[0][i] = appKey(e.appId);
    cols[1][i] = e.sessionId;
    cols[2][i] = seq;
    cols[3][i] = e.eventId;
    cols[4][i] = e.eventType;
    cols[5][i] = e.timestamp;
    cols[6][i] = e.agentName;
    cols[7][i] = e.toolName;
    cols[8][i] = e.error;
    cols[9][i] = e.exitCode;
    cols[10][i] = e.reason;
    cols[11][i] = e.role;
    const d: Record<string, unknown> = { a: e.attributes };
    if (e.toolInput !== undefined && e.toolInput !== null) d.i = e.toolInput;
    if (e.toolOutput !== undefined && e.toolOutput !== null) d.o = e.toolOutput;
    if (e.content !== null) d.c = e.content;
    if (e.model) d.m = e.model;
    json[i] = d;
  }
  return [
    ...cols,
    JSON.stringify(json),
    receivedAt,
    rollups.map((r) => r.app),
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
    rollups.map((r) => r.title),
    rollups.map((r) => r.model),
    rollups.map((r) => r.cost.toFixed(12)),
    rollups.map((r) => r.priced),
    rollups.map((r) => r.unpriced),
  ];
}

/** A session row as the upsert returns it: what the batch's rules need. */
export interface UpsertedSession {
  app_id: string;
  id: string;
  status: observability.SessionStatus;
  last_seq: number;
  source_index: number;
  /** The session's attribution, for the usage of events that do not name it. */
  user_id: string | null;
  workflow: string | null;
  agent_name: string | null;
}

/** `cols`: app keys, ids, sources, user ids, workflows, agent names, project folders, session names, one session per index. */
export async function upsertSessions(client: PoolClient, cols: (string | null)[][]): Promise<UpsertedSession[]> {
  return (await client.query<UpsertedSession>({ name: 'obs-upsert', text: UPSERT_SQL, values: cols })).rows;
}

/**
 * Of these sessions (`apps[i]`, `ids[i]`), the tombstoned ones (`event_id` null); of these events
 * (`eventApps[i]`, `eventSessions[i]`, `eventIds[i]`), those already stored.
 */
export async function knownOf(
  client: PoolClient,
  apps: (string | null)[],
  ids: (string | null)[],
  eventApps: string[],
  eventSessions: string[],
  eventIds: string[],
): Promise<{ app_id: string; session_id: string; event_id: string | null }[]> {
  return (await client.query<{ app_id: string; session_id: string; event_id: string | null }>({ name: 'obs-known', text: KNOWN_SQL, values: [apps, ids, eventApps, eventSessions, eventIds] })).rows;
}

/** Inserts the fresh events and applies the rollups; the sessions as they now are, and how many events were inserted. */
export async function insertEvents(client: PoolClient, fresh: Fresh[], rollups: Rollup[], receivedAt: Date): Promise<{ sessions: SessionRow[]; inserted: number }> {
  const r = await client.query<SessionRow & { inserted: number }>({ name: 'obs-insert', text: INSERT_SQL, values: insertValues(fresh, rollups, receivedAt) });
  return { sessions: r.rows, inserted: r.rows[0]?.inserted ?? 0 };
}

/** Deletes the sessions of these keys (under the batch's locks): rows a deletion committed meanwhile. */
export function deleteSessions(client: PoolClient, rows: { app_id: string; id: string }[]): Promise<void> {
  return deleteKeys(client, rows, '');
}

/** Deletes those of these sessions that hold no event yet (under the batch's locks). */
export function deleteEmptySessions(client: PoolClient, rows: { app_id: string; id: string }[]): Promise<void> {
  return deleteKeys(client, rows, 'AND s.last_seq = 0');
}

/** `and`: a further condition on `s`. */
async function deleteKeys(client: PoolClient, rows: { app_id: string; id: string }[], and: string): Promise<void> {
  await client.query(
    `DELETE FROM sessions s USING unnest($1::text[], $2::text[]) AS k(a, id) WHERE s.app_id = k.a AND s.id = k.id ${and}`,
    [rows.map((r) => r.app_id), rows.map((r) => r.id)],
  );
}

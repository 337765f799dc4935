import type { Pool } from 'pg';
import { BadRequest } from '@tessera/kit';
import { observability } from '@tessera/contracts';
import type { z } from 'zod';
import type { AppScope } from '../domain/access';
import { displayTitle } from '../domain/session-title';

type Session = observability.Session;
type SessionStatus = observability.SessionStatus;
export type SessionsQuery = z.infer<typeof observability.SessionsQuery>;

/** A `sessions` row as pg returns it (int8 token counts come back as strings). */
export interface SessionRow {
  id: string;
  session_name: string;
  status: SessionStatus;
  source: observability.SessionSource;
  /** '' for a session of no app. */
  app_id: string;
  user_id: string | null;
  workflow: string | null;
  agent_name: string | null;
  project_dir: string | null;
  last_seq: number;
  event_count: number;
  input_tokens: string | number;
  output_tokens: string | number;
  error_count: number;
  first_event_at: Date | null;
  last_event_at: Date | null;
  last_event_type: string | null;
  /** The first user message, as a title. */
  title: string | null;
  model: string | null;
  /** numeric comes back as a string; null while no call was priced. */
  cost_usd: string | null;
  unpriced_calls: number;
  created_at: Date;
  modified_at: Date;
}

export function toSession(r: SessionRow): Session {
  const input = Number(r.input_tokens);
  const output = Number(r.output_tokens);
  return {
    session_id: r.id,
    session_name: r.session_name,
    title: displayTitle(r.session_name, r.title, r.source),
    status: r.status,
    created_at: r.created_at.toISOString(),
    modified_at: r.modified_at.toISOString(),
    project_dir: r.project_dir,
    agent_name: r.agent_name,
    app_id: r.app_id === '' ? null : r.app_id,
    user_id: r.user_id,
    workflow: r.workflow,
    source: r.source,
    event_count: r.event_count,
    usage: { input_tokens: input, output_tokens: output, total_tokens: input + output },
    model: r.model,
    cost_usd: r.cost_usd === null ? null : Number(r.cost_usd),
    unpriced_calls: r.unpriced_calls,
    error_count: r.error_count,
    duration_ms: r.first_event_at && r.last_event_at ? r.last_event_at.getTime() - r.first_event_at.getTime() : 0,
    last_event_type: r.last_event_type,
    last_event_at: r.last_event_at?.toISOString() ?? null,
  };
}

/** The SQL condition that keeps a query inside an app scope; sessions without an app ('') only for '*'. */
function scopeClause(scope: AppScope, params: unknown[], column = 'app_id'): string {
  if (scope === '*') return 'TRUE';
  params.push(scope.filter((a) => a !== ''));
  return `${column} = ANY($${params.length}::text[])`;
}

/** A session's key: its app ('' for none) and id. */
export interface SessionKey {
  app: string;
  id: string;
}
export const keyOfRow = (r: SessionRow): SessionKey => ({ app: r.app_id, id: r.id });

/** Opaque keyset cursor: the last session's modified_at, app and id (observability.SessionsCursor). */
function encodeCursor(s: SessionRow): string {
  return Buffer.from(JSON.stringify([s.modified_at.getTime(), s.app_id, s.id])).toString('base64url');
}

function decodeCursor(c: string): { at: Date; app: string | null; id: string } {
  let v: unknown;
  try {
    v = JSON.parse(Buffer.from(c, 'base64url').toString('utf8'));
  } catch {
    v = undefined;
  }
  const p = observability.SessionsCursor.safeParse(v);
  if (p.success) return { at: new Date(p.data[0]), app: p.data[1], id: p.data[2] };
  throw new BadRequest('invalid query: cursor: not a cursor from a previous page', { issues: [{ path: 'query.cursor', message: 'not a cursor from a previous page' }] });
}

/**
 * The statement GET /sessions runs for a page (exported: a test EXPLAINs it): the scope and the
 * filters, newest modified_at first, one more row than the page to know whether another follows.
 */
export function listQuery(scope: AppScope, q: SessionsQuery): { text: string; values: unknown[] } {
  const params: unknown[] = [];
  const where = [scopeClause(scope, params)];
  const eq = (column: string, v: string | undefined) => {
    if (v === undefined) return;
    params.push(v);
    where.push(`${column} = $${params.length}`);
  };
  eq('status', q.status);
  eq('agent_name', q.agent_name);
  eq('app_id', q.app_id);
  eq('user_id', q.user_id);
  eq('source', q.source);
  if (q.q !== undefined) {
    // Each column on its own (a match never spans two): the trigram index sessions_search_idx
    // serves every arm (a BitmapOr), where a scan would read every row of the scope.
    params.push(`%${q.q.replace(/[\\%_]/g, (m) => `\\${m}`)}%`);
    const p = `$${params.length}`;
    where.push(`(session_name ILIKE ${p} OR title ILIKE ${p} OR user_id ILIKE ${p} OR id ILIKE ${p})`);
  }
  if (q.from !== undefined) {
    params.push(new Date(q.from));
    where.push(`modified_at >= $${params.length}`);
  }
  if (q.to !== undefined) {
    params.push(new Date(q.to));
    where.push(`modified_at < $${params.length}`);
  }
  if (q.cursor !== undefined) {
    const c = decodeCursor(q.cursor);
    params.push(c.at, c.id);
    if (c.app === null) where.push(`(modified_at, id) < ($${params.length - 1}, $${params.length})`);
    else {
      params.push(c.app);
      where.push(`(modified_at, id, app_id) < ($${params.length - 2}, $${params.length - 1}, $${params.length})`);
    }
  }
  params.push(q.limit + 1);
  return { text: `SELECT * FROM sessions WHERE ${where.join(' AND ')} ORDER BY modified_at DESC, id DESC, app_id DESC LIMIT $${params.length}`, values: params };
}

export type StatusChange = { session: SessionRow } | { missing: true } | { conflict: SessionStatus };

/** Where an id leads in a scope: its one session, none, or sessions of several apps (the caller must name one). */
export type Located = { row: SessionRow } | { missing: true } | { apps: (string | null)[] };

/**
 * Sessions and their rollups. Every read and write takes the caller's app scope: a session of
 * another app is as absent as one that never existed. The Ingestor writes rows through
 * store/ingest.ts and the sweeps through store/sweeps.ts; this is what operators read and change.
 */
export class SessionStore {
  constructor(private readonly pool: Pool) {}

  /** A page of sessions; `lastSeqs[i]`: the last seq stored of `sessions[i]` (not part of the reply shape). */
  async list(scope: AppScope, q: SessionsQuery): Promise<{ sessions: Session[]; next_cursor: string | null; lastSeqs: number[] }> {
    const r = await this.pool.query<SessionRow>(listQuery(scope, q));
    const rows = r.rows.slice(0, q.limit);
    return { sessions: rows.map(toSession), next_cursor: r.rows.length > q.limit ? encodeCursor(rows[rows.length - 1]) : null, lastSeqs: rows.map((x) => x.last_seq) };
  }

  /**
   * The session an id names for a caller: within the caller's apps, and in `app` when given
   * ('' for none). Another app's session is as missing as one that never existed; an id that is a
   * session of several of the caller's apps needs `app`.
   */
  async locate(scope: AppScope, id: string, app?: string): Promise<Located> {
    const params: unknown[] = [id];
    let where = `id = $1 AND ${scopeClause(scope, params)}`;
    if (app !== undefined) {
      params.push(app);
      where += ` AND app_id = $${params.length}`;
    }
    const r = await this.pool.query<SessionRow>(`SELECT * FROM sessions WHERE ${where} ORDER BY app_id LIMIT 20`, params);
    if (r.rows.length === 0) return { missing: true };
    if (r.rows.length === 1) return { row: r.rows[0] };
    return { apps: r.rows.map((x) => toSession(x).app_id) };
  }

  /** The session of this key, if it is in scope. */
  async getRow(scope: AppScope, key: SessionKey): Promise<SessionRow | null> {
    const params: unknown[] = [key.app, key.id];
    const r = await this.pool.query<SessionRow>(`SELECT * FROM sessions WHERE app_id = $1 AND id = $2 AND ${scopeClause(scope, params)}`, params);
    return r.rows[0] ?? null;
  }

  /** Name, project folder, agent as an operator corrects them; null when not in scope. */
  async patchMetadata(scope: AppScope, key: SessionKey, patch: { session_name?: string; project_dir?: string | null; agent_name?: string | null }): Promise<SessionRow | null> {
    const params: unknown[] = [key.id, patch.session_name ?? null, patch.project_dir !== undefined, patch.project_dir ?? null, patch.agent_name !== undefined, patch.agent_name ?? null, key.app];
    const r = await this.pool.query<SessionRow>(
      `UPDATE sessions SET session_name = COALESCE($2, session_name),
         project_dir = CASE WHEN $3 THEN $4 ELSE project_dir END,
         agent_name = CASE WHEN $5 THEN $6 ELSE agent_name END,
         modified_at = now()
       WHERE id = $1 AND app_id = $7 AND ${scopeClause(scope, params)} RETURNING *`,
      params,
    );
    return r.rows[0] ?? null;
  }

  /**
   * Deletes the session with its events and leaves a tombstone, in one transaction under the
   * session row's lock (which every ingest of the session takes too): late events are dropped,
   * a retried batch never brings the session back. Null when not in scope.
   */
  async delete(scope: AppScope, key: SessionKey): Promise<{ events: number } | null> {
    const client = await this.pool.connect();
    try {
      await client.query('BEGIN');
      const params: unknown[] = [key.app, key.id];
      const found = await client.query(`SELECT 1 FROM sessions WHERE app_id = $1 AND id = $2 AND ${scopeClause(scope, params)} FOR UPDATE`, params);
      if (found.rows.length === 0) {
        await client.query('ROLLBACK');
        return null;
      }
      const k = [key.app, key.id];
      await client.query('INSERT INTO tombstones (app_id, session_id) VALUES ($1, $2) ON CONFLICT (app_id, session_id) DO UPDATE SET deleted_at = now()', k);
      const events = await client.query('DELETE FROM events WHERE app_id = $1 AND session_id = $2', k);
      await client.query('DELETE FROM sessions WHERE app_id = $1 AND id = $2', k);
      await client.query('COMMIT');
      return { events: events.rowCount ?? 0 };
    } catch (e) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw e;
    } finally {
      client.release();
    }
  }

  /** Moves the session to `to` if its status is one of `from` (one conditional statement, so two stops cannot both succeed). */
  async setStatus(scope: AppScope, key: SessionKey, to: SessionStatus, from: SessionStatus[]): Promise<StatusChange> {
    const params: unknown[] = [key.id, to, from, key.app];
    const r = await this.pool.query<SessionRow>(
      `UPDATE sessions SET status = $2, modified_at = now() WHERE id = $1 AND app_id = $4 AND status = ANY($3::text[]) AND ${scopeClause(scope, params)} RETURNING *`,
      params,
    );
    if (r.rows[0]) return { session: r.rows[0] };
    const now = await this.getRow(scope, key);
    return now ? { conflict: now.status } : { missing: true };
  }
}

import type { Pool } from 'pg';
import type { SessionRow } from './sessions';

/*
 * The sweeps' writes (ingest/idle-sessions.ts, ingest/retention.ts): over every app, with no
 * caller's scope, run by one instance at a time; the sweeps decide when and how much.
 */

/**
 * Outside sessions (hooks, OpenTelemetry) running with no event received for `idleMs` become
 * `finished`; the rows as they now are. Arrival (`modified_at`, set by every ingest) counts, not the
 * events' own timestamps: a backfill of old events, or an agent whose clock is behind, is news now.
 */
export async function finishIdleSessions(pool: Pool, idleMs: number): Promise<SessionRow[]> {
  const r = await pool.query<SessionRow>(
    `UPDATE sessions SET status = 'finished', modified_at = now()
        WHERE status = 'running' AND source IN ('external', 'otel')
          AND modified_at < now() - make_interval(secs => $1 / 1000.0)
        RETURNING *`,
    [idleMs],
  );
  return r.rows;
}

/**
 * Deletes up to `limit` sessions untouched since `cutoff` with their events, in one statement;
 * rows another transaction holds are skipped (ingest keeps running). How many were deleted.
 */
export async function deleteSessionsUntouchedSince(pool: Pool, cutoff: Date, limit: number): Promise<number> {
  const r = await pool.query<{ n: number }>(
    `WITH old AS (
           SELECT app_id, id FROM sessions WHERE modified_at < $1 ORDER BY modified_at LIMIT $2 FOR UPDATE SKIP LOCKED
         ), ev AS (
           DELETE FROM events e USING old WHERE e.app_id = old.app_id AND e.session_id = old.id
         ), gone AS (
           DELETE FROM sessions s USING old WHERE s.app_id = old.app_id AND s.id = old.id RETURNING 1
         )
         SELECT count(*)::int AS n FROM gone`,
    [cutoff, limit],
  );
  return r.rows[0].n;
}

/** Forgets deletions older than `cutoff`: an event for such a session starts it anew. */
export async function deleteTombstonesBefore(pool: Pool, cutoff: Date): Promise<void> {
  await pool.query('DELETE FROM tombstones WHERE deleted_at < $1', [cutoff]);
}

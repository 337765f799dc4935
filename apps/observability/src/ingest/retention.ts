import type { ObservabilityServices } from '../services';
import { LockedSweep } from './sweep';

/**
 * Deletes sessions untouched for RETENTION_DAYS with their events, and tombstones as old, every
 * RETENTION_INTERVAL_MS. One instance at a time (a Redis lock), in batches of RETENTION_BATCH
 * sessions per transaction, so no lock is held long and ingest keeps running meanwhile.
 * Expired sessions get no tombstone: they are old, and an event that still arrives starts anew.
 */
export class Retention extends LockedSweep {
  constructor(s: ObservabilityServices) {
    super(s, 'retention', s.config.RETENTION_INTERVAL_MS);
  }

  protected get enabled(): boolean {
    return this.s.config.RETENTION_DAYS > 0;
  }

  protected async pass(): Promise<number> {
    const { config, db, logger } = this.s;
    let deleted = 0;
    const cutoff = new Date(Date.now() - config.RETENTION_DAYS * 86_400_000);
    for (;;) {
      const r = await db.pool.query<{ n: number }>(
        `WITH old AS (
           SELECT app_id, id FROM sessions WHERE modified_at < $1 ORDER BY modified_at LIMIT $2 FOR UPDATE SKIP LOCKED
         ), ev AS (
           DELETE FROM events e USING old WHERE e.app_id = old.app_id AND e.session_id = old.id
         ), gone AS (
           DELETE FROM sessions s USING old WHERE s.app_id = old.app_id AND s.id = old.id RETURNING 1
         )
         SELECT count(*)::int AS n FROM gone`,
        [cutoff, config.RETENTION_BATCH],
      );
      deleted += r.rows[0].n;
      if (r.rows[0].n < config.RETENTION_BATCH) break;
    }
    await db.pool.query('DELETE FROM tombstones WHERE deleted_at < $1', [cutoff]);
    if (deleted > 0) logger.info('retention deleted old sessions', { sessions: deleted, older_than_days: config.RETENTION_DAYS });
    return deleted;
  }
}

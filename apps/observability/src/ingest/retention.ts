import { LockedSweep } from '@tessera/kit';
import type { ObservabilityServices } from '../services';
import { deleteSessionsUntouchedSince, deleteTombstonesBefore } from '../store/sweeps';

/**
 * Deletes sessions untouched for RETENTION_DAYS with their events, and tombstones and OpenTelemetry trace index entries as old, every
 * RETENTION_INTERVAL_MS. One instance at a time (a Redis lock), in batches of RETENTION_BATCH
 * sessions per transaction, so no lock is held long and ingest keeps running meanwhile.
 * Expired sessions get no tombstone: they are old, and an event that still arrives starts anew.
 */
export class Retention extends LockedSweep<number> {
  constructor(protected readonly s: ObservabilityServices) {
    super(s.redis, s.logger, { name: 'retention', lockKey: `${s.config.BULL_PREFIX}:observability:retention`, intervalMs: s.config.RETENTION_INTERVAL_MS, idle: 0, atStart: true });
  }

  protected get enabled(): boolean {
    return this.s.config.RETENTION_DAYS > 0;
  }

  protected async pass(): Promise<number> {
    const { config, db, logger } = this.s;
    let deleted = 0;
    const cutoff = new Date(Date.now() - config.RETENTION_DAYS * 86_400_000);
    for (;;) {
      const n = await deleteSessionsUntouchedSince(db.pool, cutoff, config.RETENTION_BATCH);
      deleted += n;
      if (n < config.RETENTION_BATCH) break;
    }
    await deleteTombstonesBefore(db.pool, cutoff);
    await this.s.traces.deleteBefore(cutoff);
    if (deleted > 0) logger.info('retention deleted old sessions', { sessions: deleted, older_than_days: config.RETENTION_DAYS });
    return deleted;
  }
}

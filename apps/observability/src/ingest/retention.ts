import { randomUUID } from 'node:crypto';
import type { ObservabilityServices } from '../services';

const RELEASE_SQL = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end`;

/**
 * Deletes sessions untouched for RETENTION_DAYS with their events, and tombstones as old, every
 * RETENTION_INTERVAL_MS. One instance at a time (a Redis lock), in batches of RETENTION_BATCH
 * sessions per transaction, so no lock is held long and ingest keeps running meanwhile.
 * Expired sessions get no tombstone: they are old, and an event that still arrives starts anew.
 */
export class Retention {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<number> | null = null;
  private readonly lockKey: string;

  constructor(private readonly s: ObservabilityServices) {
    this.lockKey = `${s.config.BULL_PREFIX}:observability:retention`;
  }

  start(): this {
    if (this.s.config.RETENTION_DAYS === 0) return this;
    const tick = () => {
      this.running ??= this.runOnce()
        .catch((e: Error) => (this.s.logger.warn('retention failed', { error: e.message }), 0))
        .finally(() => (this.running = null));
    };
    this.timer = setInterval(tick, this.s.config.RETENTION_INTERVAL_MS);
    this.timer.unref();
    setImmediate(tick);
    return this;
  }

  /** One pass; the sessions deleted (0 when another instance holds the lock). */
  async runOnce(): Promise<number> {
    const { config, redis, db, logger } = this.s;
    if (config.RETENTION_DAYS === 0) return 0;
    const token = randomUUID();
    const lockMs = Math.max(60_000, config.RETENTION_INTERVAL_MS);
    if ((await redis.set(this.lockKey, token, 'PX', lockMs, 'NX')) !== 'OK') return 0;
    let deleted = 0;
    try {
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
    } finally {
      await redis.eval(RELEASE_SQL, 1, this.lockKey, token).catch(() => undefined);
    }
  }

  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.running;
  }
}

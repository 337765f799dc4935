import type { Logger } from './logger';
import { RedisLeases } from './lease';
import type { RedisClient } from './redis';

/**
 * A periodic job that one instance at a time runs (the kit's Redis lease on `lockKey`), every
 * `intervalMs`, and once at start when `atStart`; a pass that fails is logged and the next one tries
 * again. `idle` is what `runOnce` answers when the job is disabled or another instance holds the
 * lock. Observability's retention and idle-session close, and the runtime's input sweep, are such.
 */
export abstract class LockedSweep<R> {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<unknown> | null = null;
  private readonly leases: RedisLeases;

  protected constructor(
    redis: RedisClient,
    private readonly logger: Logger,
    private readonly sweep: { name: string; lockKey: string; intervalMs: number; idle: R; atStart: boolean },
  ) {
    this.leases = new RedisLeases(redis, { ttlMs: Math.max(60_000, sweep.intervalMs) });
  }

  /** Whether the job is configured to run at all. */
  protected abstract get enabled(): boolean;
  /** One pass under the lock (`now`: the time it runs at) and what it did. */
  protected abstract pass(now: number): Promise<R>;

  start(): this {
    if (!this.enabled || this.sweep.intervalMs <= 0) return this;
    const tick = () => {
      this.running ??= this.runOnce()
        .catch((e: Error) => this.logger.warn(`${this.sweep.name} failed`, { error: e.message }))
        .finally(() => (this.running = null));
    };
    this.timer = setInterval(tick, this.sweep.intervalMs);
    this.timer.unref();
    if (this.sweep.atStart) setImmediate(tick);
    return this;
  }

  /** One pass (`idle` when disabled or when another instance holds the lock). */
  async runOnce(now = Date.now()): Promise<R> {
    if (!this.enabled) return this.sweep.idle;
    const lease = await this.leases.acquire(this.sweep.lockKey);
    if (!lease) return this.sweep.idle;
    try {
      return await this.pass(now);
    } finally {
      await lease.release();
    }
  }

  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.running;
  }
}

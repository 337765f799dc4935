import { RedisLeases } from '@tessera/kit';
import type { ObservabilityServices } from '../services';

/**
 * A periodic job that one instance at a time runs (the kit's Redis lease, named after it), every
 * `intervalMs` and once at start; a pass that fails is logged and the next one tries again.
 * Retention and the idle-session close are two.
 */
export abstract class LockedSweep {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<number> | null = null;
  private readonly lockKey: string;
  private readonly leases: RedisLeases;

  protected constructor(
    protected readonly s: ObservabilityServices,
    private readonly name: string,
    private readonly intervalMs: number,
  ) {
    this.lockKey = `${s.config.BULL_PREFIX}:observability:${name}`;
    this.leases = new RedisLeases(s.redis, { ttlMs: Math.max(60_000, intervalMs) });
  }

  /** Whether the job is configured to run at all. */
  protected abstract get enabled(): boolean;
  /** One pass under the lock; what it did (a count). */
  protected abstract pass(): Promise<number>;

  start(): this {
    if (!this.enabled) return this;
    const tick = () => {
      this.running ??= this.runOnce()
        .catch((e: Error) => (this.s.logger.warn(`${this.name} failed`, { error: e.message }), 0))
        .finally(() => (this.running = null));
    };
    this.timer = setInterval(tick, this.intervalMs);
    this.timer.unref();
    setImmediate(tick);
    return this;
  }

  /** One pass (0 when disabled or when another instance holds the lock). */
  async runOnce(): Promise<number> {
    if (!this.enabled) return 0;
    const lease = await this.leases.acquire(this.lockKey);
    if (!lease) return 0;
    try {
      return await this.pass();
    } finally {
      await lease.release();
    }
  }

  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.running;
  }
}

import { RedisLeases, type Logger, type RedisClient, type TypedQueue } from '@tessera/kit';
import type { Queue } from '@tessera/contracts';
import type { InputStore } from '../store/inputs';

/** Open inputs looked at in one pass, oldest first. */
const PER_PASS = 500;

/**
 * Inputs are durable in PostgreSQL; their BullMQ jobs live in Redis, which can lose its last
 * writes: a primary that dies before its replica copied them (Redis Cluster, Sentinel), or a
 * restart under `appendfsync everysec`. An input acknowledged that way waits for a job that will
 * never come. Every INPUT_SWEEP_MS one worker (a Redis lease) reads the inputs not done and older
 * than INPUT_REQUEUE_AFTER_MS, and queues again (same job id) those whose job Redis no longer
 * knows. A job that exists, waiting, delayed or running, is left alone; a turn that runs the
 * input twice cannot happen: a turn takes its input under the chat's lease.
 */
export class InputSweep {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<unknown> | null = null;
  private readonly leases: RedisLeases;

  constructor(
    private readonly d: { inputs: InputStore; turnQueue: TypedQueue<typeof Queue.RuntimeTurns>; redis: RedisClient; logger: Logger; prefix: string },
    private readonly opts: { intervalMs: number; requeueAfterMs: number },
  ) {
    this.leases = new RedisLeases(d.redis, { ttlMs: Math.max(30_000, opts.intervalMs) });
  }

  start(): this {
    if (this.opts.intervalMs <= 0) return this;
    this.timer = setInterval(() => {
      this.running ??= this.runOnce()
        .catch((e: Error) => this.d.logger.warn('input sweep failed', { error: e.message }))
        .finally(() => (this.running = null));
    }, this.opts.intervalMs);
    this.timer.unref();
    return this;
  }

  /** One pass, if no other worker is making one: the inputs queued again. */
  async runOnce(now = Date.now()): Promise<string[]> {
    const lease = await this.leases.acquire(`${this.d.prefix}:runtime:input-sweep`);
    if (!lease) return [];
    try {
      const requeued: string[] = [];
      for (const input of await this.d.inputs.openBefore(new Date(now - this.opts.requeueAfterMs), PER_PASS)) {
        if ((await this.d.turnQueue.queue.getJobState(input.id)) !== 'unknown') continue;
        await this.d.turnQueue.add({ chat_id: input.chatId, app_id: input.appId, input_id: input.id }, { jobId: input.id });
        requeued.push(input.id);
      }
      if (requeued.length) this.d.logger.warn('inputs with no job queued again (Redis lost their jobs)', { inputs: requeued.length });
      return requeued;
    } finally {
      await lease.release();
    }
  }

  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.running;
  }
}

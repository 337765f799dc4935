import { LockedSweep, type Logger, type RedisClient, type TypedQueue } from '@tessera/kit';
import type { Queue } from '@tessera/contracts';
import type { InputStore } from '../store/inputs';

/** Open inputs looked at in one pass, oldest first. */
const PER_PASS = 500;
/** Older than this, an open input is left as it is (its chat has long moved on, or it is a poison input). */
const MAX_AGE_MS = 24 * 3600_000;
/**
 * An input taken this many times (BullMQ's attempts of its job) failed each time for a reason of
 * its own: it is not queued again, or it would fail again for ever.
 */
const MAX_ATTEMPTS = 5;

/**
 * Inputs are durable in PostgreSQL; their BullMQ jobs live in Redis, which can lose its last
 * writes: a primary that dies before its replica copied them (Redis Cluster, Sentinel), or a
 * restart under `appendfsync everysec`. An input acknowledged that way waits for a job that will
 * never come. Every INPUT_SWEEP_MS each worker tries for a Redis lease, and the one that gets it
 * reads the inputs not done, older than INPUT_REQUEUE_AFTER_MS and younger than a day, and queues
 * again (same job id) those whose job Redis no longer knows, or whose job completed without
 * taking them. A job that is waiting, delayed or running is left alone, and one that failed all
 * its attempts too. A turn never runs an input twice: it takes its input under the chat's lease.
 */
export class InputSweep extends LockedSweep<string[]> {
  constructor(
    private readonly d: { inputs: InputStore; turnQueue: TypedQueue<typeof Queue.RuntimeTurns>; redis: RedisClient; logger: Logger; prefix: string },
    private readonly opts: { intervalMs: number; requeueAfterMs: number },
  ) {
    // Not at start: a worker's start reads nothing more than it did.
    super(d.redis, d.logger, { name: 'input sweep', lockKey: `${d.prefix}:runtime:input-sweep`, intervalMs: opts.intervalMs, idle: [], atStart: false });
  }

  protected get enabled(): boolean {
    return true;
  }

  /** The inputs queued again. */
  protected async pass(now: number): Promise<string[]> {
    const requeued: string[] = [];
    for (const input of await this.d.inputs.openBetween(new Date(now - MAX_AGE_MS), new Date(now - this.opts.requeueAfterMs), MAX_ATTEMPTS, PER_PASS)) {
      const state = await this.d.turnQueue.queue.getJobState(input.id);
      // A job that is waiting, delayed or running will take the input; a failed one used its
      // attempts. A completed one left the input to a job that then did not take it either.
      if (state !== 'unknown' && state !== 'completed') continue;
      if (state === 'completed') await this.d.turnQueue.queue.remove(input.id);
      await this.d.turnQueue.add({ chat_id: input.chatId, app_id: input.appId, input_id: input.id }, { jobId: input.id });
      requeued.push(input.id);
    }
    if (requeued.length) this.d.logger.warn('inputs with no job queued again (Redis lost their jobs)', { inputs: requeued.length });
    return requeued;
  }
}

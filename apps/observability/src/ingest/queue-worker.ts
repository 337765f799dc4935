import { DelayedError } from 'bullmq';
import { Queue } from '@tessera/contracts';
import { bullConnection, createTypedWorker } from '@tessera/kit';
import { normalizeRuntime } from '../domain/runtime-events';
import type { ObservabilityServices } from '../services';
import { OutOfOrder } from './ingestor';

/** How long a job waits before it is tried again when an earlier job of its chat is still on its way… */
const ORDER_RETRY_MS = 100;
/** …and how long in all, before it is stored out of order. */
const ORDER_WAIT_MS = 5_000;

/**
 * The consumer of the runtime's `observability-events` queue: each job (a batch of a chat's
 * events) is stored by the Ingestor in one transaction. Any number of these run on any number
 * of instances; a worker killed mid-batch leaves its job to BullMQ's stalled-job check, and the
 * retry stores only what the first attempt did not commit (events are keyed `rt:<index>`).
 *
 * Jobs of one chat taken by two workers at once would store its events out of the timeline's
 * order; a job that starts past the chat's next index is put back for ORDER_RETRY_MS, up to
 * ORDER_WAIT_MS in all, after which it is stored anyway (its predecessor was dropped by
 * the runtime's queue cap, or the chat's first events were never observed).
 */
export async function startIngestWorker(s: ObservabilityServices) {
  const maxWaits = Math.ceil(ORDER_WAIT_MS / ORDER_RETRY_MS);
  const worker = createTypedWorker(
    Queue.ObservabilityEvents,
    bullConnection(s.config.REDIS_URL),
    s.logger,
    async (data, job, token) => {
      const events = data.events.map(normalizeRuntime);
      try {
        const results = await s.ingestor.accept(events, { inOrder: job.attemptsStarted <= maxWaits });
        let accepted = 0;
        for (const r of results) if (r.status === 'accepted') accepted++;
        return { accepted };
      } catch (e) {
        if (!(e instanceof OutOfOrder) || !token) throw e;
        s.metrics.events.inc({ kind: 'observability_out_of_order' });
        await job.moveToDelayed(Date.now() + ORDER_RETRY_MS, token);
        throw new DelayedError();
      }
    },
    { prefix: s.config.BULL_PREFIX, concurrency: s.config.INGEST_CONCURRENCY, stalledInterval: 5_000, lockDuration: 10_000 },
  );
  await worker.waitUntilReady();
  return {
    worker,
    /** Finishes the jobs in hand (their transactions commit), takes no more. */
    close: () => worker.close(),
  };
}

import { DelayedError } from 'bullmq';
import { Queue } from '@tessera/contracts';
import { backoff, bullConnection, createTypedWorker } from '@tessera/kit';
import { normalizeRuntime } from '../domain/runtime-events';
import type { ObservabilityServices } from '../services';
import { ingestGroups } from './group-commit';

/**
 * A job that starts past its chat's next index is put back for a while (100 ms, doubling to 1 s)
 * and in all for up to ORDER_WAIT_MS: longer than BullMQ takes to hand on the job of a worker
 * that died holding the predecessor (its lock expires after LOCK_MS, found within STALLED_MS).
 */
const LOCK_MS = 10_000;
const STALLED_MS = 5_000;
const ORDER_WAIT_MS = 30_000;
const putBack = backoff({ baseMs: 100, maxMs: 1_000 });
/** The delay after the job's `n`th attempt (BullMQ counts from 1). */
const orderDelay = (n: number) => putBack(n - 1);
const MAX_ORDER_WAITS = (() => {
  let n = 0;
  for (let waited = 0; waited < ORDER_WAIT_MS; waited += orderDelay(++n));
  return n;
})();

/**
 * The consumer of the runtime's `observability-events` queue: each job (a batch of a chat's
 * events) is stored by the Ingestor in one transaction. Any number of these run on any number
 * of instances; a worker killed mid-batch leaves its job to BullMQ's stalled-job check, and the
 * retry stores only what the first attempt did not commit (events are keyed `rt:<index>`).
 *
 * Jobs of one chat taken by two workers at once would store its events out of the timeline's
 * order, so a job that starts past the chat's next index waits for its predecessor; after
 * ORDER_WAIT_MS it is stored anyway (the predecessor was dropped by the runtime's queue cap, or
 * the chat's first events were never observed).
 */
export async function startIngestWorker(s: ObservabilityServices) {
  const groups = ingestGroups(s.ingestor);
  const worker = createTypedWorker(
    Queue.ObservabilityEvents,
    bullConnection(s.config.REDIS_URL),
    s.logger,
    async (data, job, token) => {
      // An outage of the database does not use up the job's attempts (createTypedWorker puts it back).
      const results = await groups.add({ events: data.events.map(normalizeRuntime), inOrder: job.attemptsStarted <= MAX_ORDER_WAITS });
      let accepted = 0;
      let early = false;
      for (const r of results) {
        if (r.status === 'accepted') accepted++;
        else if (r.status === 'early') early = true;
      }
      if (!early || !token) return { accepted };
      // Stored what could be; the rest waits for its predecessor (what was stored is a duplicate then).
      s.metrics.events.inc({ kind: 'observability_out_of_order' });
      await job.moveToDelayed(Date.now() + orderDelay(job.attemptsStarted), token);
      throw new DelayedError();
    },
    { prefix: s.config.BULL_PREFIX, concurrency: s.config.INGEST_CONCURRENCY, stalledInterval: STALLED_MS, lockDuration: LOCK_MS },
  );
  await worker.waitUntilReady();
  return {
    worker,
    /** Finishes the jobs in hand (their transactions commit), takes no more. */
    close: () => worker.close(),
  };
}

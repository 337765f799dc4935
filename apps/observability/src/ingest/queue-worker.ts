import { Queue } from '@tessera/contracts';
import { bullConnection, createTypedWorker } from '@tessera/kit';
import { normalizeRuntime } from '../domain/runtime-events';
import type { ObservabilityServices } from '../services';

/**
 * The consumer of the runtime's `observability-events` queue: each job (a batch of a chat's
 * events) is stored by the Ingestor in one transaction. Any number of these run on any number
 * of instances; a worker killed mid-batch leaves its job to BullMQ's stalled-job check, and the
 * retry stores only what the first attempt did not commit (events are keyed `rt:<index>`).
 */
export async function startIngestWorker(s: ObservabilityServices) {
  const worker = createTypedWorker(
    Queue.ObservabilityEvents,
    bullConnection(s.config.REDIS_URL),
    s.logger,
    async (data) => {
      const results = await s.ingestor.accept(data.events.map(normalizeRuntime));
      let accepted = 0;
      for (const r of results) if (r.status === 'accepted') accepted++;
      return { accepted };
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

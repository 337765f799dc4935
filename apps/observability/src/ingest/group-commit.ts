import { GroupCommit } from '@tessera/kit';
import type { NormalizedEvent } from '../domain/event';
import type { IngestResult, Ingestor } from './ingestor';

/** Events per transaction, at most. */
const MAX_GROUP_EVENTS = 5_000;
/** Transactions in flight per process: one being written while the next one gathers. */
const MAX_IN_FLIGHT = 2;

type Job = { events: NormalizedEvent[]; inOrder: boolean };

/**
 * Queue jobs on their way to the Ingestor, written together (the kit's GroupCommit): while a
 * transaction is in flight, the jobs that arrive wait and then go as one, in the order they came.
 * A process that holds several jobs of one chat (consecutive jobs of a busy chat) thus writes them
 * in order in one transaction instead of racing them, and small jobs cost one commit per group,
 * not one each. A group shares one inOrder setting: the first job's, and the jobs after it with the
 * same.
 */
export function ingestGroups(ingestor: Ingestor): GroupCommit<Job, IngestResult[]> {
  return new GroupCommit<Job, IngestResult[]>({
    maxInFlight: MAX_IN_FLIGHT,
    maxSize: MAX_GROUP_EVENTS,
    sizeOf: (job) => job.events.length,
    joins: (first, next) => next.inOrder === first.inOrder,
    async write(group) {
      const results = await ingestor.accept(group.length === 1 ? group[0].events : group.flatMap((p) => p.events), { inOrder: group[0].inOrder });
      let at = 0;
      for (const p of group) {
        p.resolve(results.slice(at, at + p.events.length));
        at += p.events.length;
      }
    },
  });
}

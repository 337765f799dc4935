import type { NormalizedEvent } from '../domain/event';
import type { IngestResult, Ingestor } from './ingestor';

interface Pending {
  events: NormalizedEvent[];
  inOrder: boolean;
  resolve: (r: IngestResult[]) => void;
  reject: (e: unknown) => void;
}

/** Events per transaction, at most. */
const MAX_GROUP_EVENTS = 5_000;
/** Transactions in flight per process: one being written while the next one gathers. */
const MAX_IN_FLIGHT = 2;

/**
 * Queue jobs on their way to the Ingestor, written together: while a transaction is in flight,
 * the jobs that arrive wait and then go as one, in the order they came. A process that holds
 * several jobs of one chat (consecutive jobs of a busy chat) thus writes them in order in one
 * transaction instead of racing them, and small jobs cost one commit per group, not one each.
 */
export class GroupCommit {
  private readonly queue: Pending[] = [];
  private inFlight = 0;

  constructor(private readonly ingestor: Ingestor) {}

  accept(events: NormalizedEvent[], opts: { inOrder: boolean }): Promise<IngestResult[]> {
    return new Promise((resolve, reject) => {
      this.queue.push({ events, inOrder: opts.inOrder, resolve, reject });
      this.pump();
    });
  }

  private pump(): void {
    while (this.inFlight < MAX_IN_FLIGHT && this.queue.length > 0) {
      // A group shares one inOrder setting: the first job's, and the jobs after it with the same.
      const group: Pending[] = [];
      let n = 0;
      const inOrder = this.queue[0].inOrder;
      while (this.queue.length > 0 && this.queue[0].inOrder === inOrder && (group.length === 0 || n + this.queue[0].events.length <= MAX_GROUP_EVENTS)) {
        const p = this.queue.shift()!;
        group.push(p);
        n += p.events.length;
      }
      this.inFlight++;
      void this.write(group, inOrder).finally(() => {
        this.inFlight--;
        this.pump();
      });
    }
  }

  private async write(group: Pending[], inOrder: boolean): Promise<void> {
    try {
      const results = await this.ingestor.accept(group.length === 1 ? group[0].events : group.flatMap((p) => p.events), { inOrder });
      let at = 0;
      for (const p of group) {
        p.resolve(results.slice(at, at + p.events.length));
        at += p.events.length;
      }
    } catch (e) {
      for (const p of group) p.reject(e);
    }
  }
}

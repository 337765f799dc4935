/** An item waiting in a group commit, with what settles it. */
export type Waiting<I, R> = I & { resolve(result: R): void; reject(error: unknown): void };

export interface GroupCommitOptions<I, R> {
  /** Writes in flight at once (one being written while the next one gathers). */
  maxInFlight: number;
  /** A group's size at most, counted by `sizeOf`; an item larger than it still goes, alone. */
  maxSize: number;
  sizeOf(item: I): number;
  /** Whether `next` may join the group `first` opened (default: every item may). */
  joins?(first: I, next: I): boolean;
  /**
   * Writes a group, in the order its items came, and settles each of them; an item it leaves
   * unsettled when it throws is rejected with what it threw.
   */
  write(group: Waiting<I, R>[]): Promise<void>;
}

/**
 * Group commit: while `maxInFlight` writes are in flight, the items that arrive wait, and the
 * next write takes them all (up to `maxSize`), in the order they came: a process with many small
 * writes pays one statement and one commit per group instead of one per item, and a lone item
 * still goes out at once. The runtime's timeline appends and observability's ingest jobs are
 * written this way.
 */
export class GroupCommit<I extends object, R> {
  private readonly queue: Waiting<I, R>[] = [];
  private inFlight = 0;

  constructor(private readonly opts: GroupCommitOptions<I, R>) {}

  add(item: I): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      this.queue.push({ ...item, resolve, reject });
      this.pump();
    });
  }

  private pump(): void {
    const { maxInFlight, maxSize, sizeOf, joins } = this.opts;
    while (this.inFlight < maxInFlight && this.queue.length > 0) {
      const first = this.queue[0];
      const group: Waiting<I, R>[] = [];
      let size = 0;
      while (this.queue.length > 0 && (group.length === 0 || ((!joins || joins(first, this.queue[0])) && size + sizeOf(this.queue[0]) <= maxSize))) {
        const w = this.queue.shift()!;
        group.push(w);
        size += sizeOf(w);
      }
      this.inFlight++;
      this.opts
        .write(group)
        .catch((e: unknown) => {
          for (const w of group) w.reject(e);
        })
        .finally(() => {
          this.inFlight--;
          this.pump();
        });
    }
  }
}

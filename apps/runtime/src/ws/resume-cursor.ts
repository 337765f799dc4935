/**
 * Where one socket stands in its chat's timeline, and what it must do with each event or resume
 * request. Pure: no I/O, so every seam (live vs. replay, duplicates, gaps, a client ahead of the
 * server) is decided here and unit-tested.
 *
 * `cursor` is the highest index the client has (sent by us, or applied before it resumed);
 * `[sentLow, cursor]` is the range this socket itself sent, which a resume must not send twice.
 */
export class ResumeCursor {
  private sentLow = Number.POSITIVE_INFINITY;

  constructor(public cursor: number) {}

  /** A live event: at or below the cursor it is a duplicate; past cursor + 1 the events between were missed. */
  admit(index: number): 'skip' | 'send' | 'gap' {
    if (index <= this.cursor) return 'skip';
    return index === this.cursor + 1 ? 'send' : 'gap';
  }

  /** An event left on the socket. */
  sent(index: number): void {
    if (index < this.sentLow) this.sentLow = index;
    if (index > this.cursor) this.cursor = index;
  }

  /**
   * `client.resume {lastClientIndex}` against a log of `total` events. A client that claims more
   * than was ever stored has a timeline of another history: everything is sent again (diverged).
   * Otherwise what follows its index is sent, except what this socket already sent it.
   * `lastClientIndex` -1 (or 0) means the client has applied nothing.
   */
  planResume(lastClientIndex: number, total: number): ResumePlan {
    if (lastClientIndex > total) return { diverged: true, after: 0, upTo: total };
    const skip = this.sentLow <= this.cursor ? { lo: this.sentLow, hi: this.cursor } : undefined;
    if (!skip) this.cursor = Math.max(0, lastClientIndex);
    return { diverged: false, after: Math.max(0, lastClientIndex), upTo: total, skip };
  }
}

export interface ResumePlan {
  diverged: boolean;
  /** Send stored events after this index… */
  after: number;
  /** …up to this one (what was stored when the resume was read); later ones arrive live. */
  upTo: number;
  /** Indexes this socket already sent: not sent again. */
  skip?: { lo: number; hi: number };
}

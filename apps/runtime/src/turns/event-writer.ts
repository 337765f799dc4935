import type { TimelineDataOf, TimelineType } from '@tessera/contracts';
import type { ChatFeed } from '../bus/feed';
import type { NewEvent, StoredEvent, Timeline } from '../store/timeline';

const MAX_BUFFERED = 512;

/**
 * Appends a turn's events to the chat's timeline and publishes them, in order. Events emitted
 * while a write is in flight are written together by the next one (group commit), so a fast
 * model costs one statement per batch while a slow one still gets each token out at once.
 * Every event is stored before it is published: what a client sees is always in the log.
 *
 * A write starts on the event loop's next check phase (setImmediate) rather than on the first
 * emit, so that what a turn emits in one go (its input's event and a fast reply's tokens, or
 * the usage summary and run_complete) goes in one write instead of two; a slow model's token
 * still leaves at once, one loop iteration later.
 *
 * Text deltas are coalesced while they wait: a `chat.text` that continues the message of the
 * event queued just before it is merged into that event (deltas joined; the later `done` and
 * `content` win). A fast model's reply becomes one or two events instead of one per token, a
 * slow model's tokens still leave one by one, and since the merge happens before anything is
 * stored, resume replays exactly the events live clients saw.
 */
export class EventWriter {
  private buffer: (NewEvent & { coalescable: boolean })[] = [];
  private flushing: Promise<void> | null = null;
  private failure: Error | null = null;
  private seq = 0;

  constructor(
    private readonly chatId: string,
    private readonly keyPrefix: string,
    private readonly timeline: Timeline,
    private readonly feed: ChatFeed,
    private readonly onStored?: (events: StoredEvent[]) => void,
  ) {}

  /** Queue an event; resolves at once unless many are waiting (then when they are written). */
  emit = async <T extends TimelineType>(type: T, data: TimelineDataOf<T>, key?: string): Promise<void> => {
    if (this.failure) throw this.failure;
    if (type === 'chat.text' && key === undefined && this.coalesce(data as TimelineDataOf<'chat.text'>)) return;
    this.buffer.push({ key: key ?? `${this.keyPrefix}:${this.seq++}`, type, data: data as Record<string, unknown>, coalescable: key === undefined, fresh: key === undefined });
    this.flushing ??= new Promise<void>((resolve) => setImmediate(resolve)).then(() => this.loop());
    if (this.buffer.length >= MAX_BUFFERED) await this.flushing;
  };

  /** Merge a text delta into the queued event of the same open message, if it is the last one queued. */
  private coalesce(next: TimelineDataOf<'chat.text'>): boolean {
    const last = this.buffer[this.buffer.length - 1];
    if (!last || last.type !== 'chat.text' || !last.coalescable) return false;
    const prev = last.data as TimelineDataOf<'chat.text'>;
    if (prev.done || prev.message_id !== next.message_id || prev.role !== next.role || prev.agent !== next.agent) return false;
    last.data = { ...prev, delta: prev.delta + next.delta, done: next.done, ...(next.content !== undefined && { content: next.content }) };
    return true;
  }

  /** Wait until everything emitted so far is stored and published. */
  async drain(): Promise<void> {
    while (this.flushing) await this.flushing;
    if (this.failure) throw this.failure;
  }

  private async loop(): Promise<void> {
    try {
      while (this.buffer.length) {
        const batch = this.buffer;
        this.buffer = [];
        const stored = await this.timeline.record(this.chatId, batch, this.feed);
        if (stored.length) this.onStored?.(stored);
      }
    } catch (e) {
      this.failure = e as Error;
    } finally {
      this.flushing = null;
    }
  }
}

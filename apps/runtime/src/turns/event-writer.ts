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
 */
export class EventWriter {
  private buffer: NewEvent[] = [];
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
    this.buffer.push({ key: key ?? `${this.keyPrefix}:${this.seq++}`, type, data: data as Record<string, unknown> });
    this.flushing ??= new Promise<void>((resolve) => setImmediate(resolve)).then(() => this.loop());
    if (this.buffer.length >= MAX_BUFFERED) await this.flushing;
  };

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
        const stored = await this.timeline.append(this.chatId, batch);
        if (stored.length) {
          await this.feed.publish(this.chatId, stored);
          this.onStored?.(stored);
        }
      }
    } catch (e) {
      this.failure = e as Error;
    } finally {
      this.flushing = null;
    }
  }
}

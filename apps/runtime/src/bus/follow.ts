import type { StoredEvent } from '../store/timeline';
import type { RuntimeServices } from '../services';
import type { LiveEvent } from './feed';

const PAGE = 500;
/** Without a live signal the log is read again this often anyway (a lost pub/sub message costs this much delay, nothing else). */
const RECHECK_MS = 5_000;

/**
 * A chat's timeline after index `after`, event by event, as it grows, in index order with none
 * missing and none twice, the same on every instance and after every reconnect. The log is read
 * first; then live events (published after they were stored, with their index) pass when they
 * continue exactly where the follower is, as on the chat socket (ChatDelivery): a gap, a resync
 * or a quiet RECHECK_MS reads the log again, so a lost or late pub/sub message costs a read,
 * nothing else. Reading the log per live batch instead cost every protocol run a statement per
 * publish (the AG-UI benchmark in tools/bench/runtime.ts). Ends when `signal` aborts (checked
 * after each page; a wait is cut short at once); a consumer that stops early (`break`)
 * unsubscribes too. Protocol adapters (AG-UI, MCP, A2A) read turns this way.
 */
export async function* followTimeline(s: Pick<RuntimeServices, 'feed' | 'timeline'>, chatId: string, after: number, signal: AbortSignal): AsyncGenerator<StoredEvent, void, undefined> {
  const follower = await TimelineFollower.subscribe(s, chatId);
  try {
    yield* follower.follow(after, signal);
  } finally {
    await follower.close();
  }
}

/**
 * followTimeline in two steps, for a caller that subscribes before it acts: a run that submits the
 * input after `subscribe` hears every event the input causes live, so its first read of the log
 * can be skipped (`readLogFirst: false`). Anything stored between `after` and the subscription
 * shows as a gap before the first live event that follows it, and is read from the log then.
 */
export class TimelineFollower {
  private live: LiveEvent[] = [];
  private readLog = true;
  private wake: (() => void) | null = null;

  private constructor(
    private readonly s: Pick<RuntimeServices, 'feed' | 'timeline'>,
    private readonly chatId: string,
    private unsubscribe: () => Promise<void> = async () => undefined,
  ) {}

  /** Resolves once Redis confirmed the subscription: what is published from then on is heard. */
  static async subscribe(s: Pick<RuntimeServices, 'feed' | 'timeline'>, chatId: string): Promise<TimelineFollower> {
    const f = new TimelineFollower(s, chatId);
    f.unsubscribe = await s.feed.subscribe(chatId, {
      onEvents: (events) => {
        // A consumer that stopped reading (a stalled client) is not buffered for: the log has it all.
        if (f.live.length + events.length > PAGE) {
          f.live = [];
          f.readLog = true;
        } else for (const e of events) f.live.push(e);
        f.wake?.();
      },
      onResync: () => {
        f.readLog = true;
        f.wake?.();
      },
    });
    return f;
  }

  /** The events after `after`; one follow at a time. */
  async *follow(after: number, signal: AbortSignal, opts: { readLogFirst?: boolean } = {}): AsyncGenerator<StoredEvent, void, undefined> {
    if (opts.readLogFirst === false) this.readLog = false;
    const onAbort = () => this.wake?.();
    signal.addEventListener('abort', onAbort);
    let cursor = after;
    try {
      while (!signal.aborted) {
        if (this.readLog) {
          this.readLog = false;
          const page = await this.s.timeline.after(this.chatId, cursor, PAGE);
          for (const e of page) {
            cursor = e.index;
            yield e;
          }
          if (page.length === PAGE) this.readLog = true;
          continue;
        }
        if (this.live.length) {
          const batch = this.live;
          this.live = [];
          for (const e of batch) {
            if (e.index <= cursor) continue;
            if (e.index !== cursor + 1) {
              this.readLog = true;
              break;
            }
            cursor = e.index;
            yield fromWire(e);
          }
          continue;
        }
        this.readLog = await new Promise<boolean>((resolve) => {
          const timer = setTimeout(() => resolve(true), RECHECK_MS);
          this.wake = () => {
            clearTimeout(timer);
            resolve(this.readLog);
          };
        });
        this.wake = null;
      }
    } finally {
      signal.removeEventListener('abort', onAbort);
    }
  }

  close(): Promise<void> {
    return this.unsubscribe();
  }
}

/** A live event as the log would return it (its wire is the stored `{"type","data","timestamp","index"}`). */
function fromWire(e: LiveEvent): StoredEvent {
  const w = JSON.parse(e.wire) as Pick<StoredEvent, 'data' | 'timestamp'>;
  return { index: e.index, type: e.type, data: w.data, timestamp: w.timestamp, wire: e.wire };
}

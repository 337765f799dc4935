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
  let live: LiveEvent[] = [];
  let readLog = true;
  let wake: (() => void) | null = null;
  const unsubscribe = await s.feed.subscribe(chatId, {
    onEvents: (events) => {
      // A consumer that stopped reading (a stalled client) is not buffered for: the log has it all.
      if (live.length + events.length > PAGE) {
        live = [];
        readLog = true;
      } else for (const e of events) live.push(e);
      wake?.();
    },
    onResync: () => {
      readLog = true;
      wake?.();
    },
  });
  const onAbort = () => wake?.();
  signal.addEventListener('abort', onAbort);
  let cursor = after;
  try {
    while (!signal.aborted) {
      if (readLog) {
        readLog = false;
        const page = await s.timeline.after(chatId, cursor, PAGE);
        for (const e of page) {
          cursor = e.index;
          yield e;
        }
        if (page.length === PAGE) readLog = true;
        continue;
      }
      if (live.length) {
        const batch = live;
        live = [];
        for (const e of batch) {
          if (e.index <= cursor) continue;
          if (e.index !== cursor + 1) {
            readLog = true;
            break;
          }
          cursor = e.index;
          yield fromWire(e);
        }
        continue;
      }
      readLog = await new Promise<boolean>((resolve) => {
        const timer = setTimeout(() => resolve(true), RECHECK_MS);
        wake = () => {
          clearTimeout(timer);
          resolve(readLog);
        };
      });
      wake = null;
    }
  } finally {
    signal.removeEventListener('abort', onAbort);
    await unsubscribe();
  }
}

/** A live event as the log would return it (its wire is the stored `{"type","data","timestamp","index"}`). */
function fromWire(e: LiveEvent): StoredEvent {
  const w = JSON.parse(e.wire) as Pick<StoredEvent, 'data' | 'timestamp'>;
  return { index: e.index, type: e.type, data: w.data, timestamp: w.timestamp, wire: e.wire };
}

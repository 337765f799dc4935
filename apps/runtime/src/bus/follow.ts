import type { StoredEvent } from '../store/timeline';
import type { RuntimeServices } from '../services';

const PAGE = 500;
/** Without a live signal the log is read again this often anyway (a lost pub/sub message costs this much delay, nothing else). */
const RECHECK_MS = 5_000;

/**
 * A chat's timeline after index `after`, event by event, as it grows. The log is the only source
 * and the live feed only says "read again", so what a follower sees is the same on every instance
 * and after every reconnect. Ends when `signal` aborts (checked after each page; a wait is cut short at once); a consumer that
 * stops early (`break`) unsubscribes too. Protocol adapters (AG-UI, MCP, A2A) read turns this way.
 */
export async function* followTimeline(s: Pick<RuntimeServices, 'feed' | 'timeline'>, chatId: string, after: number, signal: AbortSignal): AsyncGenerator<StoredEvent, void, undefined> {
  let dirty = false;
  let wake: (() => void) | null = null;
  const kick = () => {
    dirty = true;
    wake?.();
  };
  const unsubscribe = await s.feed.subscribe(chatId, { onEvents: kick, onResync: kick });
  signal.addEventListener('abort', kick);
  let cursor = after;
  try {
    while (!signal.aborted) {
      dirty = false;
      const page = await s.timeline.after(chatId, cursor, PAGE);
      for (const e of page) {
        cursor = e.index;
        yield e;
      }
      if (page.length < PAGE && !dirty && !signal.aborted) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, RECHECK_MS);
          wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        wake = null;
      }
    }
  } finally {
    signal.removeEventListener('abort', kick);
    await unsubscribe();
  }
}

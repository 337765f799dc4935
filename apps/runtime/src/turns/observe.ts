import type { ObservedEvent, Queue } from '@tessera/contracts';
import type { Logger, Metrics, TypedQueue } from '@tessera/kit';
import type { ChatRow } from '../store/chats';
import type { StoredEvent } from '../store/timeline';

/** Events per observability job: the contract's maximum. */
export const OBSERVE_BATCH_MAX = 1000;
const DEPTH_CHECK_MS = 1_000;
const DROP_WARN_MS = 60_000;

export interface ObserverOptions {
  /** Jobs that may wait on the queue (its consumer may not be deployed yet); above it, batches are dropped. */
  maxWaiting: number;
  metrics?: Metrics;
}

/** How long stored events may wait to go to observability together (one job per window, all chats). */
export const OBSERVE_WINDOW_MS = 100;

/** The observer of a process: `observe(chat, stored)` for every write, `flush()` on shutdown. */
export type Observer = ((chat: Pick<ChatRow, 'id' | 'appId' | 'userId' | 'workflowName'>, stored: StoredEvent[]) => void) & { flush(): void };

/**
 * Every timeline event also goes to observability (session id = chat id). The events a process
 * stores within OBSERVE_WINDOW_MS, whatever their chats, go as one job (at most
 * OBSERVE_BATCH_MAX events; a full batch goes at once), so that turns cost no queue job each;
 * a chat's events keep their order. Observability is best effort: this never throws and never
 * waits, so it can never fail a turn, and it stops adding jobs while more than `maxWaiting` are
 * waiting (looked up at most once a second), so that a queue nobody consumes cannot fill Redis.
 */
export function observer(queue: TypedQueue<typeof Queue.ObservabilityEvents> | null, logger: Logger, opts: ObserverOptions): Observer {
  let waiting = 0;
  let checkedAt = 0;
  let warnedAt = 0;
  let dropped = 0;
  let pending: ObservedEvent[] = [];
  let timer: NodeJS.Timeout | null = null;
  const checkDepth = (now: number) => {
    if (!queue || now - checkedAt < DEPTH_CHECK_MS) return;
    checkedAt = now;
    queue.queue.getWaitingCount().then(
      (n) => (waiting = n),
      () => undefined, // Redis away: the adds fail and say so
    );
  };
  const send = (events: ObservedEvent[]) => {
    if (!queue || events.length === 0) return;
    try {
      const now = Date.now();
      checkDepth(now);
      if (waiting >= opts.maxWaiting) {
        dropped += events.length;
        opts.metrics?.events.inc({ kind: 'observability_dropped' }, events.length);
        if (now - warnedAt >= DROP_WARN_MS) {
          warnedAt = now;
          logger.warn('observability queue full: events dropped', { queue: queue.name, waiting, max_waiting: opts.maxWaiting, dropped });
          dropped = 0;
        }
        return;
      }
      queue.add({ events }).catch((err: Error) => logger.warn('could not queue events for observability', { events: events.length, error: err.message }));
    } catch (err) {
      logger.warn('could not queue events for observability', { events: events.length, error: (err as Error).message });
    }
  };
  const flush = () => {
    if (timer) clearTimeout(timer);
    timer = null;
    const out = pending;
    pending = [];
    for (let i = 0; i < out.length; i += OBSERVE_BATCH_MAX) send(out.slice(i, i + OBSERVE_BATCH_MAX));
  };
  const observe = (chat: Pick<ChatRow, 'id' | 'appId' | 'userId' | 'workflowName'>, stored: StoredEvent[]) => {
    if (!queue || stored.length === 0) return;
    try {
      for (const e of stored) {
        pending.push(observed(chat, e));
        if (pending.length >= OBSERVE_BATCH_MAX) flush();
      }
      if (pending.length) timer ??= setTimeout(flush, OBSERVE_WINDOW_MS);
    } catch (err) {
      logger.warn('could not queue events for observability', { chat_id: chat.id, error: (err as Error).message });
    }
  };
  return Object.assign(observe, { flush });
}

function observed(chat: Pick<ChatRow, 'id' | 'appId' | 'userId' | 'workflowName'>, e: StoredEvent): ObservedEvent {
  const data = e.data;
  const isUsage = e.type === 'chat.usage_delta' || e.type === 'chat.usage_summary';
  return {
    session_id: chat.id,
    app_id: chat.appId,
    user_id: chat.userId,
    workflow_name: chat.workflowName,
    agent: typeof data.agent === 'string' ? data.agent : null,
    index: e.index,
    type: e.type,
    payload: data,
    usage: isUsage ? usageOf(data) : null,
    timestamp: e.timestamp,
  };
}

/** The tokens of a usage event's data; a part the provider did not report stays absent. */
function usageOf(data: Record<string, unknown>): NonNullable<ObservedEvent['usage']> {
  const part = (k: string) => (typeof data[k] === 'number' ? { [k]: data[k] as number } : {});
  return {
    prompt_tokens: Number(data.prompt_tokens) || 0,
    completion_tokens: Number(data.completion_tokens) || 0,
    total_tokens: Number(data.total_tokens) || 0,
    ...part('cache_read_tokens'),
    ...part('cache_write_tokens'),
    ...part('reasoning_tokens'),
  };
}

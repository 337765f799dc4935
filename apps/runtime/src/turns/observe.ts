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

/**
 * Every timeline event also goes to observability (session id = chat id), in jobs of at most
 * OBSERVE_BATCH_MAX events. Observability is best effort: this never throws and never waits, so
 * it can never fail a turn, and it stops adding jobs while more than `maxWaiting` are waiting
 * (looked up at most once a second), so that a queue nobody consumes cannot fill Redis.
 */
export function observer(queue: TypedQueue<typeof Queue.ObservabilityEvents> | null, logger: Logger, opts: ObserverOptions) {
  let waiting = 0;
  let checkedAt = 0;
  let warnedAt = 0;
  let dropped = 0;
  const checkDepth = (now: number) => {
    if (!queue || now - checkedAt < DEPTH_CHECK_MS) return;
    checkedAt = now;
    queue.queue.getWaitingCount().then(
      (n) => (waiting = n),
      () => undefined, // Redis away: the adds fail and say so
    );
  };
  return (chat: Pick<ChatRow, 'id' | 'appId' | 'userId' | 'workflowName'>, stored: StoredEvent[]) => {
    if (!queue || stored.length === 0) return;
    try {
      const now = Date.now();
      checkDepth(now);
      if (waiting >= opts.maxWaiting) {
        dropped += stored.length;
        opts.metrics?.events.inc({ kind: 'observability_dropped' }, stored.length);
        if (now - warnedAt >= DROP_WARN_MS) {
          warnedAt = now;
          logger.warn('observability queue full: events dropped', { queue: queue.name, waiting, max_waiting: opts.maxWaiting, dropped });
          dropped = 0;
        }
        return;
      }
      for (let i = 0; i < stored.length; i += OBSERVE_BATCH_MAX) {
        const events = stored.slice(i, i + OBSERVE_BATCH_MAX).map((e) => observed(chat, e));
        queue.add({ events }).catch((err: Error) => logger.warn('could not queue events for observability', { chat_id: chat.id, error: err.message }));
      }
    } catch (err) {
      logger.warn('could not queue events for observability', { chat_id: chat.id, error: (err as Error).message });
    }
  };
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
    usage: isUsage
      ? { prompt_tokens: Number(data.prompt_tokens) || 0, completion_tokens: Number(data.completion_tokens) || 0, total_tokens: Number(data.total_tokens) || 0 }
      : null,
    timestamp: e.timestamp,
  };
}

/** How long stored events may wait to go to observability together (one job per window). */
const OBSERVE_WINDOW_MS = 250;
const OBSERVE_FLUSH_AT = 500;

/**
 * A turn's stored events on their way to observability: gathered for up to OBSERVE_WINDOW_MS
 * (or OBSERVE_FLUSH_AT events) and sent together, and whatever is left when the turn ends, so
 * that a fast turn costs one queue job instead of one per write. Every event still goes, in
 * order, in sends of at most OBSERVE_BATCH_MAX (a write may store up to 512 events at once).
 */
export class ObserveBuffer {
  private pending: StoredEvent[] = [];
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly send: (stored: StoredEvent[]) => void) {}

  readonly add = (stored: StoredEvent[]): void => {
    for (const e of stored) this.pending.push(e);
    if (this.pending.length >= OBSERVE_FLUSH_AT) this.flush();
    else this.timer ??= setTimeout(() => this.flush(), OBSERVE_WINDOW_MS);
  };

  flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    while (this.pending.length > 0) {
      const out = this.pending.slice(0, OBSERVE_BATCH_MAX);
      this.pending = this.pending.slice(out.length);
      try {
        this.send(out);
      } catch {
        // Observability never fails a turn.
      }
    }
  }
}

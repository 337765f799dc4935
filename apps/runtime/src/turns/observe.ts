import type { ObservedEvent, Queue } from '@tessera/contracts';
import type { Logger, TypedQueue } from '@tessera/kit';
import type { ChatRow } from '../store/chats';
import type { StoredEvent } from '../store/timeline';

/** Every timeline event also goes to observability (session id = chat id), one job per write. */
export function observer(queue: TypedQueue<typeof Queue.ObservabilityEvents> | null, logger: Logger) {
  return (chat: Pick<ChatRow, 'id' | 'appId' | 'userId' | 'workflowName'>, stored: StoredEvent[]) => {
    if (!queue || stored.length === 0) return;
    const events: ObservedEvent[] = stored.map((e) => {
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
    });
    queue.add({ events }).catch((err: Error) => logger.warn('could not queue events for observability', { chat_id: chat.id, error: err.message }));
  };
}

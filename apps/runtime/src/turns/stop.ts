import { setTimeout as sleep } from 'node:timers/promises';
import type { ChatFeed } from '../bus/feed';
import type { RuntimeServices } from '../services';
import type { ChatRow } from '../store/chats';
import type { NewEvent, StoredEvent, Timeline } from '../store/timeline';
import type { ToolCallStore } from '../store/tool-calls';

/** How long a stop waits for the chat's lease (a running turn ends within a second of its abort; a dead worker's lease expires in 5 s). */
const STOP_WAIT_MS = 15_000;
const STOP_POLL_MS = 200;

/**
 * A stop, as every runtime instance receives it (the control message): one instance (a short
 * Redis lock decides which) makes it durable first (the chat's waiting and running inputs are
 * cancelled, the request recorded on the chat), so that no turn starts for those inputs and a
 * turn that is running is stopped by its worker (the same control message aborts it) or, had
 * that message been missed, when it saves. Then it carries out the stop itself once it holds the
 * chat's lease, unless the lease holder did first: a turn and this stop never both win.
 * True when this call announced the stop.
 */
export async function stopIdleChat(s: RuntimeServices, chatId: string, reason = 'stopped by request'): Promise<boolean> {
  const lock = await s.redis.set(`${s.config.BULL_PREFIX}:stop:${chatId}`, '1', 'PX', 3_000, 'NX');
  if (lock !== 'OK') return false;
  if (!(await s.chats.requestStop(chatId, reason))) return false;
  const deadline = Date.now() + STOP_WAIT_MS;
  while (Date.now() < deadline) {
    const lease = await s.lease.acquire(chatId);
    if (lease) {
      try {
        return await carryOutStop(s, chatId);
      } finally {
        await lease.release();
      }
    }
    // The holder carries it out (the aborted turn's save, or its next lease) and clears it.
    if (!(await s.chats.stopRequested(chatId))) return false;
    await sleep(STOP_POLL_MS);
  }
  s.logger.warn('stop left to the next turn of the chat', { chat_id: chatId });
  return false;
}

export interface StopDeps {
  chats: RuntimeServices['chats'];
  toolCalls: ToolCallStore;
  timeline: Timeline;
  feed: ChatFeed;
  observe: (chat: ChatRow, stored: StoredEvent[]) => void;
}

/**
 * Carries out a requested stop; the caller holds the chat's lease. An open chat becomes stopped,
 * its awaiting tool calls are dismissed and `chat.run_complete` says so. True when it did.
 */
export async function carryOutStop(d: StopDeps, chatId: string): Promise<boolean> {
  const reason = await d.chats.takeStop(chatId);
  if (reason === null) return false;
  const chat = await d.chats.get(chatId);
  if (!chat) return false;
  const stopId = `stop:${Date.now()}`;
  const events: NewEvent[] = (await d.toolCalls.dismissAwaiting(chatId)).map((tc) => ({
    key: `${stopId}:dismiss:${tc.eventId}`,
    type: 'chat.tool_call_dismiss',
    data: { event_id: tc.eventId, tool_call_id: tc.toolCallId, reason: 'chat stopped' },
  }));
  events.push({ key: `${stopId}:run_complete`, type: 'chat.run_complete', data: { turn_id: stopId, status: 'stopped', reason } });
  const stored = await d.timeline.record(chatId, events, d.feed);
  d.observe(chat, stored);
  return true;
}

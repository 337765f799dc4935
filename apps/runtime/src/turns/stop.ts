import type { RuntimeServices } from '../services';
import type { NewEvent } from '../store/timeline';

/**
 * A stop for a chat that no worker is running right now (idle, or awaiting a tool answer):
 * one runtime instance (a short Redis lock decides which) marks it stopped, drops what was
 * waiting, dismisses awaiting tool calls and says so with `chat.run_complete`. A chat whose
 * lease is held is stopped by its worker, which aborts the running turn.
 */
export async function stopIdleChat(s: RuntimeServices, chatId: string, reason = 'stopped by request'): Promise<boolean> {
  if (await s.lease.isHeld(chatId)) return false;
  const lock = await s.redis.set(`${s.config.BULL_PREFIX}:stop:${chatId}`, '1', 'PX', 3_000, 'NX');
  if (lock !== 'OK') return false;
  const chat = await s.chats.get(chatId);
  if (!chat || !(await s.chats.transition(chatId, ['created', 'in_progress', 'awaiting_input'], 'stopped'))) return false;
  await s.inputs.cancelPending(chatId);
  const stopId = `stop:${Date.now()}`;
  const events: NewEvent[] = (await s.toolCalls.dismissAwaiting(chatId)).map((tc) => ({
    key: `${stopId}:dismiss:${tc.eventId}`,
    type: 'chat.tool_call_dismiss',
    data: { event_id: tc.eventId, tool_call_id: tc.toolCallId, reason: 'chat stopped' },
  }));
  events.push({ key: `${stopId}:run_complete`, type: 'chat.run_complete', data: { turn_id: stopId, status: 'stopped', reason } });
  const stored = await s.timeline.append(chatId, events);
  await s.feed.publish(chatId, stored);
  s.observe(chat, stored);
  return true;
}

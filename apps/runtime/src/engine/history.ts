import type { ConversationMessage } from './types';

/** How much of a conversation the engine keeps (and sends to the model) between turns. */
export interface HistoryLimits {
  maxMessages: number;
  /** Characters of content and tool arguments: a rough token budget (about 4 characters a token). */
  maxChars: number;
}

function sizeOf(m: ConversationMessage): number {
  const calls = m.role === 'assistant' && m.tool_calls ? JSON.stringify(m.tool_calls).length : 0;
  return m.content.length + calls;
}

/**
 * The newest messages within the limits, starting at a user message so that no tool result is
 * kept without the assistant message that called it. The latest exchange (from the last user
 * message on) is always kept whole, even past the limits: the model needs it to answer.
 */
export function boundHistory(messages: ConversationMessage[], limits: HistoryLimits): ConversationMessage[] {
  let start = messages.length;
  let chars = 0;
  while (start > 0 && messages.length - start < limits.maxMessages) {
    const size = sizeOf(messages[start - 1]);
    if (chars + size > limits.maxChars) break;
    chars += size;
    start--;
  }
  if (start === 0) return messages;
  let cut = messages.findIndex((m, i) => i >= start && m.role === 'user');
  if (cut === -1) cut = messages.findLastIndex((m) => m.role === 'user');
  if (cut === -1) {
    cut = start;
    while (cut < messages.length && messages[cut].role === 'tool') cut++;
  }
  return messages.slice(cut);
}

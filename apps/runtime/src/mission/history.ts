import type { Pool } from 'pg';
import type { mission as m } from '@tessera/contracts';
import { messageBubbles, splitSentences } from './wire';

/** The newest conversation items sent on connect; older ones stay in the chat's timeline. */
const MAX_HISTORY = 1_000;

export interface ConversationHistory {
  /** Document 002's `historical_messages` items. */
  messages: m.HistoryItem[];
  /** A turn is still open (its user message has no run_complete yet): the tutor shows as processing. */
  inTurn: boolean;
  /** The unfinished sentence of a reply still streaming, for the socket's mapper to go on from. */
  pending: string;
}

/**
 * The conversation up to `upTo` as document 002's `historical_messages`: the user's messages, and
 * each reply as the `agent_message`s a live socket got for it (one per sentence, cut by the same
 * rule), so that a client that reloads shows the bubbles it showed live. A reply still streaming
 * gives its finished sentences here and the rest as `pending`.
 */
export async function conversationHistory(pool: Pool, chatId: string, upTo: number): Promise<ConversationHistory> {
  // Finished messages and turn ends, and the deltas of the open turn (a reply may be streaming).
  const r = await pool.query<{ type: string; role: string | null; done: boolean; text: string | null }>(
    `SELECT type, data->>'role' AS role, coalesce((data->>'done')::boolean, false) AS done,
            CASE WHEN data->>'done' = 'true' THEN data->>'content' ELSE data->>'delta' END AS text
     FROM chat_events
     WHERE chat_id = $1 AND idx <= $2 AND (
       type = 'chat.run_complete' OR (type = 'chat.text' AND (data->>'done' = 'true' OR idx > coalesce(
         (SELECT max(idx) FROM chat_events WHERE chat_id = $1 AND idx <= $2 AND type = 'chat.run_complete'), 0))))
     ORDER BY idx`,
    [chatId, upTo],
  );
  const messages: m.HistoryItem[] = [];
  let inTurn = false;
  let streaming = '';
  for (const row of r.rows) {
    if (row.type === 'chat.run_complete') {
      inTurn = false;
      continue;
    }
    if (row.role === 'user') {
      inTurn = true;
      if (row.text) messages.push({ type: 'user_message', message: row.text });
    } else if (!row.done) {
      streaming += row.text ?? '';
    } else {
      streaming = '';
      for (const message of messageBubbles(row.text ?? '')) messages.push({ type: 'agent_message', message });
    }
  }
  const { sentences, rest } = splitSentences(streaming);
  for (const message of sentences) messages.push({ type: 'agent_message', message });
  return { messages: messages.slice(-MAX_HISTORY), inTurn, pending: rest };
}

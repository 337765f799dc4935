import type { Pool } from 'pg';
import type { mission as m } from '@tessera/contracts';

/** The newest conversation items sent on connect; older ones stay in the chat's timeline. */
const MAX_HISTORY = 1_000;

/**
 * The conversation up to `upTo` as document 002's `historical_messages` items (finished user and
 * assistant messages), and whether a turn is still open there (its user message has no
 * run_complete yet), so that a socket opening mid-turn shows the tutor as processing.
 */
export async function conversationHistory(pool: Pool, chatId: string, upTo: number): Promise<{ messages: m.HistoryItem[]; inTurn: boolean }> {
  const r = await pool.query<{ type: string; role: string | null; content: string | null }>(
    `SELECT type, data->>'role' AS role, data->>'content' AS content FROM chat_events
     WHERE chat_id = $1 AND idx <= $2 AND (type = 'chat.run_complete' OR (type = 'chat.text' AND data->>'done' = 'true'))
     ORDER BY idx`,
    [chatId, upTo],
  );
  const messages: m.HistoryItem[] = [];
  let inTurn = false;
  for (const row of r.rows) {
    if (row.type === 'chat.run_complete') {
      inTurn = false;
      continue;
    }
    if (row.role === 'user') inTurn = true;
    if (row.content) messages.push({ type: row.role === 'user' ? 'user_message' : 'agent_message', message: row.content });
  }
  return { messages: messages.slice(-MAX_HISTORY), inTurn };
}

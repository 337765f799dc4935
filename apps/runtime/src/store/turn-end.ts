import type { Pool } from 'pg';
import type { ChatStatus } from '@tessera/contracts';
import type { ChatFeed } from '../bus/feed';
import type { EventTail } from './tail';
import { LAST_INDEX_SQL, toStored, TS, UNIQUE_VIOLATION, type NewEvent, type StoredEvent } from './timeline';

/**
 * The end of a turn in one statement (one transaction): the chat's state, usage, status and last
 * artifact saved (a chat stopped meanwhile stays stopped, and a stop requested meanwhile is carried
 * out: the chat becomes stopped and the request is cleared), the turn's closing
 * events appended to its timeline, and its input marked done. A crash leaves all of it or none.
 *
 * It also says whether another input of the chat waits (as of the statement's snapshot), which
 * the worker would otherwise ask in a statement of its own before it lets the chat go.
 *
 * When the chat turned out stopped (or is gone), only the save happens: no event is stored and the
 * input is left as it is, for the caller to carry out the stop (dismissals come before the closing
 * `chat.run_complete`).
 *
 * Only the attempt that holds the input saves anything: one whose input another attempt took since
 * (its chat's lease was lost, and the input run again elsewhere) writes nothing and is told so.
 * The chat's row is locked before the input's, as everywhere else.
 */
const END_SQL = `
WITH old AS (SELECT id, status, stop_reason FROM chats WHERE id = $1 FOR UPDATE),
held AS (SELECT id FROM chat_inputs WHERE id = $6 AND attempt = $10 AND EXISTS (SELECT 1 FROM old) FOR UPDATE),
saved AS (
  UPDATE chats c SET state = $2, usage = $3,
    status = CASE WHEN old.status = 'stopped' OR old.stop_reason IS NOT NULL THEN 'stopped' ELSE $4 END,
    stop_reason = NULL, last_artifact = COALESCE($5, c.last_artifact), updated_at = now()
  FROM old WHERE c.id = old.id AND EXISTS (SELECT 1 FROM held) RETURNING c.status, old.stop_reason
), incoming AS (
  SELECT k, t, ord FROM unnest($7::text[], $8::text[]) WITH ORDINALITY AS x(k, t, ord)
), fresh AS (
  SELECT i.* FROM incoming i
  WHERE EXISTS (SELECT 1 FROM saved WHERE saved.status <> 'stopped')
    AND NOT EXISTS (SELECT 1 FROM chat_events e WHERE e.chat_id = $1 AND e.key = i.k)
), appended AS (
  INSERT INTO chat_events (chat_id, idx, key, type, data, created_at)
  SELECT $1, ${LAST_INDEX_SQL('$1')} + row_number() OVER (ORDER BY f.ord), f.k, f.t, $9::jsonb -> (f.ord::int - 1), now()
  FROM fresh f
  RETURNING idx, key, type, data::text AS data, ${TS}
), done AS (
  UPDATE chat_inputs SET status = 'done', done_at = now()
  WHERE id = $6 AND status IN ('pending', 'processing') AND EXISTS (SELECT 1 FROM saved WHERE saved.status <> 'stopped')
)
SELECT EXISTS (SELECT 1 FROM old) AS found, EXISTS (SELECT 1 FROM held) AS held, saved.status, saved.stop_reason AS "stopReason",
  (SELECT coalesce(json_agg(a ORDER BY a.idx), '[]') FROM appended a) AS events,
  EXISTS (SELECT 1 FROM chat_inputs WHERE chat_id = $1 AND id <> $6 AND status IN ('pending', 'processing')) AS "morePending"
FROM (SELECT 1) one LEFT JOIN saved ON true`;

const MAX_RETRIES = 8;

export interface TurnOutcome {
  state: unknown;
  usage: unknown;
  status: ChatStatus;
  lastArtifact?: Record<string, unknown> | null;
}

export interface TurnEnded {
  /** The chat's status now: `stopped` when a stop came first (then nothing else was written). */
  status: ChatStatus;
  /** The stop request carried out by this save, if any. */
  stopReason: string | null;
  /** The closing events as stored and published; null when the chat is stopped or gone. */
  stored: StoredEvent[] | null;
  /** Another input of the chat was pending or processing when the turn ended. */
  morePending: boolean;
  /** Another attempt took the input since this one did: nothing was written. */
  superseded?: true;
}

export class TurnEnd {
  /**
   * With `tail` (EVENT_TAIL=on) the statement saves the end without the closing events, which then
   * go to the chat's tail. They are held in the tail first (EventTail.holdClosing): a worker that
   * dies between the statement and the append leaves them there, and the chat's next lease holder
   * or the tails' sweeper appends them once the input reads done (recoverClosing).
   */
  constructor(
    private readonly pool: Pool,
    private readonly tail?: EventTail,
  ) {}

  /** Saves the end, then publishes its closing events on the chat's feed (the tail's append script publishes them itself). */
  async finish(chatId: string, input: { id: string; attempt: number }, outcome: TurnOutcome, events: NewEvent[], feed: Pick<ChatFeed, 'publish'>): Promise<TurnEnded> {
    if (!this.tail) {
      const ended = await this.save(chatId, input, outcome, events);
      if (ended.stored?.length) await feed.publish(chatId, ended.stored);
      return ended;
    }
    await this.tail.holdClosing(chatId, input.id, events);
    const ended = await this.save(chatId, input, outcome, []);
    if (!ended.stored) {
      // A stop came first: the caller carries it out, and the held events are not the turn's end.
      await this.tail.releaseClosing(chatId);
      return ended;
    }
    const stored = await this.tail.append(chatId, events);
    await this.tail.releaseClosing(chatId);
    return { ...ended, stored };
  }

  private async save(chatId: string, input: { id: string; attempt: number }, outcome: TurnOutcome, events: NewEvent[]): Promise<TurnEnded> {
    const values = [
      chatId,
      JSON.stringify(outcome.state),
      JSON.stringify(outcome.usage),
      outcome.status,
      outcome.lastArtifact ? JSON.stringify(outcome.lastArtifact) : null,
      input.id,
      events.map((e) => e.key),
      events.map((e) => e.type),
      JSON.stringify(events.map((e) => e.data)),
      input.attempt,
    ];
    for (let attempt = 0; ; attempt++) {
      try {
        type Row = { found: boolean; held: boolean; status: ChatStatus | null; stopReason: string | null; events: { idx: number; type: string; data: string; ts: string }[]; morePending: boolean };
        const r = await this.pool.query<Row>({ name: 'turn-end', text: END_SQL, values });
        const row = r.rows[0];
        if (row.found && !row.held) return { status: outcome.status, stopReason: null, stored: null, morePending: true, superseded: true };
        if (row.status === null) return { status: outcome.status, stopReason: null, stored: null, morePending: true };
        return { status: row.status, stopReason: row.stopReason, stored: row.status === 'stopped' ? null : row.events.map(toStored), morePending: row.morePending };
      } catch (e) {
        // Another writer of the chat took the next index: the retry reads past it.
        if ((e as { code?: string }).code === UNIQUE_VIOLATION && attempt < MAX_RETRIES) continue;
        throw e;
      }
    }
  }
}

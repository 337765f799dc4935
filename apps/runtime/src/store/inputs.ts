import { randomUUID } from 'node:crypto';
import type { Pool } from 'pg';
import { Prisma, type PrismaClient } from '../../prisma/generated/client';
import type { TurnInput } from '../engine/types';
import { CHAT_COLUMNS, type ChatRow } from './chats';
import { LAST_INDEX_SQL } from './timeline';

export type InputRow = Prisma.ChatInputGetPayload<object>;
export type InputKind = TurnInput['kind'];

/**
 * Input waiting for a turn, in arrival order. A turn takes the oldest input that is not done;
 * one still `processing` belongs to a worker that died and is taken up again.
 */
const COLUMNS = `id, seq, chat_id AS "chatId", kind, payload, status, attempt, client_message_id AS "clientMessageId", created_at AS "createdAt", done_at AS "doneAt"`;

/** Rows as Prisma returns them (pg gives bigint as text). */
function toRow(r: Record<string, unknown>): InputRow {
  return { ...r, seq: BigInt(r.seq as string) } as InputRow;
}

/**
 * One statement: room for one more pending input ($7, null = no cap; with $8, none pending or
 * running at all), the client context merged
 * into the chat row (a backend key, one without the `ui_` prefix, is never replaced), then the
 * insert; a client_message_id already used on the chat inserts nothing.
 */
const ADD_SQL = `
WITH room AS (
  SELECT ($7::int IS NULL OR (SELECT count(*) FROM chat_inputs WHERE chat_id = $2 AND status = 'pending') < $7::int)
     AND ($8::boolean IS NOT TRUE OR NOT EXISTS (SELECT 1 FROM chat_inputs WHERE chat_id = $2 AND status IN ('pending', 'processing'))) AS ok
), merged AS (
  UPDATE chats SET context = chats.context || COALESCE(
      (SELECT jsonb_object_agg(e.key, e.value) FROM jsonb_each($6::jsonb) e
       WHERE left(e.key, 3) = 'ui_' OR NOT chats.context ? e.key), '{}'::jsonb), updated_at = now()
  WHERE id = $2 AND $6::jsonb IS NOT NULL AND (SELECT ok FROM room)
  RETURNING id
)
INSERT INTO chat_inputs (id, chat_id, kind, payload, client_message_id)
SELECT $1::text, $2::text, $3::text, $4::jsonb, $5::text WHERE (SELECT ok FROM room)
ON CONFLICT (chat_id, client_message_id) DO NOTHING RETURNING ${COLUMNS}, ${LAST_INDEX_SQL('$2')} AS "lastIndex"`;

/** See InputStore.take: the status is checked again by the update, so a cancelled input is never revived. */
const TAKE_SQL = `
WITH next AS (
  SELECT id FROM chat_inputs WHERE chat_id = $1 AND status IN ('pending', 'processing') ORDER BY seq LIMIT 1
), taken AS (
  UPDATE chat_inputs i SET status = 'processing', attempt = i.attempt + 1
  FROM next WHERE i.id = next.id AND i.status IN ('pending', 'processing')
  RETURNING i.*
)
SELECT (SELECT row_to_json(t) FROM (SELECT ${COLUMNS} FROM taken) t) AS input,
       (SELECT row_to_json(c) FROM (SELECT ${CHAT_COLUMNS} FROM chats WHERE id = $1) c) AS chat`;

export class InputStore {
  /**
   * What a turn does to its inputs runs as prepared pg statements on `pool`: one turn makes
   * several of these calls, and Prisma's per-query compilation cost most of a turn's CPU.
   */
  constructor(
    private readonly prisma: PrismaClient,
    private readonly pool: Pool,
  ) {}

  /**
   * Adds an input; the same client_message_id on a chat gives back the first one (duplicate: true).
   * `uiContext` (client context, already under `ui_` keys) is merged into the chat's context by the
   * same statement, so two submits never lose each other's keys and the context is in place
   * before the input can be taken. With `maxPending`, an input that would make more than that many
   * pending inputs is not added (`refused: 'full'`, nothing merged); with `onlyIfIdle`, one that
   * would wait behind another input or a running turn is not added (`refused: 'busy'`). A duplicate
   * still answers. A new input comes with the chat's last stored index as of its insert
   * (`lastIndex`): everything its turn says comes after it.
   */
  async add(
    chatId: string,
    input: TurnInput,
    clientMessageId?: string,
    opts: { uiContext?: Record<string, unknown>; maxPending?: number; onlyIfIdle?: boolean } = {},
  ): Promise<{ input: InputRow; duplicate: boolean; lastIndex?: number; refused?: false } | { input: null; duplicate: false; refused: 'full' | 'busy' }> {
    const r = await this.pool.query({
      name: 'inputs-add',
      text: ADD_SQL,
      values: [
        randomUUID(),
        chatId,
        input.kind,
        JSON.stringify(input),
        clientMessageId ?? null,
        opts.uiContext && Object.keys(opts.uiContext).length ? JSON.stringify(opts.uiContext) : null,
        opts.maxPending ?? null,
        opts.onlyIfIdle ?? false,
      ],
    });
    if (r.rows[0]) {
      const { lastIndex, ...row } = r.rows[0] as Record<string, unknown>;
      return { input: toRow(row), duplicate: false, lastIndex: Number(lastIndex) };
    }
    const first = clientMessageId === undefined ? null : await this.byClientId(chatId, clientMessageId);
    if (first) return { input: first, duplicate: true };
    return { input: null, duplicate: false, refused: opts.onlyIfIdle && (await this.hasPending(chatId)) ? 'busy' : 'full' };
  }

  /** The chat's input a client sent with this client_message_id, if any. */
  async byClientId(chatId: string, clientMessageId: string): Promise<InputRow | null> {
    const r = await this.pool.query({
      name: 'inputs-by-client-id',
      text: `SELECT ${COLUMNS} FROM chat_inputs WHERE chat_id = $1 AND client_message_id = $2`,
      values: [chatId, clientMessageId],
    });
    return r.rows[0] ? toRow(r.rows[0]) : null;
  }

  /**
   * A newer input supersedes the chat's earlier ones (multitask_strategy `interrupt`/`rollback`):
   * those waiting or running are cancelled, so none runs (again) from now on. `running`: one was
   * taken by a turn, which is to be cut off; `dropped`: the ids of those that never ran.
   */
  async supersede(chatId: string, beforeSeq: bigint): Promise<{ running: boolean; dropped: string[] }> {
    const r = await this.pool.query<{ id: string; was: string }>({
      name: 'inputs-supersede',
      text: `WITH earlier AS (
               SELECT id, status FROM chat_inputs WHERE chat_id = $1 AND seq < $2 AND status IN ('pending', 'processing') FOR UPDATE
             )
             UPDATE chat_inputs i SET status = 'cancelled', done_at = now() FROM earlier
             WHERE i.id = earlier.id RETURNING i.id, earlier.status AS was`,
      values: [chatId, beforeSeq.toString()],
    });
    return { running: r.rows.some((row) => row.was === 'processing'), dropped: r.rows.filter((row) => row.was === 'pending').map((row) => row.id) };
  }

  /**
   * Answers an awaiting UI tool call and adds its input in one statement: a call is never
   * answered without its input (nor an input added for a call answered twice). Null when the
   * call was not awaiting anymore.
   */
  async addToolResponse(eventId: string, input: Extract<TurnInput, { kind: 'tool_response' }>): Promise<InputRow | null> {
    const r = await this.pool.query({
      name: 'inputs-add-tool-response',
      text: `WITH answered AS (
               UPDATE tool_calls SET status = 'answered', response = $3::jsonb, answered_at = now()
               WHERE event_id = $2 AND status = 'awaiting' RETURNING chat_id
             )
             INSERT INTO chat_inputs (id, chat_id, kind, payload) SELECT $1::text, chat_id, 'tool_response', $4::jsonb FROM answered
             RETURNING ${COLUMNS}`,
      values: [randomUUID(), eventId, JSON.stringify(input.response), JSON.stringify(input)],
    });
    return r.rows[0] ? toRow(r.rows[0]) : null;
  }

  /**
   * A turn takes the chat's oldest input that is not done, and reads the chat, in one statement:
   * pending (or processing, a re-run) becomes processing and its attempt is counted. Null when
   * nothing is waiting (or a stop cancelled it meanwhile); `chat` is null when the chat is gone.
   */
  async take(chatId: string): Promise<{ input: InputRow; chat: ChatRow | null } | null> {
    const r = await this.pool.query<{ input: Record<string, unknown> | null; chat: Record<string, unknown> | null }>({
      name: 'inputs-take',
      text: TAKE_SQL,
      values: [chatId],
    });
    const { input, chat } = r.rows[0];
    if (!input) return null;
    return {
      input: toRow({ ...input, createdAt: new Date(input.createdAt as string), doneAt: input.doneAt === null ? null : new Date(input.doneAt as string) }),
      chat: chat && ({ ...chat, createdAt: new Date(chat.createdAt as string), updatedAt: new Date(chat.updatedAt as string) } as ChatRow),
    };
  }

  async get(id: string): Promise<InputRow | null> {
    const r = await this.pool.query({ name: 'inputs-get', text: `SELECT ${COLUMNS} FROM chat_inputs WHERE id = $1`, values: [id] });
    return r.rows[0] ? toRow(r.rows[0]) : null;
  }

  /** Only a running input ends: one a stop cancelled stays cancelled. */
  async markDone(id: string, status: 'done' | 'cancelled' = 'done'): Promise<void> {
    await this.pool.query({
      name: 'inputs-done',
      text: "UPDATE chat_inputs SET status = $2, done_at = now() WHERE id = $1 AND status IN ('pending', 'processing')",
      values: [id, status],
    });
  }

  /** After a stop: what was waiting is dropped, so the chat stays stopped. */
  async cancelPending(chatId: string): Promise<void> {
    await this.pool.query({
      name: 'inputs-cancel-pending',
      text: "UPDATE chat_inputs SET status = 'cancelled', done_at = now() WHERE chat_id = $1 AND status = 'pending'",
      values: [chatId],
    });
  }

  /**
   * Inputs not done (waiting, or taken by a turn) created between `after` and `before` and taken
   * fewer than `maxAttempts` times, oldest first, with their chat's app.
   */
  async openBetween(after: Date, before: Date, maxAttempts: number, limit: number): Promise<{ id: string; chatId: string; appId: string }[]> {
    const r = await this.pool.query<{ id: string; chat_id: string; app_id: string }>({
      name: 'inputs-open-between',
      text: `SELECT i.id, i.chat_id, c.app_id FROM chat_inputs i JOIN chats c ON c.id = i.chat_id
             WHERE i.status IN ('pending', 'processing') AND i.created_at > $1 AND i.created_at < $2 AND i.attempt < $3
             ORDER BY i.created_at LIMIT $4`,
      values: [after, before, maxAttempts, limit],
    });
    return r.rows.map((row) => ({ id: row.id, chatId: row.chat_id, appId: row.app_id }));
  }

  async hasPending(chatId: string): Promise<boolean> {
    const r = await this.pool.query({
      name: 'inputs-has-pending',
      text: "SELECT EXISTS (SELECT 1 FROM chat_inputs WHERE chat_id = $1 AND status IN ('pending', 'processing')) AS pending",
      values: [chatId],
    });
    return r.rows[0].pending === true;
  }
}

export function turnInputOf(row: InputRow): TurnInput {
  return row.payload as unknown as TurnInput;
}

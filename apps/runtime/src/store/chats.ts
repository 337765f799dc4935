import { randomUUID } from 'node:crypto';
import type { Pool } from 'pg';
import type { ChatSession, ChatStatus } from '@tessera/contracts';
import { Prisma, type PrismaClient } from '../../prisma/generated/client';
import { cacheSeedOf } from '../domain/context';
import type { EventTail } from './tail';
import { LAST_INDEX_SQL, UNIQUE_VIOLATION } from './timeline';

/** A chat row with its timeline's highest index (`lastIndex`, read from chat_events: no column keeps it). */
export type ChatRow = Prisma.ChatGetPayload<object> & { lastIndex: number };

const OPEN_STATUSES: ChatStatus[] = ['created', 'in_progress', 'awaiting_input'];

export interface StartChat {
  appId: string;
  userId: string;
  workflowName: string;
  clientRequestId?: string;
  forceNew?: boolean;
  context: Record<string, unknown>;
  state: Record<string, unknown>;
}

/** Chats: idempotent creation by client_request_id, ownership-scoped reads. */
export const CHAT_COLUMNS = `id, app_id AS "appId", user_id AS "userId", workflow_name AS "workflowName", status, mode, cache_seed AS "cacheSeed",
  client_request_id AS "clientRequestId", context, state, ${LAST_INDEX_SQL('id')} AS "lastIndex", last_artifact AS "lastArtifact",
  artifact_index AS "artifactIndex", usage, stop_reason AS "stopReason", created_at AS "createdAt", updated_at AS "updatedAt"`;

export class ChatStore {
  /** Reads and writes of every turn run as prepared pg statements on `pool` (see InputStore). */
  constructor(
    private readonly prisma: PrismaClient,
    private readonly pool: Pool,
    /** EVENT_TAIL=on: a chat's last index is its tail's when it has one (PostgreSQL may be behind). */
    private readonly tail?: EventTail,
  ) {}

  /** The row with its last index from the chat's tail, when there is one. */
  private async current(row: ChatRow | undefined): Promise<ChatRow | null> {
    if (!row) return null;
    if (!this.tail) return row;
    const top = await this.tail.top(row.id);
    if (top !== null && top > row.lastIndex) row.lastIndex = top;
    return row;
  }

  /**
   * The same (app, user, workflow, client_request_id) gives the same chat, also under concurrent
   * requests: the unique index decides, the loser reads the winner's row. `forceNew` always makes
   * a new chat (and does not record the request id).
   */
  async start(s: StartChat): Promise<{ chat: ChatRow; reused: boolean }> {
    const key = s.clientRequestId && !s.forceNew ? s.clientRequestId : null;
    if (key) {
      const found = await this.byRequest(s.appId, s.userId, s.workflowName, key);
      if (found) return { chat: found, reused: true };
    }
    const id = randomUUID();
    try {
      // A prepared statement, as the turn's reads and writes are: Prisma's create (its query
      // compiler) made a chat start cost 1,660 µs of the runtime's CPU, against 620–700 µs now
      // (tools/bench/gateway.ts sessions).
      const r = await this.pool.query({
        name: 'chats-start',
        text: `INSERT INTO chats (id, app_id, user_id, workflow_name, client_request_id, cache_seed, context, state)
          VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8::jsonb) RETURNING ${CHAT_COLUMNS}`,
        values: [id, s.appId, s.userId, s.workflowName, key, cacheSeedOf(id), JSON.stringify(s.context), JSON.stringify(s.state)],
      });
      return { chat: r.rows[0] as ChatRow, reused: false };
    } catch (e) {
      // The unique (app, user, workflow, client_request_id) index: a concurrent start won.
      if (key && (e as { code?: string }).code === UNIQUE_VIOLATION) {
        const found = await this.byRequest(s.appId, s.userId, s.workflowName, key);
        if (found) return { chat: found, reused: true };
      }
      throw e;
    }
  }

  private async byRequest(appId: string, userId: string, workflowName: string, clientRequestId: string): Promise<ChatRow | null> {
    const r = await this.pool.query({
      name: 'chats-by-request',
      text: `SELECT ${CHAT_COLUMNS} FROM chats WHERE app_id = $1 AND user_id = $2 AND workflow_name = $3 AND client_request_id = $4`,
      values: [appId, userId, workflowName, clientRequestId],
    });
    return this.current(r.rows[0] as ChatRow | undefined);
  }

  async get(id: string): Promise<ChatRow | null> {
    const r = await this.pool.query({ name: 'chats-get', text: `SELECT ${CHAT_COLUMNS} FROM chats WHERE id = $1`, values: [id] });
    return this.current(r.rows[0] as ChatRow | undefined);
  }

  async listForUser(appId: string, userId: string, limit = 100): Promise<ChatSession[]> {
    const r = await this.pool.query({
      name: 'chats-of-user',
      text: `SELECT ${CHAT_COLUMNS} FROM chats WHERE app_id = $1 AND user_id = $2 ORDER BY updated_at DESC LIMIT $3`,
      values: [appId, userId, limit],
    });
    return (await Promise.all((r.rows as ChatRow[]).map((row) => this.current(row)))).map((row) => toSession(row!));
  }

  /** The most recently updated chat that is still in progress. */
  async recent(appId: string, userId: string): Promise<ChatRow | null> {
    const r = await this.pool.query({
      name: 'chats-recent',
      text: `SELECT ${CHAT_COLUMNS} FROM chats WHERE app_id = $1 AND user_id = $2 AND status = ANY($3::text[]) ORDER BY updated_at DESC LIMIT 1`,
      values: [appId, userId, OPEN_STATUSES],
    });
    return this.current(r.rows[0] as ChatRow | undefined);
  }

  async setStatus(id: string, status: ChatStatus): Promise<void> {
    await this.pool.query({ name: 'chats-status', text: 'UPDATE chats SET status = $2, updated_at = now() WHERE id = $1', values: [id, status] });
  }

  /**
   * A stop, made durable before anyone acts on it: the chat's waiting and running inputs are
   * cancelled (no turn starts for them, a running one finds its input cancelled) and the request
   * is recorded, for whoever holds the chat's lease to carry out. False when there is no chat.
   */
  async requestStop(id: string, reason: string): Promise<boolean> {
    const r = await this.pool.query({
      name: 'chats-request-stop',
      text: `WITH cancelled AS (
               UPDATE chat_inputs SET status = 'cancelled', done_at = now() WHERE chat_id = $1 AND status IN ('pending', 'processing')
             )
             UPDATE chats SET stop_reason = $2 WHERE id = $1 RETURNING id`,
      values: [id, reason],
    });
    return r.rowCount === 1;
  }

  /**
   * Carries out a requested stop (the caller holds the chat's lease): an open chat becomes
   * stopped. Answers the reason when the chat was open (the stop is to be announced), null when
   * there was no request or the chat was not open (stopped, failed) anymore.
   */
  async takeStop(id: string): Promise<string | null> {
    const r = await this.pool.query({
      name: 'chats-take-stop',
      text: `WITH old AS (SELECT id, status, stop_reason FROM chats WHERE id = $1 AND stop_reason IS NOT NULL FOR UPDATE)
             UPDATE chats c SET stop_reason = NULL, updated_at = now(),
               status = CASE WHEN old.status IN ('created', 'in_progress', 'awaiting_input') THEN 'stopped' ELSE old.status END
             FROM old WHERE c.id = old.id
             RETURNING CASE WHEN old.status IN ('created', 'in_progress', 'awaiting_input') THEN old.stop_reason END AS reason`,
      values: [id],
    });
    return (r.rows[0]?.reason as string | null | undefined) ?? null;
  }

  async stopRequested(id: string): Promise<boolean> {
    const r = await this.pool.query({ name: 'chats-stop-requested', text: 'SELECT stop_reason FROM chats WHERE id = $1', values: [id] });
    return r.rows[0]?.stop_reason != null;
  }

  /** Move to `to` only from one of `from` (a conditional update; false when it did not apply). */
  async transition(id: string, from: ChatStatus[], to: ChatStatus): Promise<boolean> {
    const r = await this.prisma.chat.updateMany({ where: { id, status: { in: from } }, data: { status: to } });
    return r.count === 1;
  }

  async update(id: string, data: Prisma.ChatUpdateInput): Promise<ChatRow> {
    await this.prisma.chat.update({ where: { id }, data, select: { id: true } });
    return (await this.get(id))!;
  }
}

export function toSession(c: ChatRow): ChatSession {
  return {
    chat_id: c.id,
    app_id: c.appId,
    user_id: c.userId,
    workflow_name: c.workflowName,
    status: c.status as ChatStatus,
    created_at: c.createdAt.toISOString(),
    updated_at: c.updatedAt.toISOString(),
    last_index: c.lastIndex,
  };
}

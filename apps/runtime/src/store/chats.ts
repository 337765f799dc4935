import { randomUUID } from 'node:crypto';
import type { Pool } from 'pg';
import type { ChatSession, ChatStatus } from '@tessera/contracts';
import { Prisma, type PrismaClient } from '../../prisma/generated/client';
import { cacheSeedOf } from '../domain/context';

export type ChatRow = Prisma.ChatGetPayload<object>;

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
const COLUMNS = `id, app_id AS "appId", user_id AS "userId", workflow_name AS "workflowName", status, mode, cache_seed AS "cacheSeed",
  client_request_id AS "clientRequestId", context, state, last_index AS "lastIndex", last_artifact AS "lastArtifact",
  artifact_index AS "artifactIndex", usage, created_at AS "createdAt", updated_at AS "updatedAt"`;

export class ChatStore {
  /** Reads and writes of every turn run as prepared pg statements on `pool` (see InputStore). */
  constructor(
    private readonly prisma: PrismaClient,
    private readonly pool: Pool,
  ) {}

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
      const chat = await this.prisma.chat.create({
        data: {
          id,
          appId: s.appId,
          userId: s.userId,
          workflowName: s.workflowName,
          clientRequestId: key,
          cacheSeed: cacheSeedOf(id),
          context: s.context as Prisma.InputJsonValue,
          state: s.state as Prisma.InputJsonValue,
        },
      });
      return { chat, reused: false };
    } catch (e) {
      if (key && e instanceof Prisma.PrismaClientKnownRequestError && e.code === 'P2002') {
        const found = await this.byRequest(s.appId, s.userId, s.workflowName, key);
        if (found) return { chat: found, reused: true };
      }
      throw e;
    }
  }

  private byRequest(appId: string, userId: string, workflowName: string, clientRequestId: string) {
    return this.prisma.chat.findUnique({
      where: { appId_userId_workflowName_clientRequestId: { appId, userId, workflowName, clientRequestId } },
    });
  }

  async get(id: string): Promise<ChatRow | null> {
    const r = await this.pool.query({ name: 'chats-get', text: `SELECT ${COLUMNS} FROM chats WHERE id = $1`, values: [id] });
    return (r.rows[0] as ChatRow | undefined) ?? null;
  }

  async listForUser(appId: string, userId: string, limit = 100): Promise<ChatSession[]> {
    const rows = await this.prisma.chat.findMany({ where: { appId, userId }, orderBy: { updatedAt: 'desc' }, take: limit });
    return rows.map(toSession);
  }

  /** The most recently updated chat that is still in progress. */
  async recent(appId: string, userId: string): Promise<ChatRow | null> {
    return this.prisma.chat.findFirst({ where: { appId, userId, status: { in: OPEN_STATUSES } }, orderBy: { updatedAt: 'desc' } });
  }

  async setStatus(id: string, status: ChatStatus): Promise<void> {
    await this.pool.query({ name: 'chats-status', text: 'UPDATE chats SET status = $2, updated_at = now() WHERE id = $1', values: [id, status] });
  }

  /** What a finished turn leaves: the conversation state, usage, status and last artifact. */
  async saveTurn(id: string, t: { state: unknown; usage: unknown; status: ChatStatus; lastArtifact?: Record<string, unknown> | null }): Promise<void> {
    await this.pool.query({
      name: 'chats-save-turn',
      text: 'UPDATE chats SET state = $2, usage = $3, status = $4, last_artifact = COALESCE($5, last_artifact), updated_at = now() WHERE id = $1',
      values: [id, JSON.stringify(t.state), JSON.stringify(t.usage), t.status, t.lastArtifact ? JSON.stringify(t.lastArtifact) : null],
    });
  }

  /** Move to `to` only from one of `from` (a conditional update; false when it did not apply). */
  async transition(id: string, from: ChatStatus[], to: ChatStatus): Promise<boolean> {
    const r = await this.prisma.chat.updateMany({ where: { id, status: { in: from } }, data: { status: to } });
    return r.count === 1;
  }

  update(id: string, data: Prisma.ChatUpdateInput) {
    return this.prisma.chat.update({ where: { id }, data });
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

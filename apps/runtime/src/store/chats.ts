import { randomUUID } from 'node:crypto';
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
export class ChatStore {
  constructor(private readonly prisma: PrismaClient) {}

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

  get(id: string): Promise<ChatRow | null> {
    return this.prisma.chat.findUnique({ where: { id } });
  }

  async listForUser(appId: string, userId: string, limit = 100): Promise<ChatSession[]> {
    const rows = await this.prisma.chat.findMany({ where: { appId, userId }, orderBy: { updatedAt: 'desc' }, take: limit });
    return rows.map(toSession);
  }

  /** The most recently updated chat that is still in progress. */
  async recent(appId: string, userId: string): Promise<ChatRow | null> {
    return this.prisma.chat.findFirst({ where: { appId, userId, status: { in: OPEN_STATUSES } }, orderBy: { updatedAt: 'desc' } });
  }

  setStatus(id: string, status: ChatStatus) {
    return this.prisma.chat.update({ where: { id }, data: { status } });
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

import { Prisma, type PrismaClient } from '../../prisma/generated/client';

export type ToolCallRow = Prisma.ToolCallGetPayload<object>;

/** UI tool calls; one awaiting a response is answered once, over the socket or HTTP. */
export class ToolCallStore {
  constructor(private readonly prisma: PrismaClient) {}

  record(r: { eventId: string; chatId: string; toolCallId: string; toolName: string; agent: string; awaiting: boolean }) {
    return this.prisma.toolCall.upsert({
      where: { eventId: r.eventId },
      create: { ...r, status: r.awaiting ? 'awaiting' : 'displayed' },
      update: {},
    });
  }

  /** By event_id, or by tool_call_id within a chat. */
  async find(id: string, chatId?: string): Promise<ToolCallRow | null> {
    const byEvent = await this.prisma.toolCall.findUnique({ where: { eventId: id } });
    if (byEvent && (!chatId || byEvent.chatId === chatId)) return byEvent;
    if (!chatId) return null;
    return this.prisma.toolCall.findFirst({ where: { chatId, toolCallId: id }, orderBy: { createdAt: 'desc' } });
  }

  /** Awaiting calls of a chat are dismissed (stop, or a new message that supersedes them). */
  async dismissAwaiting(chatId: string): Promise<ToolCallRow[]> {
    const rows = await this.prisma.toolCall.findMany({ where: { chatId, status: 'awaiting' } });
    if (rows.length) await this.prisma.toolCall.updateMany({ where: { chatId, status: 'awaiting' }, data: { status: 'dismissed' } });
    return rows;
  }

  /** Awaiting calls made by earlier runs of a turn (event ids starting with `prefix`), dismissed. */
  async dismissAwaitingFrom(chatId: string, prefix: string): Promise<ToolCallRow[]> {
    const where = { chatId, status: 'awaiting', eventId: { startsWith: prefix } };
    const rows = await this.prisma.toolCall.findMany({ where });
    if (rows.length) await this.prisma.toolCall.updateMany({ where, data: { status: 'dismissed' } });
    return rows;
  }

  async awaitingIds(chatId: string): Promise<string[]> {
    const rows = await this.prisma.toolCall.findMany({ where: { chatId, status: 'awaiting' }, select: { eventId: true }, orderBy: { createdAt: 'asc' } });
    return rows.map((r) => r.eventId);
  }
}

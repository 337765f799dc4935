import type { Prisma, PrismaClient } from '../../prisma/generated/client';

export type AttachmentRow = Prisma.AttachmentGetPayload<object>;

/** An attachment's listing: its row without the bytes. */
export type AttachmentEntry = Omit<AttachmentRow, 'data' | 'chatId' | 'intent' | 'bundlePath'>;

/**
 * Attachments kept in the runtime's database (bytea): the uploads of DOCUMENTS_URL=off. With the
 * document server, a chat's files are there instead (attachments/chat-attachments.ts reads both).
 */
export class AttachmentStore {
  constructor(private readonly prisma: PrismaClient) {}

  async add(a: Omit<AttachmentRow, 'createdAt'>): Promise<void> {
    await this.prisma.attachment.create({ data: a });
  }

  /** A chat's attachments, newest first. */
  list(chatId: string): Promise<AttachmentEntry[]> {
    return this.prisma.attachment.findMany({
      where: { chatId },
      select: { id: true, filename: true, contentType: true, size: true, uploadedBy: true, createdAt: true },
      orderBy: { createdAt: 'desc' },
    });
  }

  /** One attachment of the chat, with its bytes. */
  find(chatId: string, attachmentId: string): Promise<AttachmentRow | null> {
    return this.prisma.attachment.findFirst({ where: { id: attachmentId, chatId } });
  }
}

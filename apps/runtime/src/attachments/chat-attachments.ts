import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { documents } from '@tessera/contracts';
import type { AttachmentStore } from '../store/attachments';
import type { ChatRow } from '../store/chats';
import type { DocumentClient } from './document-client';

/**
 * The document-server tag that marks a chat's attachments: `chat-<id>` when the id is a valid
 * tag body (UUIDs, which the runtime gives chats), else `chat-h<first 40 hex of its SHA-256>`,
 * so any chat id maps to one valid tag.
 */
export function chatTag(chatId: string): string {
  const plain = `chat-${chatId}`;
  return documents.TAG_PATTERN.test(plain) ? plain : `chat-h${createHash('sha256').update(chatId).digest('hex').slice(0, 40)}`;
}

export interface ChatAttachment {
  attachment_id: string;
  /** The document server's id (null: stored in the runtime's database, DOCUMENTS_URL off at the time). */
  document_id: string | null;
  filename: string;
  content_type: string;
  size: number;
  uploaded_by: string;
  created_at: string;
}

/**
 * What agents (and anything else in the runtime) read of a chat's attachments: those in the
 * document server tagged with the chat, and those uploaded while it was off (bytea rows).
 */
export class ChatAttachments {
  constructor(
    private readonly rows: AttachmentStore,
    private readonly docs: DocumentClient | null,
  ) {}

  async list(chat: Pick<ChatRow, 'id' | 'appId'>): Promise<ChatAttachment[]> {
    const legacy = await this.rows.list(chat.id);
    const stored = this.docs ? await this.docs.list(chat.appId, chatTag(chat.id)) : [];
    return [
      ...stored.map((d) => ({ attachment_id: d.id, document_id: d.id, filename: d.filename, content_type: d.content_type, size: d.size, uploaded_by: d.uploaded_by, created_at: d.created_at })),
      ...legacy.map((a) => ({ attachment_id: a.id, document_id: null, filename: a.filename, content_type: a.contentType, size: a.size, uploaded_by: a.uploadedBy, created_at: a.createdAt.toISOString() })),
    ];
  }

  /** An attachment's bytes, streamed; null when the chat has no such attachment. */
  async open(chat: Pick<ChatRow, 'id' | 'appId'>, attachmentId: string): Promise<{ attachment: ChatAttachment; body: Readable } | null> {
    if (this.docs && documents.DocumentId.safeParse(attachmentId).success) {
      const d = await this.docs.metadata(attachmentId);
      // The service key reaches every app: the chat's app and tag are what bound an agent's read.
      if (d && d.app_id === chat.appId && d.tags.includes(chatTag(chat.id))) {
        const attachment = { attachment_id: d.id, document_id: d.id, filename: d.filename, content_type: d.content_type, size: d.size, uploaded_by: d.uploaded_by, created_at: d.created_at };
        return { attachment, body: await this.docs.read(d.id) };
      }
    }
    const a = await this.rows.find(chat.id, attachmentId);
    if (!a) return null;
    const attachment = { attachment_id: a.id, document_id: null, filename: a.filename, content_type: a.contentType, size: a.size, uploaded_by: a.uploadedBy, created_at: a.createdAt.toISOString() };
    return { attachment, body: Readable.from([Buffer.from(a.data)]) };
  }
}

import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import type { IncomingMessage } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { UploadFields } from '@tessera/contracts';
import { BadRequest, lastValues, parseOr400, receiveMultipart } from '@tessera/kit';
import type { z } from 'zod';
import type { ChatRow } from '../store/chats';
import { chatTag } from './chat-attachments';
import type { DocumentClient, StoredDocument } from './document-client';

type Fields = z.infer<typeof UploadFields>;
const ChatFields = UploadFields.pick({ appId: true, userId: true, chatId: true });
type Stored = { chat: ChatRow; doc: StoredDocument };

export interface RelayOptions {
  maxBytes: number;
  /** The chat the fields name, if the caller may use it (throws otherwise). */
  authorize: (f: z.infer<typeof ChatFields>) => Promise<ChatRow>;
}

/** The file part: streamed straight through, or spooled to disk until the fields are known. */
type FilePart = ({ kind: 'streamed' } & Stored) | { kind: 'spooled'; filename: string; dir: string; size: number };

/**
 * `POST /api/chat/upload` relayed to the document server without holding the file in memory.
 * When the chat's fields (appId, userId, chatId) come before the file, as a FormData built in
 * that order sends them, the file streams through as it arrives, once the chat is checked. When
 * the file comes first nothing can be checked yet: it is spooled to a temporary file (disk,
 * bounded by the limit) and sent once the fields are known. A refusal, the size limit or an
 * abort leaves no document behind.
 */
export async function relayUpload(req: IncomingMessage, docs: DocumentClient, opts: RelayOptions): Promise<{ fields: Fields } & Stored> {
  const received = await receiveMultipart<FilePart>(req, {
    maxFileBytes: opts.maxBytes,
    onFile: async (body, info, sent) => {
      const filename = info.filename || 'upload';
      const early = ChatFields.safeParse(lastValues(sent));
      if (early.success) {
        const chat = await opts.authorize(early.data);
        return { kind: 'streamed', chat, doc: await docs.upload({ appId: chat.appId, uploadedBy: early.data.userId, tags: [chatTag(chat.id)], filename, body }) };
      }
      const dir = await mkdtemp(join(tmpdir(), 'tessera-upload-'));
      let size = 0;
      const count = new Transform({ transform: (chunk: Buffer, _e, cb) => ((size += chunk.length), cb(null, chunk)) });
      try {
        await pipeline(body, count, createWriteStream(join(dir, 'file')));
      } catch (e) {
        await removeSpool(dir);
        throw e;
      }
      return { kind: 'spooled', filename, dir, size };
    },
    undo: (f) => (f.kind === 'streamed' ? docs.delete(f.doc.id) : removeSpool(f.dir)),
  });

  const f = received.file;
  const form = lastValues(received.fields);
  if (f?.kind === 'streamed') {
    try {
      // Fields sent after the file (intent, bundle_path) are checked now; a bad one takes the document back.
      return { fields: parseOr400(UploadFields, form, 'form'), chat: f.chat, doc: f.doc };
    } catch (e) {
      await docs.delete(f.doc.id).catch(() => undefined);
      throw e;
    }
  }
  try {
    const fields = parseOr400(UploadFields, form, 'form');
    if (!f) throw new BadRequest('invalid form: file: a file is required', { issues: [{ path: 'form.file', message: 'required' }] });
    const chat = await opts.authorize(fields);
    const doc = await docs.upload({ appId: chat.appId, uploadedBy: fields.userId, tags: [chatTag(chat.id)], filename: f.filename, body: createReadStream(join(f.dir, 'file')), size: f.size });
    return { fields, chat, doc };
  } finally {
    if (f) await removeSpool(f.dir);
  }
}

const removeSpool = (dir: string) => rm(dir, { recursive: true, force: true }).catch(() => undefined);

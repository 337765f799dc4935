import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import type { IncomingMessage } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import busboy from 'busboy';
import { UploadFields } from '@tessera/contracts';
import { BadRequest, parseOr400, TooLarge } from '@tessera/kit';
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

/** The client went away mid-upload: nobody to answer. */
export class UploadAborted extends Error {}

/** The file part: streamed straight through, or spooled to disk until the fields are known. */
type FilePart = { kind: 'streamed'; stored: Promise<Stored> } | { kind: 'spooled'; filename: string; dir: Promise<string>; written: Promise<number> };

/**
 * `POST /api/chat/upload` relayed to the document server without holding the file in memory.
 * When the chat's fields (appId, userId, chatId) come before the file, as a FormData built in
 * that order sends them, the file streams through as it arrives, once the chat is checked. When
 * the file comes first nothing can be checked yet: it is spooled to a temporary file (disk,
 * bounded by the limit) and sent once the fields are known. A refusal, the size limit or an
 * abort leaves no document behind.
 */
export async function relayUpload(req: IncomingMessage, docs: DocumentClient, opts: RelayOptions): Promise<{ fields: Fields } & Stored> {
  let bb: busboy.Busboy;
  try {
    bb = busboy({ headers: req.headers, defParamCharset: 'utf8', limits: { fileSize: opts.maxBytes + 1, files: 1, fields: 10 } });
  } catch (e) {
    throw new BadRequest(`invalid multipart body: ${(e as Error).message}`);
  }
  const form: Record<string, string> = {};
  let file: FilePart | null = null;
  let fileStream: Readable | null = null;

  const parsed = new Promise<void>((resolve, reject) => {
    let failed = false;
    const fail = (e: unknown) => {
      if (failed) return;
      failed = true;
      req.unpipe(bb);
      // Ends whatever is reading the file part: the relay to the document server aborts with it.
      fileStream?.destroy(e as Error);
      reject(e);
    };
    bb.on('field', (name, value) => (form[name] = value));
    bb.on('file', (name, stream, info) => {
      stream.on('error', () => undefined);
      if (name !== 'file' || file) {
        stream.resume();
        return fail(new BadRequest(`invalid form: ${name}: only one file, in the field "file", is accepted`));
      }
      fileStream = stream;
      const body = stream.pipe(sizeLimit(opts.maxBytes));
      stream.on('error', (e) => body.destroy(e));
      const filename = info.filename ?? 'upload';
      const early = ChatFields.safeParse(form);
      if (early.success) {
        const stored = opts.authorize(early.data).then(async (chat) => ({ chat, doc: await docs.upload({ appId: chat.appId, uploadedBy: early.data.userId, tags: [chatTag(chat.id)], filename, body }) }));
        file = { kind: 'streamed', stored };
        stored.catch(fail);
      } else {
        const dir = mkdtemp(join(tmpdir(), 'tessera-upload-'));
        let size = 0;
        const count = new Transform({ transform: (chunk: Buffer, _e, cb) => ((size += chunk.length), cb(null, chunk)) });
        const written = dir.then((d) => pipeline(body, count, createWriteStream(join(d, 'file')))).then(() => size);
        file = { kind: 'spooled', filename, dir, written };
        written.catch(fail);
      }
    });
    bb.on('error', (e: Error) => fail(new BadRequest(`invalid multipart body: ${String(e.message).slice(0, 200)}`)));
    bb.on('close', () => resolve());
    req.on('close', () => {
      if (!req.complete) fail(new UploadAborted('the client closed the connection during the upload'));
    });
    req.pipe(bb);
  });

  const part = () => file as FilePart | null;
  let doc: StoredDocument | null = null;
  try {
    await parsed;
    const f = part();
    if (f?.kind === 'streamed') {
      const r = await f.stored;
      doc = r.doc;
      // Fields sent after the file (intent, bundle_path) are checked now; a bad one takes the document back.
      return { fields: parseOr400(UploadFields, form, 'form'), ...r };
    }
    const fields = parseOr400(UploadFields, form, 'form');
    if (!f) throw new BadRequest('invalid form: file: a file is required', { issues: [{ path: 'form.file', message: 'required' }] });
    const size = await f.written;
    const chat = await opts.authorize(fields);
    doc = await docs.upload({ appId: chat.appId, uploadedBy: fields.userId, tags: [chatTag(chat.id)], filename: f.filename, body: createReadStream(join(await f.dir, 'file')), size });
    return { fields, chat, doc };
  } catch (e) {
    // A document stored just before the refusal (or an abort after the file's last byte) goes.
    const f = part();
    const late = f?.kind === 'streamed' ? await f.stored.then((r) => r.doc, () => null) : null;
    for (const d of new Set([doc?.id, late?.id])) if (d) await docs.delete(d).catch(() => undefined);
    throw e;
  } finally {
    const f = part();
    if (f?.kind === 'spooled') await rm(await f.dir.catch(() => ''), { recursive: true, force: true }).catch(() => undefined);
  }
}

function sizeLimit(max: number): Transform {
  let size = 0;
  return new Transform({
    transform(chunk: Buffer, _enc, cb) {
      size += chunk.length;
      cb(size > max ? new TooLarge(`file is larger than ${max} bytes`) : null, chunk);
    },
  });
}

import { createHash } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { receiveMultipart } from '@tessera/kit';
import type { BlobStore, BlobWriter } from '../blobs/blob-store';
import { SNIFF_BYTES } from '../domain/content-type';

/** A file received whole into the blob store under a temporary name, with what was learnt on the way. */
export interface ReceivedFile {
  /** As the client sent it (unsanitized). */
  filename: string;
  size: number;
  sha256: string;
  /** The first bytes, for sniffing the type. */
  head: Buffer;
  writer: BlobWriter;
}

export interface Received {
  /** Every text field, in the order sent; a repeated name keeps every value. */
  fields: Map<string, string[]>;
  file: ReceivedFile | null;
}

export interface ReceiveOptions {
  maxBytes: number;
  /** Runs as each field arrives; a throw refuses the upload at once (a wrong app before a long file). */
  onField?: (name: string, value: string) => void;
}

/**
 * Reads a multipart upload with one `file` part (the kit's receiver), streaming the file into the
 * blob store while hashing and counting it: memory holds one chunk in flight and the first
 * SNIFF_BYTES, whatever the file's size. On any failure (a limit, a malformed body, the client
 * leaving, the store failing) the temporary blob is discarded before the promise rejects.
 */
export function receiveUpload(req: IncomingMessage, store: BlobStore, opts: ReceiveOptions): Promise<Received> {
  return receiveMultipart(req, {
    maxFileBytes: opts.maxBytes,
    maxFields: 20,
    maxParts: 30,
    onField: opts.onField,
    onFile: (stream, info) => receiveFile(stream, info.filename, store),
    undo: (f) => f.writer.discard(),
  });
}

async function receiveFile(stream: Readable, filename: string, store: BlobStore): Promise<ReceivedFile> {
  const writer = await store.writer();
  const hash = createHash('sha256');
  let size = 0;
  const head: Buffer[] = [];
  let headLength = 0;
  const tap = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      hash.update(chunk);
      size += chunk.length;
      if (headLength < SNIFF_BYTES) {
        const part = chunk.subarray(0, SNIFF_BYTES - headLength);
        head.push(Buffer.from(part));
        headLength += part.length;
      }
      cb(null, chunk);
    },
  });
  try {
    await pipeline(stream, tap, writer.stream);
    await writer.stored();
  } catch (e) {
    await writer.discard().catch(() => undefined);
    throw e;
  }
  return { filename, size, sha256: hash.digest('hex'), head: Buffer.concat(head), writer };
}

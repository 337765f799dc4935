import { createHash } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import busboy from 'busboy';
import { BadRequest, TooLarge } from '@tessera/kit';
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

/** The client went away before its body ended: there is nobody to answer. */
export class ClientGone extends Error {}

/**
 * Reads a multipart upload with one `file` part, streaming the file into the blob store while
 * hashing and counting it: memory holds one chunk in flight and the first SNIFF_BYTES, whatever
 * the file's size. On any failure (a limit, a malformed body, the client leaving, the store
 * failing) the temporary blob is discarded before the promise rejects.
 */
export function receiveUpload(req: IncomingMessage, store: BlobStore, opts: ReceiveOptions): Promise<Received> {
  let bb: busboy.Busboy;
  try {
    // One byte over the limit reaches the counter below, which refuses it (busboy would truncate silently).
    bb = busboy({ headers: req.headers, defParamCharset: 'utf8', limits: { fileSize: opts.maxBytes + 1, files: 1, fields: 20, fieldSize: 64 * 1024, parts: 30 } });
  } catch (e) {
    return Promise.reject(new BadRequest(`invalid multipart body: ${(e as Error).message}`));
  }
  const fields = new Map<string, string[]>();
  let writer: BlobWriter | null = null;
  let file: Promise<ReceivedFile> | null = null;
  let failed: Error | null = null;

  return new Promise<Received>((resolve, reject) => {
    const fail = (e: Error) => {
      if (failed) return;
      failed = e;
      req.unpipe(bb);
      bb.removeAllListeners('file');
      const w = writer;
      Promise.resolve(w?.discard())
        .catch(() => undefined)
        .then(() => reject(e));
    };
    const tooMany = (what: string) => () => fail(new BadRequest(`invalid multipart body: too many ${what}`));

    bb.on('field', (name, value, info) => {
      if (info.valueTruncated) return fail(new BadRequest(`invalid form: ${name}: longer than 64 KiB`));
      fields.set(name, [...(fields.get(name) ?? []), value]);
      try {
        opts.onField?.(name, value);
      } catch (e) {
        fail(e as Error);
      }
    });
    bb.on('file', (name, stream, info) => {
      // busboy destroys the part with its error when the body breaks, possibly before the pipeline below listens.
      stream.on('error', () => undefined);
      if (name !== 'file' || file) {
        stream.resume();
        return fail(new BadRequest(`invalid form: ${name}: only one file, in the field "file", is accepted`));
      }
      file = receiveFile(stream, info.filename ?? '', store, opts.maxBytes, (w) => {
        writer = w;
        // Refused while the store was opening the temporary blob: it goes at once.
        if (failed) void w.discard().catch(() => undefined);
      });
      file.catch(fail);
    });
    bb.on('filesLimit', tooMany('files'));
    bb.on('fieldsLimit', tooMany('fields'));
    bb.on('partsLimit', tooMany('parts'));
    bb.on('error', (e: Error) => fail(e instanceof BadRequest || e instanceof TooLarge ? e : new BadRequest(`invalid multipart body: ${String(e.message).slice(0, 200)}`)));
    bb.on('close', () => {
      if (failed) return;
      Promise.resolve(file).then(
        (f) => (failed ? undefined : resolve({ fields, file: f ?? null })),
        () => undefined /* failed already */,
      );
    });
    // Closed before the whole body arrived: an aborted upload.
    req.on('close', () => {
      if (!req.complete) fail(new ClientGone('the client closed the connection during the upload'));
    });
    req.on('error', () => fail(new ClientGone('the upload connection failed')));
    req.pipe(bb);
  });
}

async function receiveFile(stream: Readable, filename: string, store: BlobStore, maxBytes: number, started: (w: BlobWriter) => void): Promise<ReceivedFile> {
  const writer = await store.writer();
  started(writer);
  const hash = createHash('sha256');
  let size = 0;
  const head: Buffer[] = [];
  let headLength = 0;
  const tooLarge = () => new TooLarge(`the file is larger than ${maxBytes} bytes`);
  const tap = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      hash.update(chunk);
      size += chunk.length;
      if (headLength < SNIFF_BYTES) {
        const part = chunk.subarray(0, SNIFF_BYTES - headLength);
        head.push(Buffer.from(part));
        headLength += part.length;
      }
      if (size > maxBytes) return cb(tooLarge());
      cb(null, chunk);
    },
  });
  await pipeline(stream, tap, writer.stream);
  await writer.stored();
  return { filename, size, sha256: hash.digest('hex'), head: Buffer.concat(head), writer };
}

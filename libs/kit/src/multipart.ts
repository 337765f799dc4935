import type { IncomingMessage } from 'node:http';
import { Transform, type Readable } from 'node:stream';
import busboy from 'busboy';
import { BadRequest, HttpError, TooLarge } from './errors';

/** The client went away before its body ended: there is nobody to answer. */
export class ClientGone extends Error {}

export interface MultipartOptions<T> {
  /** The file's limit: a larger one is a 413 while it streams. */
  maxFileBytes: number;
  /** At most this many text fields (default 10), each at most `maxFieldBytes` (default 64 KiB), and `maxParts` parts in all. */
  maxFields?: number;
  maxFieldBytes?: number;
  maxParts?: number;
  /** Runs as each text field arrives; a throw refuses the body at once (a wrong app before a long file). */
  onField?: (name: string, value: string) => void;
  /**
   * Takes the one file part, named `file`, as it streams: the stream fails with a TooLarge past
   * `maxFileBytes`, and with the upload's error when the body breaks or another part is refused.
   * `fields` are those that came before it. The upload settles only once what this returns has
   * settled, so that it can take back what it stored first.
   */
  onFile: (file: Readable, info: { filename: string; mimeType: string }, fields: ReadonlyMap<string, string[]>) => Promise<T>;
  /** Takes back what `onFile` made when the upload fails after it (a later part refused, the client gone). */
  undo?: (file: T) => Promise<unknown>;
}

export interface MultipartBody<T> {
  /** Every text field, in the order sent; a repeated name keeps every value. */
  fields: Map<string, string[]>;
  /** What `onFile` made of the file, or null when there was none. */
  file: T | null;
}

/** The text fields as one object, a repeated name taken at its last value (for a zod schema of the form). */
export const lastValues = (fields: ReadonlyMap<string, string[]>): Record<string, string> => Object.fromEntries([...fields].map(([k, v]) => [k, v[v.length - 1]]));

/**
 * Reads a `multipart/form-data` request with at most one file part (busboy, streaming: memory
 * holds what `onFile` keeps). Every fault of the body is a 400 naming it, a file past the limit a
 * 413, a client that leaves a ClientGone; `onFile`'s own failure is the upload's.
 */
export function receiveMultipart<T>(req: IncomingMessage, opts: MultipartOptions<T>): Promise<MultipartBody<T>> {
  const maxFieldBytes = opts.maxFieldBytes ?? 64 * 1024;
  let bb: busboy.Busboy;
  try {
    // One byte over the limit reaches the counter below, which refuses it (busboy would truncate silently).
    bb = busboy({
      headers: req.headers,
      defParamCharset: 'utf8',
      limits: { fileSize: opts.maxFileBytes + 1, files: 1, fields: opts.maxFields ?? 10, fieldSize: maxFieldBytes, parts: opts.maxParts ?? (opts.maxFields ?? 10) + 10 },
    });
  } catch (e) {
    return Promise.reject(new BadRequest(`invalid multipart body: ${(e as Error).message}`));
  }
  const fields = new Map<string, string[]>();
  let file: Promise<T> | null = null;
  let fileStream: Readable | null = null;
  let failed = false;

  return new Promise<MultipartBody<T>>((resolve, reject) => {
    const fail = (e: Error) => {
      if (failed) return;
      failed = true;
      req.unpipe(bb);
      bb.removeAllListeners('file');
      // Ends whatever reads the file part; the upload rejects once it has settled.
      fileStream?.destroy(e);
      const taken = file;
      Promise.resolve(taken && taken.then((made) => opts.undo?.(made)))
        .catch(() => undefined)
        .then(() => reject(e));
    };
    const tooMany = (what: string) => () => fail(new BadRequest(`invalid multipart body: too many ${what}`));

    bb.on('field', (name, value, info) => {
      if (info.valueTruncated) return fail(new BadRequest(`invalid form: ${name}: longer than ${Math.floor(maxFieldBytes / 1024)} KiB`));
      fields.set(name, [...(fields.get(name) ?? []), value]);
      try {
        opts.onField?.(name, value);
      } catch (e) {
        fail(e as Error);
      }
    });
    bb.on('file', (name, stream, info) => {
      // busboy destroys the part with its error when the body breaks, possibly before anything listens.
      stream.on('error', () => undefined);
      if (name !== 'file' || file) {
        stream.resume();
        return fail(new BadRequest(`invalid form: ${name}: only one file, in the field "file", is accepted`));
      }
      const limited = stream.pipe(sizeLimit(opts.maxFileBytes));
      stream.on('error', (e) => limited.destroy(e));
      // Its reader may not have started when the upload fails: the error is for that reader, not the process.
      limited.on('error', () => undefined);
      fileStream = limited;
      file = opts.onFile(limited, { filename: info.filename ?? '', mimeType: info.mimeType }, new Map(fields));
      file.catch(fail);
    });
    bb.on('filesLimit', tooMany('files'));
    bb.on('fieldsLimit', tooMany('fields'));
    bb.on('partsLimit', tooMany('parts'));
    bb.on('error', (e: Error) => fail(e instanceof HttpError ? e : new BadRequest(`invalid multipart body: ${String(e.message).slice(0, 200)}`)));
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

function sizeLimit(max: number): Transform {
  let size = 0;
  return new Transform({
    transform(chunk: Buffer, _enc, cb) {
      size += chunk.length;
      cb(size > max ? new TooLarge(`the file is larger than ${max} bytes`) : null, chunk);
    },
  });
}

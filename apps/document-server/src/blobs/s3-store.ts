import { randomUUID } from 'node:crypto';
import { PassThrough, Readable } from 'node:stream';
import { CopyObjectCommand, DeleteObjectCommand, GetObjectCommand, HeadBucketCommand, HeadObjectCommand, S3Client, type S3ClientConfig } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { blobName, type BlobStore, type BlobWriter, type ByteRange } from './blob-store';

export interface S3Settings {
  bucket: string;
  endpoint?: string;
  region: string;
  credentials?: { accessKeyId: string; secretAccessKey: string };
  forcePathStyle: boolean;
  /** Key prefix inside the bucket (`''` or ending without a slash: one is added). */
  prefix: string;
}

/** Parts of a multipart upload: what one upload holds in memory is about PART_SIZE × QUEUE_SIZE. */
const PART_SIZE = 5 * 1024 * 1024;
const QUEUE_SIZE = 2;

/**
 * Blobs as objects of one bucket (AWS S3 or any S3-compatible store): `<prefix>/blobs/<sha256>`.
 * An upload streams into `<prefix>/tmp/<uuid>` as a multipart upload, then a server-side copy
 * files it under its hash. Every instance configured with the bucket shares every blob.
 */
export class S3BlobStore implements BlobStore {
  readonly kind = 's3' as const;
  private readonly client: S3Client;
  private readonly bucket: string;
  private readonly prefix: string;

  constructor(s: S3Settings) {
    const config: S3ClientConfig = {
      region: s.region,
      endpoint: s.endpoint,
      forcePathStyle: s.forcePathStyle,
      credentials: s.credentials,
      // Checksums only where S3 requires them: several S3-compatible stores refuse the
      // aws-chunked trailers the SDK would otherwise add to every upload.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    };
    this.client = new S3Client(config);
    this.bucket = s.bucket;
    this.prefix = s.prefix ? `${s.prefix.replace(/\/+$/, '')}/` : '';
  }

  private key(sha256: string): string {
    return `${this.prefix}blobs/${blobName(sha256)}`;
  }

  async writer(): Promise<BlobWriter> {
    const tmpKey = `${this.prefix}tmp/${randomUUID()}`;
    const stream = new PassThrough();
    const upload = new Upload({ client: this.client, params: { Bucket: this.bucket, Key: tmpKey, Body: stream }, partSize: PART_SIZE, queueSize: QUEUE_SIZE, leavePartsOnError: false });
    // Observed at once, so a failure before anyone awaits it is never an unhandled rejection.
    const done = upload.done().then(
      () => null,
      (e: unknown) => e as Error,
    );
    let state: 'writing' | 'stored' | 'filed' | 'discarded' = 'writing';
    const removeTmp = () => this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: tmpKey })).then(() => undefined);
    return {
      stream,
      stored: async () => {
        const err = await done;
        if (err) throw err;
        state = 'stored';
      },
      commit: async (sha256) => {
        if (state !== 'stored') throw new Error('commit before the upload is stored');
        const key = this.key(sha256);
        if (!(await this.exists(sha256))) {
          await this.client.send(new CopyObjectCommand({ Bucket: this.bucket, Key: key, CopySource: `${this.bucket}/${encodeURIComponent(tmpKey).replace(/%2F/g, '/')}` }));
        }
        state = 'filed';
        await removeTmp();
      },
      discard: async () => {
        if (state === 'filed' || state === 'discarded') return;
        const was = state;
        state = 'discarded';
        if (was === 'writing') {
          stream.destroy();
          await upload.abort().catch(() => undefined);
          await done;
        }
        // An aborted multipart upload leaves no object; a finished one (or a small single PUT) does.
        await removeTmp().catch(() => undefined);
      },
    };
  }

  async read(sha256: string, range?: ByteRange): Promise<Readable> {
    const r = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: this.key(sha256), Range: range ? `bytes=${range.start}-${range.end}` : undefined }));
    if (!(r.Body instanceof Readable)) throw new Error('the S3 client returned no stream');
    return r.Body;
  }

  async exists(sha256: string): Promise<boolean> {
    try {
      await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: this.key(sha256) }));
      return true;
    } catch (e) {
      const status = (e as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
      if (status === 404) return false;
      throw e;
    }
  }

  async remove(sha256: string) {
    await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: this.key(sha256) }));
  }

  async check() {
    await this.client.send(new HeadBucketCommand({ Bucket: this.bucket }));
  }

  async close() {
    this.client.destroy();
  }
}

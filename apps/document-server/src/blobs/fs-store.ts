import { randomUUID } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { access, mkdir, open, readdir, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { blobName, type BlobStore, type BlobWriter, type ByteRange } from './blob-store';

/**
 * Blobs as files in one directory: `blobs/ab/<sha256>`, uploads first in `tmp/` on the same
 * filesystem so that filing one is an atomic rename. Instances sharing the directory (one host,
 * or a shared volume) share the blobs.
 */
export class FsBlobStore implements BlobStore {
  readonly kind = 'fs' as const;
  private readonly tmp: string;

  constructor(private readonly dir: string) {
    this.tmp = join(dir, 'tmp');
  }

  /** Creates the folders, and removes uploads a crashed process left in tmp/ (older than `staleMs`). */
  async init(staleMs = 24 * 60 * 60 * 1000): Promise<this> {
    await mkdir(this.tmp, { recursive: true });
    await mkdir(join(this.dir, 'blobs'), { recursive: true });
    const now = Date.now();
    for (const name of await readdir(this.tmp)) {
      const path = join(this.tmp, name);
      const s = await stat(path).catch(() => null);
      if (s && now - s.mtimeMs > staleMs) await rm(path, { force: true });
    }
    return this;
  }

  private path(sha256: string): string {
    const name = blobName(sha256);
    return join(this.dir, 'blobs', name.slice(0, 2), name);
  }

  async writer(): Promise<BlobWriter> {
    const tmpPath = join(this.tmp, randomUUID());
    const stream = createWriteStream(tmpPath, { flags: 'wx' });
    const closed = new Promise<void>((resolve) => stream.once('close', () => resolve()));
    let filed = false;
    return {
      stream,
      stored: () => closed,
      commit: async (sha256) => {
        const target = this.path(sha256);
        await closed;
        await mkdir(join(target, '..'), { recursive: true });
        // Over an existing blob of the same name the bytes are the same: the rename is harmless.
        await rename(tmpPath, target);
        filed = true;
      },
      discard: async () => {
        if (filed) return;
        stream.destroy();
        await closed;
        await rm(tmpPath, { force: true });
      },
    };
  }

  async read(sha256: string, range?: ByteRange) {
    // Opened before the stream is handed out: a missing blob is an error here, not mid-response,
    // and a blob removed meanwhile stays readable through the open descriptor.
    const file = await open(this.path(sha256), 'r');
    return file.createReadStream(range ? { start: range.start, end: range.end } : {});
  }

  async exists(sha256: string) {
    return access(this.path(sha256)).then(
      () => true,
      () => false,
    );
  }

  async remove(sha256: string) {
    await rm(this.path(sha256), { force: true });
  }

  async check() {
    await access(this.tmp);
  }

  async close() {}
}

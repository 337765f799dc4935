import type { Readable, Writable } from 'node:stream';

/** Bytes `start` to `end`, both included (HTTP's Range semantics). */
export interface ByteRange {
  start: number;
  end: number;
}

/**
 * An upload on its way into the store, under a temporary name: its bytes go to `stream` as they
 * arrive (the caller hashes them on the way); once they all are there, `commit` names them by
 * their SHA-256, or `discard` removes them. Nothing under a temporary name is ever read.
 */
export interface BlobWriter {
  readonly stream: Writable;
  /** Resolves once every byte written to `stream` (which the caller has ended) is stored. */
  stored(): Promise<void>;
  /** Files the bytes under `sha256`; when that blob exists already (the same bytes), drops these. */
  commit(sha256: string): Promise<void>;
  /** Removes whatever was written; safe to call at any point, also twice. */
  discard(): Promise<void>;
}

/**
 * Where document bytes live, content-addressed: a blob's name is its SHA-256, so the same bytes
 * uploaded twice are one blob, and instances that share the store (a directory, a bucket) share
 * every blob. Which documents use a blob is the database's business (reference counts).
 */
export interface BlobStore {
  readonly kind: 'fs' | 's3';
  writer(): Promise<BlobWriter>;
  /** The blob's bytes (a range of them), streamed; never buffered whole. */
  read(sha256: string, range?: ByteRange): Promise<Readable>;
  exists(sha256: string): Promise<boolean>;
  remove(sha256: string): Promise<void>;
  /** Readiness: the store answers. */
  check(): Promise<void>;
  close(): Promise<void>;
}

export const SHA256_HEX = /^[0-9a-f]{64}$/;

/** The only names that reach a path or an object key: a SHA-256 in hex, checked again here. */
export function blobName(sha256: string): string {
  if (!SHA256_HEX.test(sha256)) throw new Error('not a SHA-256 blob name');
  return sha256;
}

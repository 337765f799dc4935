import { createAuth, authSettings, Metrics, type DeclaredRoutes, type Logger } from '@tessera/kit';
import type { BlobStore } from './blobs/blob-store';
import { FsBlobStore } from './blobs/fs-store';
import { S3BlobStore } from './blobs/s3-store';
import type { DocumentServerConfig } from './config';
import { createAccess, type DocumentAccess, type ScopeOf } from './domain/access';
import { createDb, type Db } from './store/db';
import { DocumentStore } from './store/documents';

/** A user's apps' documents, and one document its owner's (domain/access.ts). */
export type DocumentRoutes = DeclaredRoutes<DocumentAccess>;

/** The document server's composition root: database, blob store, access rules, with one close() for all. */
export interface DocumentServices {
  config: DocumentServerConfig;
  logger: Logger;
  metrics: Metrics;
  db: Db;
  blobs: BlobStore;
  documents: DocumentStore;
  scopeOf: ScopeOf;
  close(): Promise<void>;
}

export async function createBlobStore(config: DocumentServerConfig): Promise<BlobStore> {
  if (config.BLOB_STORE === 'fs') return new FsBlobStore(config.BLOB_DIR).init();
  return new S3BlobStore({
    bucket: config.S3_BUCKET!,
    endpoint: config.S3_ENDPOINT,
    region: config.S3_REGION,
    forcePathStyle: config.S3_FORCE_PATH_STYLE,
    prefix: config.S3_PREFIX,
    credentials: config.S3_ACCESS_KEY_ID ? { accessKeyId: config.S3_ACCESS_KEY_ID, secretAccessKey: config.S3_SECRET_ACCESS_KEY! } : undefined,
  });
}

export async function createDocumentServices(config: DocumentServerConfig, logger: Logger): Promise<DocumentServices> {
  const blobs = await createBlobStore(config);
  const db = createDb(config.DATABASE_URL, config.DB_POOL_SIZE);
  return {
    config,
    logger,
    metrics: new Metrics('document-server'),
    db,
    blobs,
    documents: new DocumentStore(db),
    scopeOf: createAccess(config, createAuth(authSettings(config))),
    async close() {
      await Promise.allSettled([db.close(), blobs.close()]);
    },
  };
}

import { resolve } from 'node:path';
import { z } from 'zod';
import { BaseEnv, checkBaseEnv, env, loadConfig, withSchema } from '@tessera/kit';

/** The document server's environment. Local defaults make `npm start` work with no .env. */
export const DocumentServerEnv = BaseEnv.extend({
  PORT: env.port(8766),
  DATABASE_URL: z
    .url()
    .default('postgresql://tessera:tessera@127.0.0.1:5432/tessera')
    .transform((u) => withSchema(u, 'document_server')),
  DB_POOL_SIZE: env.int(10, 2),
  /** Largest file accepted; a larger one is a 413 and leaves nothing behind. */
  DOCUMENT_MAX_BYTES: env.int(512 * 1024 * 1024, 1),
  /** `fs` (a directory) or `s3` (any S3-compatible store; instances sharing it share blobs). */
  BLOB_STORE: z.enum(['fs', 's3']).default('fs'),
  /** The fs store's directory; instances on one host (or a shared volume) share it. */
  BLOB_DIR: z.string().default(resolve(__dirname, '../../../.data/documents')),
  S3_BUCKET: z.string().optional(),
  /** Any S3-compatible endpoint (MinIO, R2, s3rver); unset means AWS. */
  S3_ENDPOINT: z.url().optional(),
  S3_REGION: z.string().default('us-east-1'),
  S3_ACCESS_KEY_ID: z.string().optional(),
  S3_SECRET_ACCESS_KEY: z.string().optional(),
  /** Path-style URLs (`endpoint/bucket/key`): what MinIO and most self-hosted stores need. */
  S3_FORCE_PATH_STYLE: env.bool(true),
  /** Key prefix inside the bucket, so one bucket can serve several deployments. */
  S3_PREFIX: z.string().regex(/^[A-Za-z0-9._/-]*$/).default(''),
  /** Token claim holding the caller's roles, and the role that sees every document of its apps (else: one's own uploads). */
  OPERATOR_CLAIM: z.string().min(1).default('roles'),
  OPERATOR_ROLE: z.string().min(1).default('operator'),
})
  .superRefine(checkBaseEnv)
  .superRefine((c, ctx) => {
    if (c.BLOB_STORE === 's3' && !c.S3_BUCKET) ctx.addIssue({ code: 'custom', path: ['S3_BUCKET'], message: 'is required with BLOB_STORE=s3' });
    if ((c.S3_ACCESS_KEY_ID === undefined) !== (c.S3_SECRET_ACCESS_KEY === undefined))
      ctx.addIssue({ code: 'custom', path: ['S3_SECRET_ACCESS_KEY'], message: 'S3_ACCESS_KEY_ID and S3_SECRET_ACCESS_KEY go together (or neither: the AWS default chain)' });
  });
export type DocumentServerConfig = z.infer<typeof DocumentServerEnv>;

export const loadDocumentServerConfig = (e?: Record<string, string | undefined>) => loadConfig(DocumentServerEnv, e);

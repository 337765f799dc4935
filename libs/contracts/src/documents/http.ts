import { z } from 'zod';
import { AppId, UserId } from '../common/ids';
import { TIME_MAX_MS, TIME_MIN_MS, TIME_RANGE_MESSAGE } from '../common/ranges';
import { SafeText } from '../common/safe';

/**
 * Document server (document 001 §3, §4.2): files of an app with tags and a description, stored
 * once per content, streamed in and out. Reached through the gateway at `/api/documents/*`.
 */

/** Letters, digits and hyphens, at most 50 characters; a document has at most 20. */
export const TAG_PATTERN = /^[A-Za-z0-9-]{1,50}$/;
export const MAX_TAGS = 20;
export const Tag = z.string().regex(TAG_PATTERN, 'tags are 1 to 50 letters, digits and hyphens');
/** Kept in the order given, each once. */
export const Tags = z
  .array(Tag)
  .max(MAX_TAGS, `at most ${MAX_TAGS} tags`)
  .transform((t) => [...new Set(t)]);
export const Description = SafeText.pipe(z.string().max(4_000));

export const DocumentId = z.uuid({ message: 'document ids are UUIDs' });

export const Document = z
  .object({
    id: z.string(),
    filename: z.string(),
    content_type: z.string().describe('Sniffed from the bytes (text/plain or application/octet-stream when no format is recognised); the client\'s claim is not used'),
    size: z.number().int(),
    sha256: z.string().describe('Hex SHA-256 of the bytes; also the download\'s ETag'),
    tags: z.array(z.string()),
    description: z.string().nullable(),
    created_at: z.string(),
    updated_at: z.string(),
    uploaded_by: z.string(),
    app_id: z.string(),
  })
  .meta({ id: 'Document' });
export type Document = z.infer<typeof Document>;

/**
 * `POST /documents` multipart fields besides `file`: `tags` (comma-separated, a JSON array, or the
 * field repeated) and `description`, or both inside one `metadata` JSON field (document 001 §3's
 * fields). `app_id` chooses one of the token's apps: a token allowing one app uploads into it
 * without naming it; one allowing several or any app, and the service key, must name it.
 * `uploaded_by` only from a service (the runtime uploading for a user).
 */
export const UploadFields = z.object({
  app_id: AppId.optional().describe("One of the token's apps; needed only when the token allows several (or any), or with the service key"),
  tags: Tags.optional(),
  description: Description.optional(),
  uploaded_by: UserId.optional(),
});
export type UploadFields = z.infer<typeof UploadFields>;
export const UploadMetadata = z.object({ tags: Tags.optional(), description: Description.nullable().optional() }).strict();

export const DocumentParams = z.object({ id: DocumentId });

/**
 * An instant a client hands the server (a cursor's `created_at`), in milliseconds since the
 * epoch: years 0001 to 9999 (common/ranges.ts), which JavaScript's Date and PostgreSQL's
 * timestamptz both hold, so no value a client sends reaches the database out of its range.
 */
export const InstantMs = z.number().int('must be a whole number of milliseconds').min(TIME_MIN_MS, TIME_RANGE_MESSAGE).max(TIME_MAX_MS, TIME_RANGE_MESSAGE);

/** What a list `cursor` is, base64url-decoded and parsed: `[created_at ms, id]` of the previous page's last document. */
export const DocumentsCursor = z.tuple([InstantMs, DocumentId]);
export type DocumentsCursor = z.infer<typeof DocumentsCursor>;
export const MAX_LIST_LIMIT = 200;

/** `GET /documents`: newest first; `cursor` from the previous page's `next_cursor`. */
export const DocumentsQuery = z.object({
  app_id: AppId.optional(),
  tag: z
    .union([Tag, z.array(Tag).max(MAX_TAGS)])
    .optional()
    .describe('Documents holding every tag given (repeat the parameter, or use `tags=a,b`)'),
  tags: SafeText.pipe(z.string().max(1_100)).optional(),
  content_type: SafeText.pipe(z.string().max(255))
    .optional()
    .describe('Exact (`application/pdf`) or a family (`image/*`)'),
  q: SafeText.pipe(z.string().max(256)).optional().describe('Text in the filename or description (case-insensitive)'),
  uploaded_by: UserId.optional(),
  limit: z.coerce.number().int().min(1).max(MAX_LIST_LIMIT).default(50),
  cursor: SafeText.pipe(z.string().max(512)).optional().describe('The previous page\'s `next_cursor`, as given (base64url of `[created_at ms, id]`)'),
});
export type DocumentsQuery = z.infer<typeof DocumentsQuery>;
export const DocumentsReply = z.object({ documents: z.array(Document), next_cursor: z.string().nullable() }).meta({ id: 'DocumentsReply' });

/** `GET /documents/tags`: most used first, then by name. */
export const TagsQuery = z.object({ app_id: AppId.optional() });
export const TagsReply = z.object({ tags: z.array(z.object({ name: z.string(), count: z.number().int() })) }).meta({ id: 'DocumentTagsReply' });

/** `PATCH /documents/{id}`: only the given fields change; `description: null` clears it. */
export const PatchBody = z
  .object({ tags: Tags.optional(), description: Description.nullable().optional() })
  .strict()
  .meta({ id: 'DocumentPatchBody' });
export type PatchBody = z.infer<typeof PatchBody>;

export const DeleteReply = z.object({ success: z.literal(true), id: z.string(), message: z.string() }).meta({ id: 'DocumentDeleteReply' });

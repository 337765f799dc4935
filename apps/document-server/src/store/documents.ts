import type { Pool } from 'pg';
import { documents } from '@tessera/contracts';
import { BadRequest } from '@tessera/kit';
import type { Scope } from '../domain/access';
import { storedFilename } from '../domain/filename';
import type { Db } from './db';

type Document = documents.Document;

interface DocumentRow {
  id: string;
  app_id: string;
  filename: string;
  content_type: string;
  size: string;
  sha256: string;
  tags: string[] | null;
  description: string | null;
  uploaded_by: string;
  created_at: Date;
  updated_at: Date;
}

export function toDocument(r: DocumentRow): Document {
  return {
    id: r.id,
    // Cleaned on the way out too: a name stored before a rule existed is shown as the rule says now.
    filename: storedFilename(r.filename),
    content_type: r.content_type,
    size: Number(r.size),
    sha256: r.sha256,
    tags: r.tags ?? [],
    description: r.description,
    created_at: r.created_at.toISOString(),
    updated_at: r.updated_at.toISOString(),
    uploaded_by: r.uploaded_by,
    app_id: r.app_id,
  };
}

export interface NewDocument {
  id: string;
  appId: string;
  filename: string;
  contentType: string;
  size: number;
  sha256: string;
  tags: string[];
  description: string | null;
  uploadedBy: string;
}

const COLUMNS = 'id, app_id, filename, content_type, size, sha256, tags, description, uploaded_by, created_at, updated_at';

/** The scope as SQL conditions appended to `params`. */
function scopeSql(scope: Scope, params: unknown[]): string {
  const where: string[] = [];
  if (scope.apps !== '*') {
    params.push(scope.apps);
    where.push(`app_id = ANY($${params.length}::text[])`);
  }
  if (scope.uploader !== null) {
    params.push(scope.uploader);
    where.push(`uploaded_by = $${params.length}`);
  }
  return where.length ? where.join(' AND ') : 'TRUE';
}

/** Opaque keyset cursor: the last document's created_at and id. */
function encodeCursor(r: DocumentRow): string {
  return Buffer.from(JSON.stringify([r.created_at.getTime(), r.id])).toString('base64url');
}

/** The cursor a client sent back, checked part by part against the contract: a 400 naming `cursor` and what is wrong, never a value PostgreSQL cannot hold. */
function decodeCursor(c: string): [Date, string] {
  const refuse = (why: string) => new BadRequest(`invalid query: cursor: ${why}`, { issues: [{ path: 'query.cursor', message: why }] });
  let v: unknown;
  try {
    v = JSON.parse(Buffer.from(c, 'base64url').toString('utf8'));
  } catch {
    throw refuse('not a cursor from a previous page');
  }
  const parsed = documents.DocumentsCursor.safeParse(v);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const part = issue.path[0] === 0 ? 'its time' : issue.path[0] === 1 ? 'its id' : null;
    throw refuse(part ? `not a cursor from a previous page (${part} ${issue.message})` : 'not a cursor from a previous page');
  }
  return [new Date(parsed.data[0]), parsed.data[1]];
}

const likePattern = (s: string) => `%${s.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;

/**
 * Documents and the reference counts of their blobs. Every read and write takes the caller's
 * scope. A blob row is locked by whoever adds or drops a reference to it, and the blob itself is
 * filed or removed under that lock: an upload of bytes whose last document is being deleted
 * waits, then files them again.
 */
export class DocumentStore {
  private readonly pool: Pool;

  constructor(private readonly db: Db) {
    this.pool = db.pool;
  }

  /** Records the document, then `file()`s its blob while its reference is locked; nothing is recorded if that fails. */
  async create(d: NewDocument, file: () => Promise<void>): Promise<Document> {
    return this.db.tx(async (c) => {
      await c.query({
        name: 'blob-ref',
        text: 'INSERT INTO blobs (sha256, size, ref_count) VALUES ($1, $2, 1) ON CONFLICT (sha256) DO UPDATE SET ref_count = blobs.ref_count + 1',
        values: [d.sha256, d.size],
      });
      const r = await c.query<DocumentRow>({
        name: 'document-insert',
        text: `INSERT INTO documents (id, app_id, filename, content_type, size, sha256, tags, description, uploaded_by, created_at, updated_at)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, now(), now()) RETURNING ${COLUMNS}`,
        values: [d.id, d.appId, d.filename, d.contentType, d.size, d.sha256, d.tags, d.description, d.uploadedBy],
      });
      await file();
      return toDocument(r.rows[0]);
    });
  }

  async get(scope: Scope, id: string): Promise<Document | null> {
    const params: unknown[] = [id];
    const r = await this.pool.query<DocumentRow>(`SELECT ${COLUMNS} FROM documents WHERE id = $1 AND ${scopeSql(scope, params)}`, params);
    return r.rows[0] ? toDocument(r.rows[0]) : null;
  }

  async list(scope: Scope, q: documents.DocumentsQuery & { allTags: string[] }): Promise<{ documents: Document[]; next_cursor: string | null }> {
    const params: unknown[] = [];
    const where = [scopeSql(scope, params)];
    const add = (sql: (n: number) => string, v: unknown) => {
      params.push(v);
      where.push(sql(params.length));
    };
    if (q.app_id !== undefined) add((n) => `app_id = $${n}`, q.app_id);
    if (q.allTags.length) add((n) => `tags @> $${n}::text[]`, q.allTags);
    if (q.content_type !== undefined) {
      if (q.content_type.endsWith('/*')) add((n) => `content_type LIKE $${n}`, `${q.content_type.slice(0, -1).replace(/[\\%_]/g, (c) => `\\${c}`)}%`);
      else add((n) => `content_type = $${n}`, q.content_type);
    }
    if (q.q !== undefined) add((n) => `(filename ILIKE $${n} OR description ILIKE $${n})`, likePattern(q.q));
    if (q.uploaded_by !== undefined) add((n) => `uploaded_by = $${n}`, q.uploaded_by);
    if (q.cursor !== undefined) {
      const [at, id] = decodeCursor(q.cursor);
      params.push(at, id);
      where.push(`(created_at, id) < ($${params.length - 1}, $${params.length}::uuid)`);
    }
    params.push(q.limit + 1);
    const r = await this.pool.query<DocumentRow>(`SELECT ${COLUMNS} FROM documents WHERE ${where.join(' AND ')} ORDER BY created_at DESC, id DESC LIMIT $${params.length}`, params);
    const rows = r.rows.slice(0, q.limit);
    return { documents: rows.map(toDocument), next_cursor: r.rows.length > q.limit ? encodeCursor(rows[rows.length - 1]) : null };
  }

  /** Every tag of the scope's documents with how many hold it: most used first, then by name. */
  async tags(scope: Scope, appId?: string): Promise<{ name: string; count: number }[]> {
    const params: unknown[] = [];
    let where = scopeSql(scope, params);
    if (appId !== undefined) {
      params.push(appId);
      where += ` AND app_id = $${params.length}`;
    }
    const r = await this.pool.query<{ name: string; count: number }>(
      `SELECT t AS name, count(*)::int AS count FROM documents CROSS JOIN LATERAL unnest(tags) AS t
       WHERE ${where} GROUP BY t ORDER BY count DESC, lower(t) COLLATE "C", t COLLATE "C"`,
      params,
    );
    return r.rows;
  }

  /** Changes only the fields given; `updated_at` always moves forward, also within one millisecond. */
  async patch(scope: Scope, id: string, body: documents.PatchBody): Promise<Document | null> {
    const params: unknown[] = [id, body.tags ?? null, body.description !== undefined, body.description ?? null];
    const r = await this.pool.query<DocumentRow>(
      `UPDATE documents SET
         tags = COALESCE($2::text[], tags),
         description = CASE WHEN $3 THEN $4 ELSE description END,
         updated_at = GREATEST(clock_timestamp(), updated_at + interval '1 millisecond')
       WHERE id = $1 AND ${scopeSql(scope, params)} RETURNING ${COLUMNS}`,
      params,
    );
    return r.rows[0] ? toDocument(r.rows[0]) : null;
  }

  /**
   * Deletes the document; when it held the last reference to its blob, `removeBlob` runs under
   * the blob row's lock before the commit, so a failure there leaves the document in place.
   */
  async delete(scope: Scope, id: string, removeBlob: (sha256: string) => Promise<void>): Promise<boolean> {
    return this.db.tx(async (c) => {
      const params: unknown[] = [id];
      const d = await c.query<{ sha256: string }>(`DELETE FROM documents WHERE id = $1 AND ${scopeSql(scope, params)} RETURNING sha256`, params);
      if (!d.rows[0]) return false;
      const { sha256 } = d.rows[0];
      const b = await c.query<{ ref_count: number }>({ name: 'blob-unref', text: 'UPDATE blobs SET ref_count = ref_count - 1 WHERE sha256 = $1 RETURNING ref_count', values: [sha256] });
      if (b.rows[0] && b.rows[0].ref_count <= 0) {
        await c.query({ name: 'blob-delete', text: 'DELETE FROM blobs WHERE sha256 = $1', values: [sha256] });
        await removeBlob(sha256);
      }
      return true;
    });
  }
}

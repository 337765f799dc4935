import { pipeline } from 'node:stream/promises';
import type { Request, Response } from 'express';
import rangeParser from 'range-parser';
import { documents } from '@tessera/contracts';
import { HttpError, NotFound, parseOr400 } from '@tessera/kit';
import { z } from 'zod';
import { assertApp } from '../domain/access';
import { dispositionHeader, inlineSafe } from '../domain/filename';
import type { DocumentRoutes, DocumentServices } from '../services';

const Params = documents.DocumentParams;
const missing = { 404: { description: 'no such document among those the token reaches' } };
const DownloadQuery = z.object({ disposition: z.enum(['attachment', 'inline']).default('attachment') });

const notFound = (id: string) => new NotFound(`no document "${id}"`);

/** `tag=a&tag=b`, `tags=a,b`: every tag a listed document must hold, each checked by the tag rule. */
function allTags(q: documents.DocumentsQuery): string[] {
  const given = [...(q.tag === undefined ? [] : Array.isArray(q.tag) ? q.tag : [q.tag]), ...(q.tags ?? '').split(',').map((t) => t.trim()).filter(Boolean)];
  return parseOr400(z.object({ tags: documents.Tags }), { tags: given }, 'query').tags;
}

/** `"<sha256>"` matches an If-None-Match / If-Range list (weak comparison, as RFC 9110 says for If-None-Match). */
function matches(header: string, etag: string): boolean {
  if (header.trim() === '*') return true;
  return header.split(',').some((t) => t.trim().replace(/^W\//, '') === etag);
}

/**
 * Lists and tags (`user`) reach the documents of the caller's scope (`req.documentScope`); a
 * named document (`owner`) is looked up within it, so one outside is the 404 of a missing id.
 */
export function documentRoutes(routes: DocumentRoutes, s: DocumentServices): void {
  routes.route(
    {
      method: 'get',
      path: '/documents',
      access: 'user',
      summary: 'Documents of your apps, newest first, filtered by tags, content type, text and uploader',
      tags: ['documents'],
      query: documents.DocumentsQuery,
      responses: { 200: { description: 'a page of documents', schema: documents.DocumentsReply } },
    },
    async ({ query }, req, res) => {
      const scope = req.documentScope!;
      if (query.app_id !== undefined) assertApp(scope, query.app_id);
      const reply: z.infer<typeof documents.DocumentsReply> = await s.documents.list(scope, { ...query, allTags: allTags(query) });
      res.json(reply);
    },
  );

  routes.route(
    { method: 'get', path: '/documents/tags', access: 'user', summary: 'Every tag with its number of documents, most used first, then by name', tags: ['documents'], query: documents.TagsQuery, responses: { 200: { description: 'tags', schema: documents.TagsReply } } },
    async ({ query: { app_id } }, req, res) => {
      const scope = req.documentScope!;
      if (app_id !== undefined) assertApp(scope, app_id);
      const reply: z.infer<typeof documents.TagsReply> = { tags: await s.documents.tags(scope, app_id) };
      res.json(reply);
    },
  );

  routes.route(
    {
      method: 'get',
      path: '/documents/{id}',
      access: 'owner',
      summary: 'The file, streamed (ETag, If-None-Match → 304, Range → 206); `?disposition=inline` for types safe to show',
      tags: ['documents'],
      params: Params,
      query: DownloadQuery,
      responses: { 200: { description: 'the bytes' }, 206: { description: 'the range asked for' }, 304: { description: 'unchanged (If-None-Match)' }, 416: { description: 'the range lies outside the file' }, ...missing },
    },
    async ({ params: { id }, query: { disposition } }, req, res) => {
      const doc = await s.documents.get(req.documentScope!, id);
      if (!doc) throw notFound(id);
      await download(s, req, res, doc, disposition === 'inline' && inlineSafe(doc.content_type));
    },
  );

  routes.route(
    { method: 'get', path: '/documents/{id}/metadata', access: 'owner', summary: "The document's metadata", tags: ['documents'], params: Params, responses: { 200: { description: 'the document', schema: documents.Document }, ...missing } },
    async ({ params: { id } }, req, res) => {
      const doc = await s.documents.get(req.documentScope!, id);
      if (!doc) throw notFound(id);
      res.json(doc);
    },
  );

  routes.route(
    {
      method: 'patch',
      path: '/documents/{id}',
      access: 'owner',
      summary: 'Change tags and/or description; only the fields given change',
      tags: ['documents'],
      params: Params,
      body: documents.PatchBody,
      responses: { 200: { description: 'the document as it now is', schema: documents.Document }, ...missing },
    },
    async ({ params: { id }, body }, req, res) => {
      const doc = await s.documents.patch(req.documentScope!, id, body);
      if (!doc) throw notFound(id);
      res.json(doc);
    },
  );

  routes.route(
    { method: 'delete', path: '/documents/{id}', access: 'owner', summary: 'Delete a document (its bytes go with the last document holding them)', tags: ['documents'], params: Params, responses: { 200: { description: 'deleted', schema: documents.DeleteReply }, ...missing } },
    async ({ params: { id } }, req, res) => {
      if (!(await s.documents.delete(req.documentScope!, id, (sha) => s.blobs.remove(sha)))) throw notFound(id);
      const reply: z.infer<typeof documents.DeleteReply> = { success: true, id, message: `document "${id}" deleted` };
      res.json(reply);
    },
  );
}

async function download(s: DocumentServices, req: Request, res: Response, doc: documents.Document, inline: boolean) {
  const etag = `"${doc.sha256}"`;
  res.setHeader('ETag', etag);
  res.setHeader('Cache-Control', 'private, no-cache');
  res.setHeader('Accept-Ranges', 'bytes');
  const ifNoneMatch = req.headers['if-none-match'];
  if (ifNoneMatch !== undefined && matches(ifNoneMatch, etag)) return void res.status(304).end();

  let range: { start: number; end: number } | undefined;
  const ifRange = req.headers['if-range'];
  if (req.headers.range !== undefined && (ifRange === undefined || ifRange === etag)) {
    const ranges = rangeParser(doc.size, req.headers.range, { combine: true });
    if (ranges === -1) {
      res.setHeader('Content-Range', `bytes */${doc.size}`);
      throw new HttpError(416, 'RANGE_NOT_SATISFIABLE', `the range lies outside the document's ${doc.size} bytes`);
    }
    // A malformed header is ignored (RFC 9110 §14.2); several ranges get the whole file.
    if (ranges !== -2 && ranges.type === 'bytes' && ranges.length === 1) range = ranges[0];
  }

  res.setHeader('Content-Type', doc.content_type.startsWith('text/') ? `${doc.content_type}; charset=utf-8` : doc.content_type);
  res.setHeader('Content-Disposition', dispositionHeader(doc.filename, inline));
  // Whatever the bytes are, a browser opening them runs nothing and reaches nothing.
  res.setHeader('Content-Security-Policy', "default-src 'none'; sandbox");
  if (range) {
    res.status(206).setHeader('Content-Range', `bytes ${range.start}-${range.end}/${doc.size}`);
    res.setHeader('Content-Length', String(range.end - range.start + 1));
  } else {
    res.setHeader('Content-Length', String(doc.size));
  }
  if (req.method === 'HEAD' || doc.size === 0) return void res.end();
  const body = await s.blobs.read(doc.sha256, range);
  try {
    await pipeline(body, res);
  } catch (e) {
    // The client left mid-download, or the store failed after the headers went: the connection closes.
    if (!res.writableFinished) s.logger.debug('download ended early', { document_id: doc.id, error: (e as Error).message });
  }
}


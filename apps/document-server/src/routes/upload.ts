import { randomUUID } from 'node:crypto';
import { documents } from '@tessera/contracts';
import { BadRequest, ClientGone, Forbidden, parseOr400, TooLarge } from '@tessera/kit';
import { z } from 'zod';
import { assertApp, uploadApp } from '../domain/access';
import { sniffContentType } from '../domain/content-type';
import { storedFilename } from '../domain/filename';
import type { DocumentRoutes, DocumentServices } from '../services';
import { receiveUpload, type Received } from '../upload/receive';

const KNOWN = new Set(['app_id', 'tags', 'description', 'metadata', 'uploaded_by']);

/** The form's fields as UploadFields takes them: tags from every way a form can send a list. */
function formValues(fields: Received['fields']): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const one = (name: string) => {
    const v = fields.get(name);
    if (v && v.length > 1) throw new BadRequest(`invalid form: ${name}: sent ${v.length} times`);
    return v?.[0];
  };
  for (const name of fields.keys()) if (!KNOWN.has(name)) throw new BadRequest(`invalid form: ${name}: unknown field (expected ${[...KNOWN].join(', ')}, file)`);
  for (const name of ['app_id', 'description', 'uploaded_by']) if (one(name) !== undefined) out[name] = one(name);
  const tags = fields.get('tags');
  if (tags) out.tags = tags.flatMap((v) => (v.trim().startsWith('[') ? jsonField('tags', v) : v.split(',').map((t) => t.trim()).filter(Boolean)));
  const metadata = one('metadata');
  if (metadata !== undefined) {
    const m = parseOr400(documents.UploadMetadata, jsonField('metadata', metadata), 'form.metadata');
    for (const k of ['tags', 'description'] as const) {
      if (m[k] === undefined) continue;
      if (k in out) throw new BadRequest(`invalid form: ${k}: given both as a field and in metadata`);
      out[k] = m[k] ?? undefined;
    }
  }
  return out;
}

function jsonField(name: string, v: string): unknown {
  try {
    return JSON.parse(v);
  } catch {
    throw new BadRequest(`invalid form: ${name}: not valid JSON`);
  }
}

/**
 * `POST /documents`: the form is streamed (upload/receive.ts), not parsed by the route: its file
 * goes to the blob store as it arrives, and its fields are checked here as a form.
 */
export function uploadRoutes(routes: DocumentRoutes, s: DocumentServices): void {
  const max = s.config.DOCUMENT_MAX_BYTES;

  routes.route(
    {
      method: 'post',
      path: '/documents',
      access: 'user',
      summary: 'Upload a document (multipart: file, and tags + description or a metadata JSON field; app_id when the token allows several apps)',
      tags: ['documents'],
      body: documents.UploadFields.extend({
        file: z.string().describe('the file (binary)'),
        metadata: z.string().optional().describe('JSON {"tags": [...], "description": "..."} instead of the separate fields'),
      }),
      bodyMediaType: 'multipart/form-data',
      responses: {
        201: { description: 'stored (the same bytes already stored are not stored again)', schema: documents.Document },
        400: { description: 'a field is invalid (named), or app_id is missing while the token allows several apps, any app, or is the service key' },
        403: { description: 'the token may not use app_id' },
        413: { description: 'the file is larger than DOCUMENT_MAX_BYTES; nothing is kept' },
      },
    },
    async (_input, req, res) => {
      const scope = req.documentScope!;
      // A body longer than the file limit plus room for the form is refused before a byte is read.
      const declared = Number(req.headers['content-length']);
      if (Number.isFinite(declared) && declared > max + 1024 * 1024) {
        res.setHeader('Connection', 'close');
        throw new TooLarge(`the file is larger than ${max} bytes`);
      }
      let received: Received;
      try {
        received = await receiveUpload(req, s.blobs, {
          maxBytes: max,
          onField: (name, value) => {
            // Another app's id is refused before the file is read (a malformed one is named below).
            if (name === 'app_id' && documents.UploadFields.shape.app_id.safeParse(value).success) assertApp(scope, value);
          },
        });
      } catch (e) {
        // The rest of the body is not read: the connection closes after the answer.
        res.setHeader('Connection', 'close');
        if (e instanceof ClientGone) return void s.logger.debug('upload aborted by the client', { request_id: req.id });
        throw e;
      }
      const { file } = received;
      try {
        const fields = parseOr400(documents.UploadFields, formValues(received.fields), 'form');
        if (!file) throw new BadRequest('invalid form: file: a file is required', { issues: [{ path: 'form.file', message: 'required' }] });
        const appId = uploadApp(scope, fields.app_id);
        if (fields.uploaded_by !== undefined && !scope.service) throw new Forbidden('uploaded_by is set by a Tessera service only; a token uploads as its subject');
        const doc = await s.documents.create(
          {
            id: randomUUID(),
            appId,
            filename: storedFilename(file.filename),
            contentType: await sniffContentType(file.head),
            size: file.size,
            sha256: file.sha256,
            tags: fields.tags ?? [],
            description: fields.description ?? null,
            uploadedBy: fields.uploaded_by ?? scope.sub,
          },
          () => file.writer.commit(file.sha256),
        );
        res.status(201).location(`/documents/${doc.id}`).json(doc);
      } catch (e) {
        await file?.writer.discard().catch(() => undefined);
        throw e;
      }
    },
  );
}

import { randomBytes } from 'node:crypto';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { documents } from '@tessera/contracts';
import { BadGateway, SERVICE_KEY_HEADER, TooLarge, Unavailable } from '@tessera/kit';

export type StoredDocument = documents.Document;

export interface DocumentUpload {
  appId: string;
  uploadedBy: string;
  tags: string[];
  filename: string;
  /** The file's bytes, streamed through as they come. */
  body: Readable;
  /** Known for a spooled file (sent with Content-Length); unknown for one streamed through (chunked). */
  size?: number;
}

/** RFC 5987 `filename*` value: every name, whatever its characters, reaches the document server intact. */
const extValue = (s: string) => `UTF-8''${encodeURIComponent(s).replace(/['()*!]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)}`;

/**
 * The runtime's client of the document server (DOCUMENTS_URL), as a Tessera service: the
 * service key stands for the runtime, which names the app and the user itself after checking
 * them. Uploads stream: nothing of a file is held here beyond the chunk in flight.
 */
export class DocumentClient {
  constructor(
    private readonly base: string,
    private readonly serviceKey: string,
  ) {}

  async upload(u: DocumentUpload): Promise<StoredDocument> {
    const boundary = `----tessera-runtime-${randomBytes(12).toString('hex')}`;
    const field = (name: string, value: string) => `--${boundary}\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`;
    const head = Buffer.from(
      field('app_id', u.appId) +
        field('uploaded_by', u.uploadedBy) +
        field('tags', JSON.stringify(u.tags)) +
        `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename*=${extValue(u.filename)}\r\nContent-Type: application/octet-stream\r\n\r\n`,
    );
    const tail = Buffer.from(`\r\n--${boundary}--\r\n`);
    let sourceError: unknown = null;
    async function* multipart() {
      yield head;
      try {
        for await (const chunk of u.body) yield chunk as Buffer;
      } catch (e) {
        sourceError = e;
        throw e;
      }
      yield tail;
    }
    const headers: Record<string, string> = { 'content-type': `multipart/form-data; boundary=${boundary}` };
    if (u.size !== undefined) headers['content-length'] = String(head.length + u.size + tail.length);
    const { req, response } = this.open('POST', '/documents', headers);
    // A failing source (the client left, the size limit) destroys the request: the document
    // server sees an aborted upload and keeps nothing.
    const sent = pipeline(Readable.from(multipart()), req);
    sent.catch(() => undefined);
    let res: IncomingMessage;
    try {
      // The answer may come before the body is all sent (a 413): it is the answer that counts.
      res = await Promise.race([response, sent.then(() => response)]);
    } catch (e) {
      req.destroy();
      if (sourceError) throw sourceError;
      throw e instanceof Unavailable ? e : new Unavailable('the document server is unavailable; try again', { error: (e as Error).message });
    }
    return documents.Document.parse(await this.json(res, 201));
  }

  /** A chat's documents: every page of those holding `tag` in the app, newest first. */
  async list(appId: string, tag: string, max = 1_000): Promise<StoredDocument[]> {
    const out: StoredDocument[] = [];
    let cursor: string | null = null;
    do {
      const q = new URLSearchParams({ app_id: appId, tag, limit: '200', ...(cursor && { cursor }) });
      const { req, response } = this.open('GET', `/documents?${q}`, {});
      req.end();
      const page = documents.DocumentsReply.parse(await this.json(await response, 200));
      out.push(...page.documents);
      cursor = page.next_cursor;
    } while (cursor && out.length < max);
    return out;
  }

  async metadata(id: string): Promise<StoredDocument | null> {
    const { req, response } = this.open('GET', `/documents/${encodeURIComponent(id)}/metadata`, {});
    req.end();
    const res = await response;
    if (res.statusCode === 404 || res.statusCode === 400) return res.resume(), null;
    return documents.Document.parse(await this.json(res, 200));
  }

  /** The document's bytes as the document server streams them. */
  async read(id: string): Promise<IncomingMessage> {
    const { req, response } = this.open('GET', `/documents/${encodeURIComponent(id)}`, {});
    req.end();
    const res = await response;
    if (res.statusCode !== 200) await this.json(res, 200);
    return res;
  }

  async delete(id: string): Promise<void> {
    const { req, response } = this.open('DELETE', `/documents/${encodeURIComponent(id)}`, {});
    req.end();
    const res = await response;
    if (res.statusCode === 404) return void res.resume();
    await this.json(res, 200);
  }

  private open(method: string, path: string, headers: Record<string, string>) {
    const url = new URL(this.base + path);
    const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
    const req = send(url, { method, headers: { ...headers, [SERVICE_KEY_HEADER]: this.serviceKey } });
    const response = new Promise<IncomingMessage>((resolve, reject) => {
      req.once('response', resolve);
      req.once('error', (e) => reject(new Unavailable('the document server is unavailable; try again', { error: e.message })));
    });
    response.catch(() => undefined);
    return { req, response };
  }

  /** The reply's JSON when the status is the expected one; otherwise the error a runtime client should see. */
  private async json(res: IncomingMessage, expected: number): Promise<unknown> {
    const chunks: Buffer[] = [];
    for await (const c of res) chunks.push(c as Buffer);
    const text = Buffer.concat(chunks).toString('utf8');
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      body = undefined;
    }
    if (res.statusCode === expected) return body;
    const message = (body as { error?: { message?: string } } | undefined)?.error?.message ?? `status ${res.statusCode}`;
    if (res.statusCode === 413) throw new TooLarge(message);
    if ((res.statusCode ?? 500) >= 500) throw new Unavailable('the document server is unavailable; try again', { status: res.statusCode });
    throw new BadGateway(`the document server refused the request: ${message}`, { status: res.statusCode });
  }
}

import { randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';
import { documents } from '@tessera/contracts';
import { BadGateway, SERVICE_KEY_HEADER, ServiceClient, TooLarge, Unavailable, Unreachable, type ServiceReply } from '@tessera/kit';

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
 * them. JSON calls go through the kit's ServiceClient (undici); uploads and downloads stream
 * through its `stream`: nothing of a file is held here beyond the chunk in flight.
 */
export class DocumentClient {
  private readonly api: ServiceClient;

  constructor(
    base: string,
    private readonly serviceKey: string,
  ) {
    this.api = new ServiceClient(base, 'the document server', { timeoutMs: 30_000 });
  }

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
    async function* multipart() {
      yield head;
      for await (const chunk of u.body) yield chunk as Buffer;
      yield tail;
    }
    const headers = {
      'content-type': `multipart/form-data; boundary=${boundary}`,
      'content-length': u.size === undefined ? undefined : String(head.length + u.size + tail.length),
    };
    // A failing source (the client left, the size limit) aborts the request, and its error is
    // what is thrown: the document server sees an aborted upload and keeps nothing.
    const reply = await this.call(() => this.api.stream('POST', '/documents', { headers: this.auth(headers), body: multipart() }));
    return documents.Document.parse(await this.answer(reply, 201));
  }

  /** A chat's documents: every page of those holding `tag` in the app, newest first. */
  async list(appId: string, tag: string, max = 1_000): Promise<StoredDocument[]> {
    const out: StoredDocument[] = [];
    let cursor: string | null = null;
    do {
      const q = new URLSearchParams({ app_id: appId, tag, limit: '200', ...(cursor && { cursor }) });
      const reply = await this.call(() => this.api.request('GET', `/documents?${q}`, { headers: this.auth() }));
      const page = documents.DocumentsReply.parse(this.answered(reply, 200));
      out.push(...page.documents);
      cursor = page.next_cursor;
    } while (cursor && out.length < max);
    return out;
  }

  async metadata(id: string): Promise<StoredDocument | null> {
    const reply = await this.call(() => this.api.request('GET', `/documents/${encodeURIComponent(id)}/metadata`, { headers: this.auth() }));
    if (reply.status === 404 || reply.status === 400) return null;
    return documents.Document.parse(this.answered(reply, 200));
  }

  /** The document's bytes as the document server streams them. */
  async read(id: string): Promise<Readable> {
    const reply = await this.call(() => this.api.stream('GET', `/documents/${encodeURIComponent(id)}`, { headers: this.auth() }));
    if (reply.status !== 200) await this.answer(reply, 200);
    return reply.body;
  }

  async delete(id: string): Promise<void> {
    const reply = await this.call(() => this.api.request('DELETE', `/documents/${encodeURIComponent(id)}`, { headers: this.auth() }));
    if (reply.status !== 404) this.answered(reply, 200);
  }

  close(): Promise<void> {
    return this.api.close();
  }

  private auth(headers: Record<string, string | undefined> = {}): Record<string, string | undefined> {
    return { ...headers, [SERVICE_KEY_HEADER]: this.serviceKey };
  }

  /** The call, with no answer at all (refused, reset, too slow) as the 503 a runtime client may retry. */
  private async call<T>(send: () => Promise<T>): Promise<T> {
    try {
      return await send();
    } catch (e) {
      if (e instanceof Unreachable) throw new Unavailable('the document server is unavailable; try again', { error: e.reason });
      throw e;
    }
  }

  /** A streamed reply's JSON when its status is the expected one (see `answered`). */
  private async answer(reply: { status: number; body: Readable }, expected: number): Promise<unknown> {
    const chunks: Buffer[] = [];
    for await (const c of reply.body) chunks.push(c as Buffer);
    const text = Buffer.concat(chunks).toString('utf8');
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      body = undefined;
    }
    return this.answered({ status: reply.status, headers: {}, body, text }, expected);
  }

  /** The reply's JSON when the status is the expected one; otherwise the error a runtime client should see. */
  private answered(reply: ServiceReply, expected: number): unknown {
    if (reply.status === expected) return reply.body;
    const message = (reply.body as { error?: { message?: string } } | undefined)?.error?.message ?? `status ${reply.status}`;
    if (reply.status === 413) throw new TooLarge(message);
    if (reply.status >= 500) throw new Unavailable('the document server is unavailable; try again', { status: reply.status });
    throw new BadGateway(`the document server refused the request: ${message}`, { status: reply.status });
  }
}

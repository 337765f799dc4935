import { Readable } from 'node:stream';
import { Agent, request } from 'undici';
import type { z } from 'zod';
import { BadGateway } from './errors';

/** A reply as it came: status, headers, the body parsed as JSON (undefined when it is not JSON) and as text. */
export interface ServiceReply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: unknown;
  text: string;
}

export interface ServiceCall {
  /** Sent as JSON. */
  body?: unknown;
  /** Undefined values are left out. */
  headers?: Record<string, string | undefined>;
  /** The whole call's budget: connect, headers and body (default: the client's). */
  timeoutMs?: number;
}

/** A streamed call's reply: its body is a stream the caller reads (or dumps) itself. */
export interface ServiceStream {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Readable;
}

/** A network failure or a timeout (never an HTTP status): the other side is unreachable. */
export class Unreachable extends Error {
  constructor(
    readonly target: string,
    readonly reason: string,
  ) {
    super(`${target} unreachable: ${reason}`);
    this.name = 'Unreachable';
  }
}

/** The other side answered with a status the call did not expect; the caller decides what it means. */
export class UnexpectedStatus extends Error {
  constructor(
    readonly target: string,
    readonly reply: ServiceReply,
  ) {
    super(`${target} answered ${reply.status}`);
    this.name = 'UnexpectedStatus';
  }
}

export interface ServiceClientOptions {
  /** Default budget of a call (10 s). */
  timeoutMs?: number;
  /** A longer reply is a failure of the call (4 MiB). */
  maxReplyBytes?: number;
}

/**
 * JSON over HTTP to one service (undici, a keep-alive pool that `close()` releases). `json()`
 * reads a reply with the contract's zod schema and refuses one that does not match with a 502
 * naming the service, so that what another service sends is checked where it enters, like a
 * request body.
 */
export class ServiceClient {
  private readonly base: string;
  private readonly agent: Agent;
  private streams: Agent | undefined;
  private readonly timeoutMs: number;

  constructor(
    baseUrl: string,
    readonly name: string,
    opts: ServiceClientOptions = {},
  ) {
    this.base = baseUrl.replace(/\/+$/, '');
    this.timeoutMs = opts.timeoutMs ?? 10_000;
    this.agent = new Agent({ connections: 256, keepAliveTimeout: 30_000, maxResponseSize: opts.maxReplyBytes ?? 4 * 1024 * 1024 });
  }

  /** Any reply, whatever its status; throws Unreachable when there is none. */
  async request(method: string, path: string, call: ServiceCall = {}): Promise<ServiceReply> {
    const timeoutMs = call.timeoutMs ?? this.timeoutMs;
    const headers: Record<string, string> = { accept: 'application/json' };
    for (const [k, v] of Object.entries(call.headers ?? {})) if (v !== undefined) headers[k] = v;
    if (call.body !== undefined) headers['content-type'] = 'application/json';
    try {
      const res = await request(this.base + path, {
        method: method as 'GET',
        headers,
        body: call.body === undefined ? undefined : JSON.stringify(call.body),
        dispatcher: this.agent,
        signal: AbortSignal.timeout(timeoutMs),
      });
      const text = await res.body.text();
      let body: unknown;
      try {
        body = text ? JSON.parse(text) : undefined;
      } catch {
        body = undefined;
      }
      return { status: res.statusCode, headers: res.headers, body, text };
    } catch (e) {
      const err = e as Error & { code?: string; cause?: { code?: string } };
      throw new Unreachable(this.name, err.name === 'TimeoutError' ? `no answer within ${timeoutMs} ms` : (err.code ?? err.cause?.code ?? err.message));
    }
  }

  /**
   * The reply's body, parsed with `schema`, when the status is `expect` (200); any other status is
   * an UnexpectedStatus, a body that does not match the contract a BadGateway.
   */
  async json<S extends z.ZodType>(method: string, path: string, schema: S, call: ServiceCall & { expect?: number } = {}): Promise<z.infer<S>> {
    const reply = await this.request(method, path, call);
    if (reply.status !== (call.expect ?? 200)) throw new UnexpectedStatus(this.name, reply);
    const parsed = schema.safeParse(reply.body);
    if (!parsed.success) throw new BadGateway(`${this.name} sent a reply that does not match its contract`, { service: this.name, issues: parsed.error.issues.slice(0, 5).map((i) => ({ path: i.path.join('.'), message: i.message })) });
    return parsed.data;
  }

  /**
   * A streamed call (an upload, a download): `body` is sent as it comes (chunked unless the headers
   * give its content-length) and the reply's body is handed over unread, with no size limit and no
   * whole-call budget (undici's between-chunks timeouts still hold). A `body` that fails aborts the
   * request and its error is thrown; no reply at all is Unreachable.
   */
  async stream(method: string, path: string, call: { headers?: Record<string, string | undefined>; body?: AsyncIterable<Uint8Array> } = {}): Promise<ServiceStream> {
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(call.headers ?? {})) if (v !== undefined) headers[k] = v;
    this.streams ??= new Agent({ connections: 64, keepAliveTimeout: 30_000 });
    let bodyError: unknown = null;
    const body = call.body && Readable.from(guarded(call.body, (e) => (bodyError = e)));
    try {
      const res = await request(this.base + path, { method: method as 'GET', headers, body, dispatcher: this.streams });
      return { status: res.statusCode, headers: res.headers, body: res.body };
    } catch (e) {
      if (bodyError) throw bodyError;
      const err = e as Error & { code?: string; cause?: { code?: string } };
      throw new Unreachable(this.name, err.code ?? err.cause?.code ?? err.message);
    }
  }

  close(): Promise<void> {
    return Promise.all([this.agent.close(), this.streams?.close()]).then(() => undefined);
  }
}

/** `source`, noting its error for the caller before undici sees it (undici wraps or replaces it). */
async function* guarded(source: AsyncIterable<Uint8Array>, onError: (e: unknown) => void): AsyncGenerator<Uint8Array> {
  try {
    yield* source;
  } catch (e) {
    onError(e);
    throw e;
  }
}

/**
 * The runtime's HTTP routes a chat app calls (document 003 §3), typed by the contracts. Calls that
 * are safe to repeat are retried on a network failure, a 5xx or a 429; a chat start is made safe
 * to repeat by one client_request_id kept (in the host's storage) until the start succeeds.
 */
import type {
  ChatMetaReply,
  ChatSession,
  InputReply,
  RecentSessionReply,
  StartChatReply,
  ToolRespondReply,
  TransportReply,
  UploadReply,
  WorkflowsReply,
} from '@tessera/contracts';
import { backoffDelay, DEFAULT_BACKOFF, fetchFn, formData, newId, sleep, storageKey, trimSlash, type Backoff, type FormDataLike, type Host } from './host';

type Infer<T extends { parse: (v: unknown) => unknown }> = ReturnType<T['parse']>;

/** A reply that is not 2xx; `code` is the runtime's error code (`{error: {code, message}}`). */
export class TesseraHttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'TesseraHttpError';
  }
}

export interface StartChatOptions {
  appId: string;
  userId: string;
  workflowName: string;
  forceNew?: boolean;
  context?: Record<string, unknown>;
}

/** A file to upload: a Blob or File (browsers, Node 20), or React Native's `{ uri, name, type }`. */
export type UploadBody = { readonly size: number; readonly type: string } | { uri: string; name: string; type: string };

export interface UploadOptions {
  appId: string;
  userId: string;
  chatId: string;
  file: UploadBody;
  /** The name the runtime records (a File's own name otherwise). */
  filename?: string;
  intent?: string;
  bundlePath?: string;
}

export class TesseraApi {
  constructor(
    private readonly host: Host,
    private readonly opts: { retries?: number; backoff?: Backoff } = {},
  ) {}

  workflows(): Promise<Infer<typeof WorkflowsReply>> {
    return this.request('GET', '/api/workflows', undefined, true);
  }

  transport(workflowName: string): Promise<Infer<typeof TransportReply>> {
    return this.request('GET', `/api/workflows/${enc(workflowName)}/transport`, undefined, true);
  }

  /**
   * Starts (or, with the same pending request id, rejoins) a chat. The client_request_id is stored
   * before the first attempt, so a retry, or a retry after the app was killed mid-request, makes
   * no second chat; it is forgotten once a reply arrives.
   */
  async startChat(o: StartChatOptions): Promise<Infer<typeof StartChatReply>> {
    const key = storageKey(o.appId, o.userId, 'start', o.workflowName, o.forceNew ? 'new' : 'any');
    let requestId = this.host.storage.getItem(key);
    if (!requestId) {
      requestId = newId();
      this.host.storage.setItem(key, requestId);
    }
    const body = { user_id: o.userId, client_request_id: requestId, ...(o.forceNew && { force_new: true }), ...(o.context && { context: o.context }) };
    const reply = await this.request<Infer<typeof StartChatReply>>('POST', `/api/chats/${enc(o.appId)}/${enc(o.workflowName)}/start`, body, true);
    this.host.storage.removeItem(key);
    return reply;
  }

  chatMeta(appId: string, workflowName: string, chatId: string): Promise<Infer<typeof ChatMetaReply>> {
    return this.request('GET', `/api/chats/meta/${enc(appId)}/${enc(workflowName)}/${enc(chatId)}`, undefined, true);
  }

  sessions(appId: string, userId: string): Promise<ChatSession[]> {
    return this.request('GET', `/api/sessions/${enc(appId)}/${enc(userId)}`, undefined, true);
  }

  recentSession(appId: string, userId: string): Promise<Infer<typeof RecentSessionReply>> {
    return this.request('GET', `/api/sessions/recent/${enc(appId)}/${enc(userId)}`, undefined, true);
  }

  /** HTTP fallback for a user message; with a client_message_id a retry cannot make a second input. */
  sendInput(
    ids: { appId: string; chatId: string; userId: string; workflowName: string },
    message: string,
    clientMessageId: string = newId(),
  ): Promise<Infer<typeof InputReply>> {
    const body = { message, workflow_name: ids.workflowName, client_message_id: clientMessageId };
    return this.request('POST', `/chat/${enc(ids.appId)}/${enc(ids.chatId)}/${enc(ids.userId)}/input`, body, true);
  }

  /** Not retried: a second answer to the same tool call is refused, which would hide the first's success. */
  respondToolCall(eventId: string, responseData: Record<string, unknown>): Promise<Infer<typeof ToolRespondReply>> {
    return this.request('POST', '/api/tool-call/respond', { event_id: eventId, response_data: responseData }, false);
  }

  /** Stops the chat's running turn; `chat.run_complete` with status `stopped` follows on the socket. */
  stopChat(appId: string, chatId: string): Promise<{ accepted: true; chat_id: string }> {
    return this.request('POST', `/api/chats/${enc(appId)}/${enc(chatId)}/stop`, undefined, true);
  }

  /**
   * `POST /api/chat/upload` (multipart); `chat.attachment_uploaded` follows on the chat's timeline.
   * Not retried: a repeated upload would store the file twice.
   */
  upload(o: UploadOptions): Promise<Infer<typeof UploadReply>> {
    const form = formData();
    form.append('appId', o.appId);
    form.append('userId', o.userId);
    form.append('chatId', o.chatId);
    if (o.intent !== undefined) form.append('intent', o.intent);
    if (o.bundlePath !== undefined) form.append('bundle_path', o.bundlePath);
    // The file goes last: a streaming server reads the fields before the bytes.
    if (o.filename !== undefined) form.append('file', o.file, o.filename);
    else form.append('file', o.file);
    return this.request('POST', '/api/chat/upload', new FormBody(form), false);
  }

  private async request<T>(method: string, path: string, body: unknown, retry: boolean): Promise<T> {
    const attempts = retry ? (this.opts.retries ?? 4) + 1 : 1;
    const doFetch = fetchFn(this.host);
    for (let attempt = 0; ; attempt++) {
      const last = attempt + 1 >= attempts;
      const token = await this.host.getAccessToken();
      const headers: Record<string, string> = { accept: 'application/json' };
      if (token) headers.authorization = `Bearer ${token}`;
      const form = body instanceof FormBody ? body.form : undefined;
      // A form's content-type (with its boundary) is set by fetch.
      if (body !== undefined && !form) headers['content-type'] = 'application/json';
      let res;
      try {
        res = await doFetch(`${trimSlash(this.host.httpBaseUrl)}${path}`, { method, headers, body: form ?? (body === undefined ? undefined : JSON.stringify(body)) });
      } catch (err) {
        if (last) throw err;
        await sleep(backoffDelay(attempt, this.opts.backoff ?? DEFAULT_BACKOFF));
        continue;
      }
      const text = await res.text();
      const json = parse(text);
      if (res.ok) return json as T;
      if (!last && (res.status >= 500 || res.status === 429)) {
        await sleep(backoffDelay(attempt, this.opts.backoff ?? DEFAULT_BACKOFF));
        continue;
      }
      const err = (json as { error?: { code?: string; message?: string } } | undefined)?.error;
      throw new TesseraHttpError(res.status, err?.code ?? `HTTP_${res.status}`, err?.message ?? `${method} ${path} answered ${res.status}`);
    }
  }
}

/** Marks a multipart body apart from any JSON one. */
class FormBody {
  constructor(readonly form: FormDataLike) {}
}

function enc(s: string): string {
  return encodeURIComponent(s);
}

function parse(text: string): unknown {
  try {
    return text ? JSON.parse(text) : undefined;
  } catch {
    return undefined;
  }
}

import { stat, readFile } from 'node:fs/promises';
import { BackendContext } from '@tessera/contracts';
import { SERVICE_KEY_HEADER, ServiceClient, Unavailable, type Logger } from '@tessera/kit';

/** What the host application knows about a user, as context layers (see domain/backend-context). */
export interface SourcedContext {
  defaults?: BackendContext;
  user?: BackendContext;
}

export interface ContextSource {
  forUser(userId: string, appId: string, requestId?: string): Promise<SourcedContext>;
  close(): Promise<void>;
}

const USER_CONTEXT_UNAVAILABLE = 'user context unavailable';

/**
 * The host application's endpoint: `GET <url>?user_id=…&app_id=…` with the service key. A JSON
 * object is the user's context; 404 means "nothing to add". Anything else fails the session
 * start (503): a chat must not start without the permissions the backend meant to give it.
 */
export class HttpContextSource implements ContextSource {
  private readonly http: ServiceClient;
  private readonly url: URL;

  constructor(
    url: string,
    private readonly serviceKey: string,
    timeoutMs: number,
    private readonly logger: Logger,
  ) {
    this.url = new URL(url);
    this.http = new ServiceClient(this.url.origin, 'context source', { timeoutMs, maxReplyBytes: 256 * 1024 });
  }

  async forUser(userId: string, appId: string, requestId?: string): Promise<SourcedContext> {
    const q = new URLSearchParams(this.url.search);
    q.set('user_id', userId);
    q.set('app_id', appId);
    let r;
    try {
      r = await this.http.request('GET', `${this.url.pathname}?${q}`, {
        headers: { [SERVICE_KEY_HEADER]: this.serviceKey, 'x-request-id': requestId },
      });
    } catch (e) {
      this.logger.error('context source unreachable', { request_id: requestId, error: (e as Error).message });
      throw new Unavailable(USER_CONTEXT_UNAVAILABLE);
    }
    if (r.status === 404) return {};
    const parsed = BackendContext.safeParse(r.body);
    if (r.status !== 200 || !parsed.success) {
      this.logger.error('context source failed', { request_id: requestId, status: r.status, body: r.text.slice(0, 1_000) });
      throw new Unavailable(USER_CONTEXT_UNAVAILABLE);
    }
    return { user: parsed.data };
  }

  close(): Promise<void> {
    return this.http.close();
  }
}

/** Development stand-in: `{ "<user_id>": {...}, "*": {...defaults} }`, re-read when the file changes. */
export class FileContextSource implements ContextSource {
  private cache: { mtimeMs: number; data: Record<string, BackendContext> } | null = null;

  constructor(
    private readonly path: string,
    private readonly logger: Logger,
  ) {}

  async forUser(userId: string, _appId: string, requestId?: string): Promise<SourcedContext> {
    try {
      const data = await this.load();
      return { defaults: data['*'], user: data[userId] };
    } catch (e) {
      this.logger.error('context file unreadable', { request_id: requestId, path: this.path, error: (e as Error).message });
      throw new Unavailable(USER_CONTEXT_UNAVAILABLE);
    }
  }

  private async load(): Promise<Record<string, BackendContext>> {
    const { mtimeMs } = await stat(this.path);
    if (this.cache?.mtimeMs === mtimeMs) return this.cache.data;
    const raw = JSON.parse(await readFile(this.path, 'utf8')) as unknown;
    const data: Record<string, BackendContext> = {};
    if (raw && typeof raw === 'object' && !Array.isArray(raw)) {
      for (const [k, v] of Object.entries(raw)) {
        const parsed = BackendContext.safeParse(v);
        if (parsed.success) data[k] = parsed.data;
      }
    }
    this.cache = { mtimeMs, data };
    return data;
  }

  async close(): Promise<void> {}
}

/** Both sources may be set: the file's entries first, the host application's reply over them. */
export class LayeredContextSource implements ContextSource {
  constructor(private readonly sources: ContextSource[]) {}

  async forUser(userId: string, appId: string, requestId?: string): Promise<SourcedContext> {
    const parts = await Promise.all(this.sources.map((s) => s.forUser(userId, appId, requestId)));
    return parts.reduce<SourcedContext>(
      (acc, p) => ({ defaults: { ...acc.defaults, ...p.defaults }, user: { ...acc.user, ...p.user } }),
      { defaults: {}, user: {} },
    );
  }

  async close(): Promise<void> {
    await Promise.all(this.sources.map((s) => s.close()));
  }
}

export function contextSourceFrom(
  c: { CONTEXT_SOURCE_URL?: string; CONTEXT_FILE?: string; SERVICE_KEY: string; CONTEXT_TIMEOUT_MS: number },
  logger: Logger,
): ContextSource | null {
  const sources: ContextSource[] = [];
  if (c.CONTEXT_FILE) sources.push(new FileContextSource(c.CONTEXT_FILE, logger));
  if (c.CONTEXT_SOURCE_URL) sources.push(new HttpContextSource(c.CONTEXT_SOURCE_URL, c.SERVICE_KEY, c.CONTEXT_TIMEOUT_MS, logger));
  if (sources.length === 0) return null;
  return sources.length === 1 ? sources[0] : new LayeredContextSource(sources);
}

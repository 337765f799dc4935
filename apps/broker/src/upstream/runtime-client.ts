import type { z } from 'zod';
import { BackendStartReply, ErrorBody, ErrorCode, RecentSessionReply, SessionsReply, type BackendStartBody } from '@tessera/contracts';
import { BadGateway, HttpError, REQUEST_ID_HEADER, SERVICE_KEY_HEADER, ServiceClient, Unavailable, Unreachable, type Logger, type ServiceReply } from '@tessera/kit';

/** Who a runtime call is made for: the user's token is passed on, the request id follows. */
export interface CallContext {
  token?: string;
  requestId?: string;
}

export interface RuntimeClientOptions {
  baseUrl: string;
  serviceKey: string;
  timeoutMs: number;
  logger: Logger;
}

const AI_UNAVAILABLE = 'AI service unavailable';

/**
 * The runtime's HTTP API as the broker uses it (document 000 §2), with its failures mapped
 * (§5): unreachable or too slow → 503 "AI service unavailable"; a 4xx → the same status and
 * error body (the runtime's verdict on this user's request); a 5xx or a reply that breaks the
 * contract → 502. The runtime's body is logged; clients never see more than the error shape.
 */
export class RuntimeClient {
  private readonly http: ServiceClient;

  constructor(private readonly o: RuntimeClientOptions) {
    this.http = new ServiceClient(o.baseUrl, 'runtime', { timeoutMs: o.timeoutMs });
  }

  /** `POST /api/chat/start` with the service key: `initial_context` is trusted backend context. */
  startChat(body: z.input<typeof BackendStartBody>, ctx: CallContext) {
    return this.call('start chat', 'POST', '/api/chat/start', BackendStartReply, ctx, body, true);
  }

  sessions(appId: string, userId: string, ctx: CallContext) {
    return this.call('list sessions', 'GET', `/api/sessions/${enc(appId)}/${enc(userId)}`, SessionsReply, ctx);
  }

  recent(appId: string, userId: string, ctx: CallContext) {
    return this.call('recent session', 'GET', `/api/sessions/recent/${enc(appId)}/${enc(userId)}`, RecentSessionReply, ctx);
  }

  /** Resolves when the runtime's /health answers 200, throws otherwise. */
  async health(timeoutMs = 1_500): Promise<void> {
    const r = await this.http.request('GET', '/health', { timeoutMs });
    if (r.status !== 200) throw new Error(`runtime /health answered ${r.status}`);
  }

  close(): Promise<void> {
    return this.http.close();
  }

  private async call<S extends z.ZodType>(op: string, method: string, path: string, schema: S, ctx: CallContext, body?: unknown, trusted = false): Promise<z.infer<S>> {
    const headers: Record<string, string | undefined> = {
      authorization: ctx.token ? `Bearer ${ctx.token}` : undefined,
      [REQUEST_ID_HEADER]: ctx.requestId,
      ...(trusted && { [SERVICE_KEY_HEADER]: this.o.serviceKey }),
    };
    let reply: ServiceReply;
    try {
      reply = await this.http.request(method, path, { body, headers });
    } catch (e) {
      const reason = e instanceof Unreachable ? e.reason : (e as Error).message;
      this.o.logger.error('runtime unreachable', { op, request_id: ctx.requestId, reason });
      throw new Unavailable(AI_UNAVAILABLE);
    }
    if (reply.status >= 500) {
      this.o.logger.error('runtime failed', { op, request_id: ctx.requestId, status: reply.status, body: reply.text.slice(0, 2_000) });
      throw new BadGateway('AI service failed');
    }
    if (reply.status >= 400) {
      this.o.logger.warn('runtime refused', { op, request_id: ctx.requestId, status: reply.status, body: reply.text.slice(0, 2_000) });
      const err = ErrorBody.safeParse(reply.body);
      const retryAfter = reply.headers['retry-after'];
      throw new HttpError(
        reply.status,
        err.success ? err.data.error.code : ErrorCode.BadRequest,
        err.success ? err.data.error.message : `AI service refused the request (HTTP ${reply.status})`,
        err.success ? err.data.error.details : undefined,
        typeof retryAfter === 'string' ? { 'Retry-After': retryAfter } : undefined,
      );
    }
    const parsed = schema.safeParse(reply.body);
    if (!parsed.success) {
      this.o.logger.error('runtime reply breaks the contract', { op, request_id: ctx.requestId, status: reply.status, body: reply.text.slice(0, 2_000) });
      throw new BadGateway('AI service sent an unexpected reply');
    }
    return parsed.data;
  }
}

const enc = encodeURIComponent;

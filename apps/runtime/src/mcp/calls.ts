import type { RedisClient } from '@tessera/kit';
import type { RequestId } from '@modelcontextprotocol/sdk/types.js';
import type { ChatFeed } from '../bus/feed';
import { MCP_IDLE_MS } from './sessions';

/** What a cancel needs to stop a call's turn on any instance. */
interface CallRecord {
  chat_id: string;
  app_id: string;
}

/**
 * Running `tools/call`s, so that a `notifications/cancelled` stops one whichever runtime
 * instance it reaches: a call running here is cancelled in its own MCP server (no answer is
 * sent); one running elsewhere is flagged in Redis and its chat's turn stopped through the
 * runtime's stop path, and the instance running it, seeing its turn end stopped and the flag,
 * sends no answer either.
 */
export class McpCalls {
  private readonly here = new Map<string, (reason: string) => void>();

  constructor(
    private readonly redis: RedisClient,
    private readonly feed: Pick<ChatFeed, 'publishControl'>,
    private readonly prefix: string,
  ) {}

  private id(sessionId: string, requestId: RequestId): string {
    return `${sessionId}:${JSON.stringify(requestId)}`;
  }

  private key(kind: 'call' | 'cancelled', id: string): string {
    return `${this.prefix}:mcp:${kind}:${id}`;
  }

  /**
   * A call of this instance has its chat and is about to start the turn. Registered first, then
   * the flag read (a cancel sets the flag first, then reads the call): one of the two sees the other.
   * True when the call was cancelled already.
   */
  async begin(sessionId: string, requestId: RequestId, chat: { id: string; appId: string }, cancelHere: (reason: string) => void): Promise<boolean> {
    const id = this.id(sessionId, requestId);
    this.here.set(id, cancelHere);
    const record: CallRecord = { chat_id: chat.id, app_id: chat.appId };
    await this.redis.set(this.key('call', id), JSON.stringify(record), 'PX', MCP_IDLE_MS);
    return this.cancelled(sessionId, requestId);
  }

  async cancelled(sessionId: string, requestId: RequestId): Promise<boolean> {
    return (await this.redis.exists(this.key('cancelled', this.id(sessionId, requestId)))) === 1;
  }

  async end(sessionId: string, requestId: RequestId): Promise<void> {
    const id = this.id(sessionId, requestId);
    this.here.delete(id);
    await this.redis.del(this.key('call', id));
  }

  /** The session's client cancelled one of its requests (`requested_by`: the session's user). */
  async cancel(sessionId: string, requestId: RequestId, requestedBy: string, reason = 'cancelled by the MCP client'): Promise<void> {
    const id = this.id(sessionId, requestId);
    const local = this.here.get(id);
    if (local) return local(reason);
    await this.redis.set(this.key('cancelled', id), '1', 'PX', MCP_IDLE_MS);
    const raw = await this.redis.get(this.key('call', id));
    if (raw === null) return;
    const call = JSON.parse(raw) as CallRecord;
    await this.feed.publishControl({ action: 'stop', session_id: call.chat_id, app_id: call.app_id, requested_by: requestedBy, reason });
  }
}

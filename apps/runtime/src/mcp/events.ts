import type { RedisClient } from '@tessera/kit';
import type { EventStore } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { isJSONRPCErrorResponse, isJSONRPCResultResponse, type JSONRPCMessage, type RequestId } from '@modelcontextprotocol/sdk/types.js';
import { MCP_IDLE_MS } from './sessions';

/** Messages kept per stream for a reconnect: enough for a long turn's progress, bounded all the same. */
const MAX_EVENTS = 5_000;
/** The SDK's stream ids are UUIDs; an event id is `<stream id>_<RedisClient stream entry id>`. */
const EVENT_ID = /^([0-9a-f-]{36})_(\d{1,20}-\d{1,20})$/;

/** A stream's log entry: the message sent (none for the SDK's priming event), and whether the stream ended with it. */
export interface StreamEntry {
  id: string;
  message: JSONRPCMessage | null;
  end: boolean;
}

/** Where a session's streams are logged. */
export const eventsKeyOf = (prefix: string, sessionId: string) => `${prefix}:mcp:events:${sessionId}`;

/** The stream and Redis entry an event id names, if it is one of ours. */
export function parseEventId(eventId: string): { streamId: string; entry: string } | null {
  const m = EVENT_ID.exec(eventId);
  return m ? { streamId: m[1], entry: m[2] } : null;
}

/**
 * One POST's SSE stream, logged to a Redis stream as the SDK's transport sends it (it stores
 * every message it sends here, even after the client's connection was cut), so that a GET with
 * `Last-Event-ID` on any runtime instance reads what followed and goes on following the log
 * until the POST's last response ({@link followStream}). The transport serves one POST, so the
 * requests whose answers end the stream are known from the start.
 */
export class PostStreamLog implements EventStore {
  private readonly awaited: Set<string>;
  private streamId: string | undefined;
  private ended = false;

  constructor(
    private readonly redis: RedisClient,
    private readonly keyPrefix: string,
    requestIds: RequestId[],
  ) {
    this.awaited = new Set(requestIds.map((id) => JSON.stringify(id)));
  }

  private key(streamId: string): string {
    return `${this.keyPrefix}:${streamId}`;
  }

  async storeEvent(streamId: string, message: JSONRPCMessage): Promise<string> {
    this.streamId = streamId;
    if (isJSONRPCResultResponse(message) || isJSONRPCErrorResponse(message)) this.awaited.delete(JSON.stringify(message.id));
    const end = this.awaited.size === 0 && !this.ended;
    if (end) this.ended = true;
    const entry = await this.append(streamId, Object.keys(message).length === 0 ? '' : JSON.stringify(message), end);
    return `${streamId}_${entry}`;
  }

  /** A request that gets no answer (cancelled): once none is awaited, the log says the stream ended. */
  async noAnswer(requestId: RequestId): Promise<void> {
    this.awaited.delete(JSON.stringify(requestId));
    if (this.awaited.size > 0 || this.ended || this.streamId === undefined) return;
    this.ended = true;
    await this.append(this.streamId, '', true);
  }

  private async append(streamId: string, message: string, end: boolean): Promise<string> {
    const key = this.key(streamId);
    const fields = end ? ['m', message, 'end', '1'] : ['m', message];
    const [[err, entry]] = (await this.redis.multi().xadd(key, 'MAXLEN', '~', MAX_EVENTS, '*', ...fields).pexpire(key, MCP_IDLE_MS).exec()) as [[Error | null, string]];
    if (err) throw err;
    return entry;
  }

  // The SDK asks these only for a GET with Last-Event-ID, which routes.ts answers itself (followStream) on whichever instance it reaches.
  async getStreamIdForEventId(eventId: string): Promise<string | undefined> {
    return parseEventId(eventId)?.streamId;
  }

  async replayEventsAfter(lastEventId: string, { send }: { send: (eventId: string, message: JSONRPCMessage) => Promise<void> }): Promise<string> {
    const at = parseEventId(lastEventId);
    if (!at) return '';
    for (const e of toEntries(await this.redis.xrange(this.key(at.streamId), `(${at.entry}`, '+'))) if (e.message) await send(`${at.streamId}_${e.id}`, e.message);
    return at.streamId;
  }
}

/** Whether the stream an event id names was logged in this session (and has not expired). */
export async function streamExists(redis: RedisClient, keyPrefix: string, streamId: string): Promise<boolean> {
  return (await redis.exists(`${keyPrefix}:${streamId}`)) === 1;
}

/**
 * The logged stream after `after`, entry by entry, as it grows, until the entry that ends it, the
 * log's expiry, or `signal`. `reader` is a connection of its own: XREAD blocks it, and an abort
 * disconnects it.
 */
export async function* followStream(reader: RedisClient, keyPrefix: string, streamId: string, after: string, signal: AbortSignal): AsyncGenerator<StreamEntry | 'idle', void, undefined> {
  const key = `${keyPrefix}:${streamId}`;
  const stop = () => reader.disconnect();
  signal.addEventListener('abort', stop, { once: true });
  let cursor = after;
  try {
    // Resumed after the entry that ended it: nothing follows.
    const [last] = toEntries(await reader.xrevrange(key, '+', '-', 'COUNT', 1));
    if (last?.end && last.id === after) return;
    while (!signal.aborted) {
      const read = await reader.xread('COUNT', 500, 'BLOCK', 10_000, 'STREAMS', key, cursor).catch((err: Error) => {
        if (signal.aborted) return undefined;
        throw err;
      });
      if (read === undefined) return;
      if (read === null) {
        if ((await reader.exists(key)) === 0) return;
        yield 'idle';
        continue;
      }
      for (const e of toEntries(read[0][1])) {
        cursor = e.id;
        yield e;
        if (e.end) return;
      }
    }
  } finally {
    signal.removeEventListener('abort', stop);
  }
}

function toEntries(raw: [string, string[]][]): StreamEntry[] {
  return raw.map(([id, fields]) => {
    const f = new Map<string, string>();
    for (let i = 0; i + 1 < fields.length; i += 2) f.set(fields[i], fields[i + 1]);
    const m = f.get('m');
    return { id, message: m ? (JSON.parse(m) as JSONRPCMessage) : null, end: f.get('end') === '1' };
  });
}

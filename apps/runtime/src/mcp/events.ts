import { randomUUID } from 'node:crypto';
import type { EventStore } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';

/** Messages kept per session for a reconnect: enough for a long turn's progress, bounded all the same. */
const MAX_EVENTS = 5_000;

/**
 * One MCP session's sent SSE messages, so that a cut stream resumes with `Last-Event-ID`: the
 * SDK's transport stores every message it sends on a stream here and, on a GET with
 * Last-Event-ID, replays what followed it and goes on sending the stream's later messages on the
 * new connection. Event ids are `<stream id>_<n>`; the session (and so this store) lives in the
 * runtime instance that initialized it.
 */
export class SessionEventStore implements EventStore {
  private readonly events = new Map<string, { streamId: string; message: JSONRPCMessage }>();
  private next = 0;

  async storeEvent(streamId: string, message: JSONRPCMessage): Promise<string> {
    const id = `${streamId}_${String(++this.next).padStart(10, '0')}_${randomUUID().slice(0, 8)}`;
    this.events.set(id, { streamId, message });
    if (this.events.size > MAX_EVENTS) this.events.delete(this.events.keys().next().value as string);
    return id;
  }

  async getStreamIdForEventId(eventId: string): Promise<string | undefined> {
    return this.events.get(eventId)?.streamId;
  }

  async replayEventsAfter(lastEventId: string, { send }: { send: (eventId: string, message: JSONRPCMessage) => Promise<void> }): Promise<string> {
    const from = this.events.get(lastEventId);
    if (!from) return '';
    let after = false;
    for (const [id, e] of this.events) {
      if (id === lastEventId) after = true;
      else if (after && e.streamId === from.streamId) await send(id, e.message);
    }
    return from.streamId;
  }
}

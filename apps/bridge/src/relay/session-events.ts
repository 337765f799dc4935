import type { OpencodeClient } from '../agents/opencode-client';
import { envelope } from '../bus/session-bus';
import type { SessionDeps } from '../domain/bridge-sessions';
import type { SessionRecord } from '../store/sessions';
import type { AgentEvent, AgentEventStream } from './agent-events';

/** Agent events that say nothing about the session (keep-alives): not activity, not relayed to observability. */
const QUIET = new Set(['server.connected', 'server.heartbeat']);

/**
 * The agent servers' own events, followed for each session this instance runs: to the session's
 * sockets as `session.event` (through the bus), and to observability; each counts as activity.
 */
export class SessionEventRelay {
  private readonly streams = new Map<string, AgentEventStream>();

  constructor(private readonly d: Pick<SessionDeps, 'bus' | 'store' | 'relay' | 'logger'>) {}

  follow(rec: SessionRecord, client: OpencodeClient): void {
    this.streams.set(rec.id, client.events((e) => this.forward(rec, e), this.d.logger));
  }

  stop(sessionId: string): void {
    this.streams.get(sessionId)?.close();
    this.streams.delete(sessionId);
  }

  private forward(rec: SessionRecord, e: AgentEvent): void {
    const id = rec.id;
    // The stream's keep-alive is the socket's business (ping/pong), not the client's.
    if (e.type === 'server.heartbeat') return;
    const wire = envelope('session.event', id, { type: e.type, payload: e.properties ?? null, source: 'opencode' });
    void this.d.bus.publish({ kind: 'envelope', sessionId: id, wire }).catch(() => undefined);
    if (QUIET.has(e.type)) return;
    this.d.store.touch(id);
    this.d.relay.send(rec, { event_type: e.type, session_id: id, agent_name: 'opencode', ...(e.id && { event_id: e.id }), content: [{ type: 'opencode.event', data: e.properties ?? null }] });
  }
}

import type { bridge } from '@tessera/contracts';
import { errorSummary } from '@tessera/kit';
import type { AgentProcess } from '../agents/agent-process';
import { envelope } from '../bus/session-bus';
import type { SessionEventRelay } from '../relay/session-events';
import type { SessionRecord } from '../store/sessions';
import type { SessionDeps } from './bridge-sessions';

export type SessionClosingDeps = Pick<SessionDeps, 'config' | 'store' | 'pool' | 'reaper' | 'bus' | 'requests' | 'relay' | 'logger'> & { events: SessionEventRelay };

/**
 * How a session ends, whatever ends it (a request, idleness, an operator's stop, a dead instance,
 * its server's crash): its server stopped where it runs, then its state gone, its sockets told
 * `session.closed`, its pending requests cancelled and observability told, once.
 */
export class SessionClosing {
  constructor(private readonly d: SessionClosingDeps) {}

  /** Closes a session wherever its agent server runs; false when there is no such session. */
  async close(id: string, reason: bridge.CloseReason): Promise<boolean> {
    const rec = await this.d.store.get(id);
    if (!rec) return false;
    if (rec.instance === this.d.config.instanceId) await this.closeLocal(rec, reason);
    else if (await this.d.reaper.isAlive(rec.instance)) await this.closeRemote(rec, reason);
    else await this.closeState(rec, 'reaped');
    return true;
  }

  /** A session whose server runs on this instance. */
  async closeLocal(rec: SessionRecord, reason: bridge.CloseReason): Promise<void> {
    this.d.events.stop(rec.id);
    await this.d.pool.stop(rec.id);
    await this.closeState(rec, reason);
  }

  /** The session's state goes; its sockets are told, its pending requests cancelled, observability told. */
  async closeState(rec: SessionRecord, reason: bridge.CloseReason): Promise<void> {
    const { store, requests, bus, relay, logger } = this.d;
    if (!(await store.remove(rec))) return;
    await requests.cancelAll(rec.id).catch((e) => logger.warn('requests not cancelled', { session_id: rec.id, error: errorSummary(e) }));
    const wire = envelope('session.closed', rec.id, { reason });
    await bus.publish({ kind: 'closed', sessionId: rec.id, reason, wire }).catch(() => undefined);
    relay.send(rec, { event_type: 'session_stop', session_id: rec.id, reason, event_id: `${rec.id}:stop` });
    logger.info('session closed', { session_id: rec.id, reason, port: rec.port });
  }

  /** A server that exited without being asked to: its session ends as `crashed`. */
  async crashed(id: string, proc: AgentProcess): Promise<void> {
    this.d.events.stop(id);
    this.d.logger.warn('agent server crashed', { session_id: id, pid: proc.pid });
    const rec = await this.d.store.get(id).catch(() => null);
    if (rec) await this.closeState(rec, 'crashed').catch((e) => this.d.logger.error('crashed session not cleared', { session_id: id, error: errorSummary(e) }));
  }

  /**
   * Asks the instance that runs the server to close it, and returns once it did: a caller told
   * "closed" may bootstrap again at once and find its place in the quotas free.
   */
  private async closeRemote(rec: SessionRecord, reason: bridge.CloseReason): Promise<void> {
    await this.d.bus.publish({ kind: 'close', sessionId: rec.id, instance: rec.instance, reason });
    const deadline = Date.now() + this.d.config.SHUTDOWN_TIMEOUT_MS;
    while ((await this.d.store.get(rec.id)) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25));
  }
}

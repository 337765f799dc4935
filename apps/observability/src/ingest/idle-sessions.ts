import { publishLive } from '../bus/live';
import type { ObservabilityServices } from '../services';
import { toSession, type SessionRow } from '../store/sessions';
import { LockedSweep } from './sweep';

/**
 * Closes outside sessions nobody reports on: an agent's hook or an OpenTelemetry exporter may never
 * send its end (a crash, a killed terminal), and such a session would stay `running` forever. One
 * with no event for SESSION_IDLE_MS becomes `finished`, with a `session_updated` to live sockets;
 * an event that arrives later starts it again. Runtime chats and bridge sessions are left alone:
 * their services report their ends, and a chat waiting for its user is rightly running.
 */
export class IdleSessions extends LockedSweep {
  constructor(s: ObservabilityServices) {
    super(s, 'idle-sessions', s.config.SESSION_IDLE_SWEEP_MS);
  }

  protected get enabled(): boolean {
    return this.s.config.SESSION_IDLE_MS > 0;
  }

  protected async pass(): Promise<number> {
    const { config, db, bus, logger } = this.s;
    const r = await db.pool.query<SessionRow>(
      `UPDATE sessions SET status = 'finished', modified_at = now()
        WHERE status = 'running' AND source IN ('external', 'otel')
          AND COALESCE(last_event_at, created_at) < now() - make_interval(secs => $1 / 1000.0)
        RETURNING *`,
      [config.SESSION_IDLE_MS],
    );
    for (const row of r.rows) {
      const session = toSession(row);
      await publishLive(bus, { kind: 'session_updated', app_id: session.app_id, session }).catch((e: Error) =>
        logger.warn('could not publish an idle session closed', { session_id: session.session_id, error: e.message }),
      );
    }
    if (r.rowCount) logger.info('closed idle sessions', { sessions: r.rowCount, idle_ms: config.SESSION_IDLE_MS });
    return r.rowCount ?? 0;
  }
}

import { publishLive } from '../bus/live';
import { LockedSweep } from '@tessera/kit';
import type { ObservabilityServices } from '../services';
import { toSession } from '../store/sessions';
import { finishIdleSessions } from '../store/sweeps';

/**
 * Closes outside sessions nobody reports on: an agent's hook or an OpenTelemetry exporter may never
 * send its end (a crash, a killed terminal), and such a session would stay `running` forever. One
 * with no event for SESSION_IDLE_MS becomes `finished`, with a `session_updated` to live sockets;
 * an event that arrives later starts it again. Runtime chats and bridge sessions are left alone:
 * their services report their ends, and a chat waiting for its user is rightly running.
 */
export class IdleSessions extends LockedSweep<number> {
  constructor(protected readonly s: ObservabilityServices) {
    super(s.redis, s.logger, { name: 'idle-sessions', lockKey: `${s.config.BULL_PREFIX}:observability:idle-sessions`, intervalMs: s.config.SESSION_IDLE_SWEEP_MS, idle: 0, atStart: true });
  }

  protected get enabled(): boolean {
    return this.s.config.SESSION_IDLE_MS > 0;
  }

  protected async pass(): Promise<number> {
    const { config, db, bus, logger } = this.s;
    const rows = await finishIdleSessions(db.pool, config.SESSION_IDLE_MS);
    for (const row of rows) {
      const session = toSession(row);
      await publishLive(bus, { kind: 'session_updated', app_id: session.app_id, session }).catch((e: Error) =>
        logger.warn('could not publish an idle session closed', { session_id: session.session_id, error: e.message }),
      );
    }
    if (rows.length > 0) logger.info('closed idle sessions', { sessions: rows.length, idle_ms: config.SESSION_IDLE_MS });
    return rows.length;
  }
}

import { errorSummary } from '@tessera/kit';
import type { SessionEventRelay } from '../relay/session-events';
import type { SessionDeps } from './bridge-sessions';
import type { SessionClosing } from './session-closing';

export type SessionSweepDeps = Pick<SessionDeps, 'config' | 'store' | 'pool' | 'reaper' | 'logger'> & {
  closing: SessionClosing;
  events: SessionEventRelay;
  /** A server started whose session is not recorded yet: not a leftover. */
  isRecording: (sessionId: string) => boolean;
};

/**
 * The cleanup pass, every OPENCODE_CLEANUP_INTERVAL: idle and unused sessions closed, servers
 * whose session is gone stopped, and what dead instances left reaped.
 */
export class SessionSweep {
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly d: SessionSweepDeps) {}

  async run(now = Date.now()): Promise<void> {
    const { config: c, store, pool, reaper, closing } = this.d;
    for (const server of pool.list()) {
      if (this.d.isRecording(server.sessionId)) continue;
      const rec = await store.get(server.sessionId);
      if (!rec) {
        this.d.events.stop(server.sessionId);
        await pool.stop(server.sessionId);
        continue;
      }
      // Idle: nothing happened for a long while; unused: bootstrapped, then never asked for.
      const unused = !rec.used && now - Date.parse(rec.startedAt) >= c.OPENCODE_UNUSED_TIMEOUT;
      if (unused || now - rec.lastActivity >= c.OPENCODE_IDLE_TIMEOUT) await closing.closeLocal(rec, 'idle');
    }
    const dead = await reaper.reap();
    for (const rec of await store.all()) {
      if (rec.instance !== c.instanceId && (dead.has(rec.instance) || !(await reaper.isAlive(rec.instance)))) await closing.closeState(rec, 'reaped');
    }
  }

  start(): void {
    this.timer = setInterval(() => void this.run().catch((e) => this.d.logger.warn('cleanup pass failed', { error: errorSummary(e) })), this.d.config.OPENCODE_CLEANUP_INTERVAL);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }
}

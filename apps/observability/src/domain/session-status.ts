import type { observability } from '@tessera/contracts';

type SessionStatus = observability.SessionStatus;

/**
 * A session's status after an event that says something about it (`NormalizedEvent.status`):
 * `session_start` or a new turn → running, `session_stop` or a finished run → finished, a run
 * that reports it was stopped → stopped. A stopped session stays stopped until something starts
 * it again (running): the tail of an aborted run must not make it look finished or alive.
 */
export function nextStatus(current: SessionStatus, said: SessionStatus | undefined): SessionStatus {
  if (said === undefined) return current;
  if (current === 'stopped' && said !== 'running') return current;
  return said;
}

import type { observability } from '@tessera/contracts';

type Notice = Extract<observability.ObsServerMessage, { type: 'events_dropped' }>;

/** Sessions a notice names at most; the rest are counted in `count` and flagged `truncated`. */
export const MAX_NAMED_SESSIONS = 500;

interface Missed {
  session_id: string;
  app_id: string | null;
  from_seq: number;
  to_seq: number;
  count: number;
}

/**
 * The events a live socket was not sent while it was behind, by session: what the client needs to
 * read them back (`GET /events/{id}?after=<from_seq - 1>`). Bounded whatever the socket misses: one
 * entry per session up to MAX_NAMED_SESSIONS, a count beyond.
 */
export class DroppedEvents {
  private readonly bySession = new Map<string, Missed>();
  private total = 0;
  private truncated = false;

  get count(): number {
    return this.total;
  }

  add(sessionId: string, appId: string | null, seq: number): void {
    this.total++;
    // The key is unambiguous: NUL occurs in neither an app id nor a session id.
    const key = `${appId ?? ''}\u0000${sessionId}`;
    const m = this.bySession.get(key);
    if (m) {
      m.from_seq = Math.min(m.from_seq, seq);
      m.to_seq = Math.max(m.to_seq, seq);
      m.count++;
    } else if (this.bySession.size < MAX_NAMED_SESSIONS) {
      this.bySession.set(key, { session_id: sessionId, app_id: appId, from_seq: seq, to_seq: seq, count: 1 });
    } else {
      this.truncated = true;
    }
  }

  /** The notice for what was missed so far (null when nothing was), and a fresh start. */
  take(): Notice | null {
    if (this.total === 0) return null;
    const sessions = [...this.bySession.values()];
    const notice: Notice = {
      type: 'events_dropped',
      count: this.total,
      sessions,
      truncated: this.truncated,
      message: `this socket fell behind: ${this.total} event(s) of sessions it did not subscribe to were not sent; read them with GET /events/{session_id}?after=<from_seq - 1>, or subscribe to a session to get all of its events`,
    };
    this.bySession.clear();
    this.total = 0;
    this.truncated = false;
    return notice;
  }
}

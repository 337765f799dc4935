import { useSyncExternalStore } from 'react';
import { request, wsUrl } from './api';
import type { ObsServerMessage, Session, StoredEvent } from './types';

export type LiveStatus = 'connecting' | 'live' | 'reconnecting' | 'closed';

type EventListener = (events: StoredEvent[]) => void;
interface Subscription {
  listeners: Set<EventListener>;
  /** Last seq delivered: a reconnect resumes after it (observability replays the gap). */
  lastSeq: number;
}

/** Figures a benchmark reads from the page (`window.__console`). */
export const stats = { messages: 0, sessionsApplied: 0, eventsApplied: 0, flushes: 0 };
(window as unknown as { __console: typeof stats }).__console = stats;

function originRefusal(): string {
  return `the live feed refuses this page while observability answers over HTTP: most likely this address (${location.origin}) is not in CORS_ORIGINS; open the console at an address listed there, or add this one`;
}

/**
 * Observability's live socket (`/api/observability/ws`), one per console: every session the
 * operator may see, kept current by `init` / `session_updated` / `session_deleted`, and the events of
 * the sessions a page subscribed to (and only those: it unsubscribes from the rest on connecting). Messages are applied in batches (every FLUSH_MS) so that a
 * burst of thousands of updates costs one render, not thousands.
 */
export class LiveSessions {
  readonly sessions = new Map<string, Session>();
  /** Deleted here: a page of the HTTP list read before the delete must not bring them back. */
  private readonly deleted = new Set<string>();
  private readonly subs = new Map<string, Subscription>();
  private readonly listeners = new Set<() => void>();
  private ws: WebSocket | null = null;
  private queue: ObsServerMessage[] = [];
  private timer: ReturnType<typeof setTimeout> | null = null;
  private retry: ReturnType<typeof setTimeout> | null = null;
  private attempt = 0;
  private stopped = false;
  /** Whether a socket of this page ever opened: one that never did may be refused for the page's address. */
  private opened = false;
  /** The handshake is refused while observability answers over HTTP (see explainRefusal). */
  private originRefused = false;
  version = 0;
  status: LiveStatus = 'connecting';
  error: string | null = null;

  static FLUSH_MS = 50;

  connect(): void {
    this.stopped = false;
    // Narrowed from the start: only the events of the sessions it subscribes to (not every event of
    // the token's apps, a dashboard's feed), so the socket carries nothing the console would drop.
    const ws = (this.ws = new WebSocket(wsUrl('/api/observability/ws?events=subscribed')));
    ws.onopen = () => {
      this.attempt = 0;
      this.opened = true;
      this.originRefused = false;
      this.status = 'live';
      this.error = null;
      for (const [id, sub] of this.subs) this.send({ type: 'subscribe', session_id: id, after: sub.lastSeq });
      this.changed();
    };
    ws.onmessage = (e) => {
      stats.messages++;
      try {
        this.queue.push(JSON.parse(String(e.data)) as ObsServerMessage);
      } catch {
        return;
      }
      this.timer ??= setTimeout(() => this.flush(), LiveSessions.FLUSH_MS);
    };
    ws.onclose = (e) => {
      if (this.ws !== ws) return;
      this.ws = null;
      if (this.stopped) return;
      this.status = 'reconnecting';
      // The handshake's refusal is not readable in a browser: say what it most likely was.
      const failing = e.code === 1006 && this.attempt > 1;
      this.error = this.originRefused ? originRefusal() : failing ? 'the live feed is not reachable (observability down, or this token is not an operator’s)' : e.reason || null;
      if (failing && !this.opened && !this.originRefused) void this.explainRefusal();
      this.changed();
      const delay = Math.min(10_000, 250 * 2 ** this.attempt++) * (0.5 + Math.random() / 2);
      this.retry = setTimeout(() => this.connect(), delay);
    };
  }

  /**
   * A socket that never opened while observability answers the same token over HTTP: the upgrade
   * itself is refused, and the check only upgrades have is the page's origin (browsers send Origin
   * on every upgrade; the gateway and observability allow those in CORS_ORIGINS). The console
   * opened at 127.0.0.1:8080 when only localhost:8080 is listed is the usual case.
   */
  private async explainRefusal(): Promise<void> {
    try {
      await request('GET', '/api/observability/sessions?limit=1');
    } catch {
      return;
    }
    if (this.stopped || this.status === 'live' || this.opened) return;
    this.originRefused = true;
    this.error = originRefusal();
    this.changed();
  }

  close(): void {
    this.stopped = true;
    if (this.retry) clearTimeout(this.retry);
    this.ws?.close(1000);
    this.ws = null;
    this.status = 'closed';
  }

  private send(m: object): void {
    if (this.ws?.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(m));
  }

  /** Sessions read over HTTP (a page of the list): merged like live updates, newest version wins. */
  merge(sessions: Session[]): void {
    for (const s of sessions) this.upsert(s);
    this.changed();
  }

  remove(id: string): void {
    this.deleted.add(id);
    this.sessions.delete(id);
    this.changed();
  }

  private upsert(s: Session): void {
    if (this.deleted.has(s.session_id)) return;
    const had = this.sessions.get(s.session_id);
    if (had && Date.parse(had.modified_at) > Date.parse(s.modified_at)) return;
    if (had && had.modified_at === s.modified_at && had.event_count > s.event_count) return;
    this.sessions.set(s.session_id, s);
    stats.sessionsApplied++;
  }

  private flush(): void {
    this.timer = null;
    stats.flushes++;
    const batch = this.queue;
    this.queue = [];
    const events = new Map<string, StoredEvent[]>();
    for (const m of batch) {
      if (m.type === 'init') for (const s of m.sessions) this.upsert(s);
      else if (m.type === 'session_updated') this.upsert(m.session);
      else if (m.type === 'session_deleted') {
        this.deleted.add(m.session_id);
        this.sessions.delete(m.session_id);
      } else if (m.type === 'event') {
        const sub = this.subs.get(m.session_id);
        if (!sub || m.event.seq <= sub.lastSeq) continue;
        sub.lastSeq = m.event.seq;
        const list = events.get(m.session_id) ?? [];
        list.push(m.event);
        events.set(m.session_id, list);
        stats.eventsApplied++;
      } else if (m.type === 'error') this.error = `live feed: ${m.message}`;
    }
    for (const [id, list] of events) for (const l of this.subs.get(id)?.listeners ?? []) l(list);
    this.changed();
  }

  /** A session's events: the stored ones after `after`, then live ones, each once, across reconnects. */
  subscribe(sessionId: string, listener: EventListener, after = 0): () => void {
    let sub = this.subs.get(sessionId);
    if (!sub) {
      sub = { listeners: new Set(), lastSeq: after };
      this.subs.set(sessionId, sub);
      this.send({ type: 'subscribe', session_id: sessionId, after });
    }
    sub.listeners.add(listener);
    return () => {
      sub.listeners.delete(listener);
      if (sub.listeners.size === 0) {
        this.subs.delete(sessionId);
        this.send({ type: 'unsubscribe', session_id: sessionId });
      }
    };
  }

  private changed(): void {
    this.version++;
    for (const l of this.listeners) l();
  }

  onChange(l: () => void): () => void {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }
}

/** Re-renders on every applied batch; returns the store's version. */
export function useLive(live: LiveSessions): number {
  return useSyncExternalStore(
    (l) => live.onChange(l),
    () => live.version,
  );
}

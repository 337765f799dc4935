import type { RawData, WebSocket } from 'ws';
import { observability, type ObservabilityLive } from '@tessera/contracts';
import { zodIssues, type Logger, type SocketHandler, type SocketHub } from '@tessera/kit';
import { inScope, type AppScope } from '../domain/access';
import type { EventStore } from '../store/events';
import { toSession, type SessionKey, type SessionStore } from '../store/sessions';
import { DroppedEvents } from './dropped-events';
import type { LiveFeed, LiveListener } from './live-feed';

export interface LiveSocketDeps {
  hub: SocketHub;
  feed: LiveFeed;
  sessions: SessionStore;
  events: EventStore;
  logger: Logger;
  /** Unsent bytes past which a socket is behind (config WS_BEHIND_BYTES). */
  behindBytes: number;
}

/** Sessions on the bus are the service's own `toSession` output (the bus schema keeps them loose). */
type Session = observability.Session;

const PAGE = 1000;
const INIT_SESSIONS = 100;
const MAX_SUBSCRIPTIONS = 100;
/** How often a socket that is behind is looked at again, to tell it what it missed once it caught up. */
const BEHIND_POLL_MS = 100;

/** A subscription's key on this socket: the session's app ('' for none) and id (NUL occurs in neither). */
const subKey = (app: string, id: string) => `${app}\u0000${id}`;
const appKey = (appId: string | null | undefined) => appId ?? '';

/** Where one subscribed session stands on this socket: the last seq sent, and what waits while the log is read. */
interface Subscription {
  key: SessionKey;
  /** The session's app as clients see it (null for none). */
  appId: string | null;
  cursor: number;
  /** Reading the log (initial replay or a gap): live events wait here. */
  reading: boolean;
  waiting: { seq: number; wire: string }[];
}

/**
 * One operator's live view (document 001 §5): `init` with the newest sessions of their apps (and
 * the cursor of the rest), then `session_updated` / `session_deleted` for those apps, and `event`:
 * every event of those apps, as a dashboard written from the document expects, until the client
 * subscribes to a session, which narrows the socket to its subscriptions. A subscription with
 * `after` first sends the stored events after that seq, then `subscribed`, then live ones: each
 * session's events arrive once, in seq order, across reconnects and across instances (a gap in the
 * live seqs is read from the log). A session is an app's: the same id in two of the token's apps is
 * two sessions, and `subscribe` names the app (`app_id`) when the id alone is ambiguous.
 *
 * A slow socket costs only itself: past `behindBytes` unsent, events of sessions it did not
 * subscribe to are dropped (and named in `events_dropped` once it drains) and its `session_updated`
 * are coalesced; a subscribed session's events are never dropped (past the hub's limit the socket
 * is closed with 1013, and the client resumes with `after`).
 */
export class LiveSocket implements SocketHandler, LiveListener {
  private readonly subs = new Map<string, Subscription>();
  /** Events of sessions not subscribed to: every one until the first subscribe ('default'), or after `subscribe all`. */
  private all: 'default' | 'explicit' | false = 'default';
  /** Behind: what was not sent meanwhile, and the latest `session_updated` of each session. */
  private lagging = false;
  private readonly dropped = new DroppedEvents();
  private readonly coalesced = new Map<string, Session>();
  private poll: NodeJS.Timeout | null = null;
  private ready = false;
  private early: ObservabilityLive[] = [];
  /** The last seq of each session `init` showed: an event up to it was stored before the socket began (history, not live). */
  private readonly shownInInit = new Map<string, number>();
  private removeListener: (() => void) | null = null;
  private work: Promise<void> = Promise.resolve();

  constructor(
    private readonly d: LiveSocketDeps,
    private readonly ws: WebSocket,
    private readonly scope: AppScope,
    opts: { narrowed?: boolean } = {},
  ) {
    if (opts.narrowed) this.all = false;
  }

  /** Listen first, then read the sessions: a change committed after the read is not missed. */
  async open(): Promise<void> {
    this.removeListener = await this.d.feed.add(this);
    const { sessions, next_cursor, lastSeqs } = await this.d.sessions.list(this.scope, observability.SessionsQuery.parse({ limit: INIT_SESSIONS }));
    sessions.forEach((x, i) => this.shownInInit.set(subKey(appKey(x.app_id), x.session_id), lastSeqs[i]));
    this.send({ type: 'init', sessions, next_cursor });
    this.ready = true;
    for (const m of this.early.splice(0)) this.onLive(m);
  }

  onClose(): void {
    this.removeListener?.();
    this.subs.clear();
    if (this.poll) clearInterval(this.poll);
    this.poll = null;
  }

  onRateLimited(): void {
    this.send({ type: 'error', code: 'RATE_LIMITED', message: 'too many messages; slow down' });
  }

  onError(): void {
    this.send({ type: 'error', code: 'INTERNAL', message: 'the message could not be processed; try again' });
  }

  onResync(): void {
    // Messages may have been lost while Redis was away: every subscription catches up from the log.
    for (const [id, sub] of this.subs) this.catchUp(id, sub);
  }

  async onMessage(raw: RawData, isBinary: boolean): Promise<void> {
    if (isBinary) return this.fail('BAD_MESSAGE', 'binary frames are not supported; send JSON text');
    let json: unknown;
    try {
      json = JSON.parse(raw.toString());
    } catch {
      return this.fail('INVALID_JSON', 'message is not valid JSON');
    }
    const parsed = observability.ObsClientMessage.safeParse(json);
    if (!parsed.success) return this.fail('SCHEMA_VALIDATION_FAILED', zodIssues(parsed.error).map((i) => `${i.path}: ${i.message}`).join('; '));
    const m = parsed.data;
    if (m.type === 'ping') return this.send({ type: 'pong' });
    if (m.type === 'unsubscribe') {
      if (m.all) return void (this.all = false);
      for (const [k, sub] of this.subs) if (sub.key.id === m.session_id && (m.app_id === undefined || sub.key.app === m.app_id)) this.subs.delete(k);
      return;
    }
    if (m.all || m.session_id === undefined) {
      this.all = 'explicit';
      return this.send({ type: 'subscribed', session_id: null, last_seq: 0 });
    }
    const id = m.session_id;
    const found = await this.d.sessions.locate(this.scope, id, m.app_id);
    // Another app's session answers exactly as one that does not exist.
    if ('missing' in found) return this.fail('NOT_FOUND', `no session "${id}"`);
    if ('apps' in found) return this.fail('AMBIGUOUS_SESSION', `session "${id}" exists in several of your apps (${found.apps.map((a) => a ?? 'no app').join(', ')}); subscribe with app_id`);
    const row = found.row;
    const k = subKey(row.app_id, row.id);
    if (!this.subs.has(k) && this.subs.size >= MAX_SUBSCRIPTIONS) return this.fail('TOO_MANY_SUBSCRIPTIONS', `at most ${MAX_SUBSCRIPTIONS} sessions per socket`);
    // The first subscription narrows a socket that never asked for everything.
    if (this.all === 'default') this.all = false;
    // Without `after`, from now on; with it, the stored events after it first.
    const from = m.after === undefined ? row.last_seq : Math.max(0, m.after);
    const appId = toSession(row).app_id;
    const sub: Subscription = { key: { app: row.app_id, id }, appId, cursor: from, reading: true, waiting: [] };
    this.subs.set(k, sub);
    this.serial(async () => {
      await this.replay(k, sub);
      this.send({ type: 'subscribed', session_id: id, app_id: appId, last_seq: sub.cursor });
      this.release(k, sub);
    });
  }

  onLive(m: ObservabilityLive): void {
    if (!this.ready) return void this.early.push(m);
    if (m.kind === 'session_deleted') {
      if (!inScope(this.scope, m.app_id)) return;
      const k = subKey(appKey(m.app_id), m.session_id);
      this.subs.delete(k);
      // A coalesced update sent after the deletion would bring the session back on the client.
      this.coalesced.delete(k);
      return this.send({ type: 'session_deleted', session_id: m.session_id, app_id: m.app_id });
    }
    if (m.kind === 'session_updated') {
      if (inScope(this.scope, m.app_id)) this.sessionUpdated(m.session as Session);
      return;
    }
    // An ingest message names one app (Ingestor.announce): its events are that app's sessions'.
    // (One naming several, from an instance of before, is read by the sessions' ids.)
    const only = m.app_ids.length === 1 ? m.app_ids[0] : undefined;
    const appOf = new Map<string, string | null>();
    for (const s of m.sessions) {
      const appId = (s.app_id as string | null | undefined) ?? null;
      appOf.set(String(s.session_id), appId);
      if (inScope(this.scope, appId)) this.sessionUpdated(s as Session);
    }
    for (const e of m.events) {
      if (only === undefined && !appOf.has(e.session_id)) continue;
      const appId = only !== undefined ? only : (appOf.get(e.session_id) ?? null);
      const k = subKey(appKey(appId), e.session_id);
      const sub = this.subs.get(k);
      if (sub) this.admit(k, sub, e);
      else if (this.all && inScope(this.scope, appId)) {
        // Stored before the socket began (its message arrives late, or while `init` was read): init shows it.
        if (e.seq <= (this.shownInInit.get(k) ?? 0)) continue;
        if (this.behind()) this.dropped.add(e.session_id, appId, e.seq);
        else this.sendRaw(e.wire);
      }
    }
  }

  /** A session as it now is: sent, or while the socket is behind, kept as its latest until it catches up. */
  private sessionUpdated(session: Session): void {
    if (this.behind()) this.coalesced.set(subKey(appKey(session.app_id), session.session_id), session);
    else this.send({ type: 'session_updated', session });
  }

  /**
   * Whether the socket is behind: it becomes so past `behindBytes` unsent and stays so until below
   * half of it, when it gets the coalesced updates and the notice of what it missed, in that order.
   */
  private behind(): boolean {
    const buffered = this.ws.bufferedAmount;
    if (!this.lagging) {
      if (buffered <= this.d.behindBytes) return false;
      this.lagging = true;
      this.poll = setInterval(() => this.behind(), BEHIND_POLL_MS);
      this.poll.unref();
      return true;
    }
    if (buffered > this.d.behindBytes / 2) return true;
    this.lagging = false;
    if (this.poll) clearInterval(this.poll);
    this.poll = null;
    for (const session of this.coalesced.values()) this.send({ type: 'session_updated', session });
    this.coalesced.clear();
    const notice = this.dropped.take();
    if (notice) {
      this.d.logger.info('live socket caught up after falling behind', { dropped: notice.count, sessions: notice.sessions.length });
      this.send(notice);
    }
    return false;
  }

  /** A live event of a subscribed session: the next seq goes out, an old one is dropped, a jump reads the log. */
  private admit(k: string, sub: Subscription, e: { seq: number; wire: string }): void {
    if (sub.reading) return void sub.waiting.push(e);
    if (e.seq <= sub.cursor) return;
    if (e.seq !== sub.cursor + 1) {
      sub.waiting.push(e);
      return this.catchUp(k, sub);
    }
    sub.cursor = e.seq;
    this.sendRaw(e.wire);
  }

  private catchUp(k: string, sub: Subscription): void {
    if (sub.reading) return;
    sub.reading = true;
    this.serial(async () => {
      await this.replay(k, sub);
      this.release(k, sub);
    });
  }

  /** Send the stored events after the cursor. */
  private async replay(k: string, sub: Subscription): Promise<void> {
    for (;;) {
      const page = await this.d.events.after(sub.key, sub.cursor, PAGE);
      for (const event of page) {
        sub.cursor = event.seq;
        this.send({ type: 'event', session_id: sub.key.id, app_id: sub.appId, event });
      }
      if (page.length < PAGE || this.subs.get(k) !== sub) return;
    }
  }

  /** Back to live: what arrived meanwhile, in order, past the cursor. */
  private release(k: string, sub: Subscription): void {
    sub.reading = false;
    const waiting = sub.waiting.sort((a, b) => a.seq - b.seq);
    sub.waiting = [];
    for (const e of waiting) this.admit(k, sub, e);
  }

  private serial(task: () => Promise<void>): void {
    this.work = this.work.then(task).catch((err: Error) => {
      this.d.logger.error('live delivery failed', { error: err.message.slice(0, 300) });
      this.ws.close(1011, 'delivery failed; reconnect and subscribe with after');
    });
  }

  private fail(code: string, message: string): void {
    this.send({ type: 'error', code, message });
  }

  private send(m: observability.ObsServerMessage): void {
    this.d.hub.send(this.ws, m);
  }

  private sendRaw(wire: string): void {
    this.d.hub.send(this.ws, wire);
  }
}

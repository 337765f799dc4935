import type { WebSocket } from 'ws';
import { CloseCode } from '@tessera/contracts';
import type { Logger, Metrics, SocketHub } from '@tessera/kit';
import type { ChatFeed, FeedListener, LiveEvent } from '../bus/feed';
import type { Timeline } from '../store/timeline';
import { control } from './envelope';
import { ResumeCursor } from './resume-cursor';

export interface DeliveryDeps {
  hub: SocketHub;
  feed: ChatFeed;
  timeline: Timeline;
  logger: Logger;
  metrics: Metrics;
}

const REPLAY_PAGE = 2000;
/** Without a client message, live delivery starts this long after chat_meta. */
const LIVE_GRACE_MS = 1000;

/**
 * A chat's timeline on one socket, in index order, with nothing lost or sent twice: live events
 * pass the ResumeCursor; a gap is read from the log first; while a resume or catch-up reads the
 * log, live events wait in a buffer. Log reads and flushes run one at a time (`serial`).
 */
export class ChatDelivery implements FeedListener {
  private cursor!: ResumeCursor;
  private live = false;
  private started = false;
  private closed = false;
  private buffer: LiveEvent[] = [];
  private work: Promise<void> = Promise.resolve();
  private unsubscribe: (() => Promise<void>) | null = null;
  private graceTimer: NodeJS.Timeout | null = null;
  /** The ws_sent counter, its label resolved once per socket rather than per event. */
  private sentCounter: { inc(): void } | null = null;

  constructor(
    private readonly d: DeliveryDeps,
    private readonly ws: WebSocket,
    private readonly chatId: string,
  ) {}

  /** Subscribe first, then read where the log is (`lastIndex()`): anything published after the read is buffered. */
  async subscribe<T>(readState: () => Promise<T & { lastIndex: number }>): Promise<T & { lastIndex: number }> {
    this.unsubscribe = await this.d.feed.subscribe(this.chatId, this);
    try {
      const state = await readState();
      this.cursor = new ResumeCursor(state.lastIndex);
      return state;
    } catch (e) {
      await this.close();
      throw e;
    }
  }

  /**
   * Live delivery starts with the client's first message (client.resume says from where; any other
   * message means "from chat_meta.last_index"), or after a grace period: a reconnecting client's
   * resume then comes before any live event, and its timeline arrives in order.
   */
  armGrace(): void {
    this.graceTimer = setTimeout(() => this.startLive(), LIVE_GRACE_MS);
    this.graceTimer.unref();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.graceTimer) clearTimeout(this.graceTimer);
    const u = this.unsubscribe;
    this.unsubscribe = null;
    await u?.();
  }

  onEvents(events: LiveEvent[]): void {
    if (!this.live) {
      for (const e of events) this.buffer.push(e);
      return;
    }
    const corked = events.length > 1 && this.cork();
    try {
      for (let i = 0; i < events.length; i++) {
        const e = events[i];
        const verdict = this.cursor.admit(e.index);
        if (verdict === 'skip') continue;
        if (verdict === 'gap') {
          for (const rest of events.slice(i)) this.buffer.push(rest);
          this.catchUp();
          return;
        }
        this.deliver(e.index, e.wire);
      }
    } finally {
      if (corked) this.uncork();
    }
  }

  onResync(): void {
    if (this.started) this.catchUp();
  }

  startLive(): void {
    if (this.started) return;
    this.started = true;
    if (this.graceTimer) clearTimeout(this.graceTimer);
    this.serial(async () => this.goLive());
  }

  resume(lastClientIndex: number): void {
    this.live = false;
    this.started = true;
    if (this.graceTimer) clearTimeout(this.graceTimer);
    this.serial(async () => {
      this.live = false; // again: a task queued before this one may have gone live since
      const total = await this.d.timeline.lastIndex(this.chatId);
      const plan = this.cursor.planResume(lastClientIndex, total);
      const replayed = await this.replay(plan.after, plan.upTo, plan.skip);
      const state = plan.diverged ? 'diverged' : replayed === 0 ? 'up_to_date' : 'replayed';
      this.send(
        control('chat.resume_boundary', { replayed_messages: replayed, last_message_index: this.cursor.cursor, total_messages: total, resume_state: state }),
      );
      this.goLive();
    });
  }

  send(s: string): void {
    if (this.d.hub.send(this.ws, s)) (this.sentCounter ??= this.d.metrics.events.labels({ kind: 'ws_sent' })).inc();
  }

  /** Read what is missing from the log, then flush what arrived meanwhile. */
  private catchUp(): void {
    this.live = false;
    this.serial(async () => {
      // Again when it runs: a catch-up queued behind another (a resync, then a gap) would otherwise
      // read the log while the first one's goLive() sends live events, and send those twice.
      this.live = false;
      await this.replay(this.cursor.cursor);
      this.goLive();
    });
  }

  private goLive(): void {
    this.live = true;
    const pending = this.buffer.sort((a, b) => a.index - b.index);
    this.buffer = [];
    if (pending.length) this.onEvents(pending);
  }

  private deliver(index: number, wire: string): void {
    this.cursor.sent(index);
    this.send(wire);
  }

  /** Send the stored events after `after` (up to `upTo`), except those in `skip`; returns how many were sent. */
  private async replay(after: number, upTo?: number, skip?: { lo: number; hi: number }): Promise<number> {
    let sent = 0;
    for (;;) {
      const page = await this.d.timeline.after(this.chatId, after, REPLAY_PAGE, upTo);
      const corked = page.length > 1 && this.cork();
      try {
        for (const e of page) {
          if (skip && e.index >= skip.lo && e.index <= skip.hi) continue;
          this.deliver(e.index, e.wire);
          sent++;
        }
      } finally {
        if (corked) this.uncork();
      }
      if (page.length) after = page[page.length - 1].index;
      if (page.length < REPLAY_PAGE || this.closed) return sent;
    }
  }

  private serial(task: () => Promise<void>): void {
    this.work = this.work.then(task).catch((err: Error) => {
      this.d.logger.error('socket delivery failed', { chat_id: this.chatId, error: err.message.slice(0, 300) });
      this.ws.close(CloseCode.InternalError, 'delivery failed; reconnect and resume');
    });
  }

  /**
   * Frames sent between cork() and uncork() leave in one write (a batch, a replay page) instead
   * of one system call each; what is sent and in which order is unchanged.
   */
  private cork(): boolean {
    const socket = (this.ws as unknown as { _socket?: { cork(): void; uncork(): void } })._socket;
    if (!socket || typeof socket.cork !== 'function') return false;
    socket.cork();
    return true;
  }

  private uncork(): void {
    (this.ws as unknown as { _socket?: { uncork(): void } })._socket?.uncork();
  }
}

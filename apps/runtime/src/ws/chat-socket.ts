import type { WebSocket } from 'ws';
import { ClientMessage, CLIENT_MESSAGE_TYPES, CloseCode, WsErrorCode, type ChatStatus } from '@tessera/contracts';
import { zodIssues, type Logger, type SocketHub, type Metrics } from '@tessera/kit';
import type { ChatFeed, FeedListener, LiveEvent } from '../bus/feed';
import { mergeContext } from '../domain/context';
import type { LoadedWorkflow } from '../engine/types';
import type { ChatRow, ChatStore } from '../store/chats';
import type { Timeline } from '../store/timeline';
import type { ToolCallStore } from '../store/tool-calls';
import { ChatInputs, InputRefused } from '../turns/chat-inputs';
import type { ChatStarter } from '../turns/chat-starter';
import type { Prisma } from '../../prisma/generated/client';
import { control } from './envelope';

export interface ChatSocketDeps {
  hub: SocketHub;
  feed: ChatFeed;
  timeline: Timeline;
  chats: ChatStore;
  toolCalls: ToolCallStore;
  chatInputs: ChatInputs;
  starter: ChatStarter;
  workflows: Map<string, LoadedWorkflow>;
  logger: Logger;
  metrics: Metrics;
}

const REPLAY_PAGE = 2000;
/** Without a client message, live delivery starts this long after chat_meta. */
const LIVE_GRACE_MS = 1000;

/**
 * One client socket on one chat. Delivery keeps a cursor (the highest index sent): live events
 * go out in index order; events at or below the cursor are dropped (no duplicate at the seam);
 * a jump past cursor + 1 means something was missed, and the gap is read from the log first.
 * While a resume or catch-up reads the log, live events wait in a buffer.
 */
export class ChatSocket implements FeedListener {
  private cursor = 0;
  private live = false;
  private buffer: LiveEvent[] = [];
  private delivery: Promise<void> = Promise.resolve();
  private unsubscribe: (() => Promise<void>) | null = null;
  private closed = false;
  /** Lowest index this socket has sent (with `cursor`, the range it sent). */
  private sentLow = Number.POSITIVE_INFINITY;
  private started = false;
  private graceTimer: NodeJS.Timeout | null = null;
  private markReady!: () => void;
  /** Client messages wait for the socket to be set up (meta sent, cursor known), in order. */
  private readonly ready = new Promise<void>((r) => (this.markReady = r));

  constructor(
    private readonly d: ChatSocketDeps,
    private readonly ws: WebSocket,
    private chat: ChatRow,
  ) {}

  /** `early`: messages the client sent while its upgrade was being authorised. */
  /** `early`: messages the client sent while its upgrade was being authorised. */
  async open(early: [Buffer, boolean][] = []): Promise<void> {
    const receive = (raw: Buffer, isBinary: boolean) => void this.ready.then(() => this.onMessage(raw, isBinary));
    for (const [raw, isBinary] of early) receive(raw, isBinary);
    this.ws.on('message', (raw, isBinary) => receive(raw as Buffer, isBinary));
    this.ws.on('close', () => void this.close());
    // Subscribe first, then read where the log is: anything published after the read is buffered.
    this.unsubscribe = await this.d.feed.subscribe(this.chat.id, this);
    const fresh = await this.d.chats.get(this.chat.id);
    if (!fresh || this.closed) return void (await this.close());
    this.chat = fresh;
    this.cursor = fresh.lastIndex;
    this.send(
      control('chat_meta', {
        chat_id: fresh.id,
        app_id: fresh.appId,
        user_id: fresh.userId,
        workflow_name: fresh.workflowName,
        status: fresh.status as ChatStatus,
        cache_seed: fresh.cacheSeed,
        last_index: fresh.lastIndex,
        mode: fresh.mode as 'workflow' | 'general',
        pending_tool_calls: await this.d.toolCalls.awaitingIds(fresh.id),
      }),
    );
    // Live delivery starts with the client's first message (client.resume says from where; any
    // other message means "from chat_meta.last_index"), or after a grace period: a reconnecting
    // client's resume then comes before any live event, and its timeline arrives in order.
    this.graceTimer = setTimeout(() => this.startLive(), LIVE_GRACE_MS);
    this.graceTimer.unref();
    this.markReady();
    const workflow = this.d.workflows.get(fresh.workflowName);
    if (workflow) await this.d.chatInputs.startGreetingOnce(fresh, workflow);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.graceTimer) clearTimeout(this.graceTimer);
    const u = this.unsubscribe;
    this.unsubscribe = null;
    await u?.();
  }

  /* ---------------------------------------------------------------- delivery */

  onEvents(events: LiveEvent[]): void {
    if (!this.live) {
      this.buffer.push(...events);
      return;
    }
    const corked = events.length > 1 && this.cork();
    try {
      for (let i = 0; i < events.length; i++) {
        const e = events[i];
        if (e.index <= this.cursor) continue;
        if (e.index !== this.cursor + 1) {
          this.buffer.push(...events.slice(i));
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

  private startLive(): void {
    if (this.started) return;
    this.started = true;
    if (this.graceTimer) clearTimeout(this.graceTimer);
    this.serial(async () => this.goLive());
  }

  /** Read what is missing from the log, then flush what arrived meanwhile. */
  private catchUp(): void {
    this.live = false;
    this.serial(async () => {
      await this.replay(this.cursor);
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
    if (index < this.sentLow) this.sentLow = index;
    if (index > this.cursor) this.cursor = index;
    this.send(wire);
  }

  /**
   * Send the stored events after `from` (up to `upTo`), skipping those this socket already sent
   * (`skip`); returns how many were sent.
   */
  private async replay(from: number, upTo?: number, skip?: { lo: number; hi: number }): Promise<number> {
    let sent = 0;
    let after = from;
    for (;;) {
      const page = await this.d.timeline.after(this.chat.id, after, REPLAY_PAGE, upTo);
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

  private resume(lastClientIndex: number): void {
    this.live = false;
    this.started = true;
    if (this.graceTimer) clearTimeout(this.graceTimer);
    this.serial(async () => {
      const total = await this.d.timeline.lastIndex(this.chat.id);
      const alreadySent = this.sentLow <= this.cursor ? { lo: this.sentLow, hi: this.cursor } : undefined;
      let state: 'up_to_date' | 'replayed' | 'diverged';
      let replayed: number;
      if (lastClientIndex > total) {
        // The client claims events the server never stored: its local timeline must be replaced.
        state = 'diverged';
        replayed = await this.replay(0, total);
      } else {
        if (!alreadySent) this.cursor = lastClientIndex;
        replayed = await this.replay(lastClientIndex, total, alreadySent);
        state = replayed === 0 ? 'up_to_date' : 'replayed';
      }
      this.send(
        control('chat.resume_boundary', { replayed_messages: replayed, last_message_index: this.cursor, total_messages: total, resume_state: state }),
      );
      this.goLive();
    });
  }

  private serial(task: () => Promise<void>): void {
    this.delivery = this.delivery.then(task).catch((err: Error) => {
      this.d.logger.error('socket delivery failed', { chat_id: this.chat.id, error: err.message });
      this.ws.close(CloseCode.InternalError, 'delivery failed; reconnect and resume');
    });
  }

  private send(s: string): void {
    if (this.d.hub.send(this.ws, s)) (this.sentCounter ??= this.d.metrics.events.labels({ kind: 'ws_sent' })).inc();
  }

  /** The ws_sent counter, its label resolved once per socket rather than per event. */
  private sentCounter: { inc(): void } | null = null;

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

  private error(code: string, message: string, details?: unknown): void {
    this.send(JSON.stringify({ type: 'chat.error', data: { message, error_code: code, ...(details !== undefined && { details }) }, timestamp: new Date().toISOString() }));
  }

  /* ---------------------------------------------------------------- client messages */

  private async onMessage(raw: Buffer, isBinary: boolean): Promise<void> {
    if (isBinary) return this.error(WsErrorCode.SchemaValidationFailed, 'binary frames are not supported; send JSON text');
    let json: unknown;
    try {
      json = JSON.parse(raw.toString('utf8'));
    } catch {
      return this.error(WsErrorCode.InvalidJson, 'message is not valid JSON');
    }
    const type = (json as { type?: unknown })?.type;
    if (typeof type !== 'string' || !(CLIENT_MESSAGE_TYPES as string[]).includes(type)) {
      return this.error(WsErrorCode.UnknownMessageType, `unknown message type ${JSON.stringify(type ?? null)}; expected one of ${CLIENT_MESSAGE_TYPES.join(', ')}`);
    }
    const parsed = ClientMessage.safeParse(json);
    if (!parsed.success) {
      const issues = zodIssues(parsed.error);
      return this.error(WsErrorCode.SchemaValidationFailed, `invalid ${type}: ${issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`, { issues });
    }
    try {
      await this.handle(parsed.data);
    } catch (e) {
      if (e instanceof InputRefused) return this.error(e.code, e.message);
      this.d.logger.error('socket message failed', { chat_id: this.chat.id, type, error: (e as Error).message });
      this.error(WsErrorCode.Internal, 'the message could not be processed; try again');
    }
  }

  private async handle(m: ClientMessage): Promise<void> {
    if (m.type !== 'client.resume') this.startLive();
    if ('chat_id' in m && m.chat_id !== undefined && m.chat_id !== this.chat.id)
      throw new InputRefused(WsErrorCode.ChatMismatch, `chat_id ${m.chat_id} is not this socket's chat`, 400);
    switch (m.type) {
      case 'client.resume':
        return this.resume(m.lastClientIndex);
      case 'user.input.submit': {
        if (m.context && Object.keys(m.context).length) {
          const chat = await this.d.chats.get(this.chat.id);
          const context = mergeContext(undefined, m.context, (chat?.context ?? {}) as Record<string, unknown>);
          await this.d.chats.update(this.chat.id, { context: context as Prisma.InputJsonValue });
        }
        const { input } = await this.d.chatInputs.submitMessage(this.chat, m.text, m.client_message_id);
        this.send(control('ack.input', { input_id: input.id, client_message_id: m.client_message_id ?? null }));
        return;
      }
      case 'tool_call_response': {
        const { toolCall } = await this.d.chatInputs.respondToolCall(this.chat, m.tool_call_id, m.response, () => undefined);
        this.send(control('ack.tool_call_response', { event_id: toolCall.eventId }));
        return;
      }
      case 'chat.switch_workflow': {
        const wf = this.workflow(m.workflow_name);
        this.chat = await this.d.chats.update(this.chat.id, { workflowName: wf.name, mode: 'workflow', state: {} });
        this.send(control('chat.mode_changed', { mode: 'workflow', workflow_name: wf.name }));
        return;
      }
      case 'chat.enter_general_mode': {
        this.chat = await this.d.chats.update(this.chat.id, { mode: 'general' });
        this.send(control('chat.mode_changed', { mode: 'general', workflow_name: null }));
        return;
      }
      case 'chat.start_general_chat': {
        const general = [...this.d.workflows.values()].find((w) => w.entry_point) ?? [...this.d.workflows.values()][0];
        const chat = await this.startChat(general.name, 'general');
        this.send(control('chat.mode_changed', { mode: 'general', workflow_name: general.name }));
        this.send(control('chat.workflow_started', { workflow_name: general.name, chat_id: chat.id, batch: false }));
        return;
      }
      case 'chat.start_workflow': {
        const chat = await this.startChat(this.workflow(m.workflow_name).name, 'workflow');
        this.send(control('chat.workflow_started', { workflow_name: m.workflow_name, chat_id: chat.id, batch: false }));
        return;
      }
      case 'chat.start_workflow_batch': {
        m.workflows.forEach((w) => this.workflow(w)); // all known, or none started
        for (const w of m.workflows) {
          const chat = await this.startChat(w, 'workflow');
          this.send(control('chat.workflow_started', { workflow_name: w, chat_id: chat.id, batch: true }));
        }
        return;
      }
    }
  }

  private workflow(name: string): LoadedWorkflow {
    const wf = this.d.workflows.get(name);
    if (!wf) throw new InputRefused(WsErrorCode.WorkflowNotFound, `no workflow named "${name}"`, 404);
    return wf;
  }

  private async startChat(workflowName: string, mode: 'workflow' | 'general'): Promise<ChatRow> {
    const { chat } = await this.d.starter.start({
      appId: this.chat.appId,
      userId: this.chat.userId,
      workflowName,
      backendContext: null,
      uiContext: null,
      inheritContextFrom: this.chat,
      mode,
    });
    return chat;
  }
}

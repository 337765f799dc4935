/**
 * One chat's socket (document 003 §4–5) kept alive across drops: reconnect with backoff and
 * jitter, `client.resume` from the last applied index on every connect, events applied once and
 * in index order, and the user's pending actions sent after the resume boundary.
 *
 * One `client.resume` per socket, never more. The runtime does not send an event twice on one
 * socket, so what a socket cannot complete (a gap, a boundary past what was applied, a refused
 * resume) is not asked for again on it: the socket is replaced, with backoff, and the new one
 * resumes from the last applied index.
 */
import { CommandFailed, CommandTracker, type ChatCommand, type CommandReply } from './commands';
import type { ChatEvent, ChatListener, ConnectionStatus, ControlEvent } from './events';
import { backoffDelay, DEFAULT_BACKOFF, newId, readJson, socketFactory, storageKey, trimSlash, type Backoff, type Host, type SocketLike } from './host';
import { PendingQueue, type MultitaskStrategy, type PendingAction } from './pending';
import { parseServerMessage, type ServerMessage } from './wire';
import { WsErrorCode } from './wire.gen';

export interface ChatIds {
  appId: string;
  userId: string;
  chatId: string;
  workflowName: string;
}

export interface ChatConnectionOptions {
  backoff?: Backoff;
  random?: () => number;
  /** What a composer submission answers a `display: "composer"` tool call with. */
  composerResponse?: (text: string) => Record<string, unknown>;
}

/** Codes after which an action is worth sending again; any other refusal is final. */
const RETRYABLE = new Set<string>([WsErrorCode.RateLimited, WsErrorCode.Unavailable, WsErrorCode.Internal]);
const OPEN = 1;
const CLOSED = 3;
/** The socket's `client.resume` in `inFlight`: an indexless chat.error before the boundary refuses it. */
const RESUME = 'resume';

type Timer = ReturnType<typeof setTimeout>;

/** One socket and what was sent on it, in order: an indexless chat.error answers the oldest. */
interface Socket {
  ws: SocketLike;
  /** client_message_ids, command ids and RESUME. */
  inFlight: string[];
}

/**
 * Where the connection is, with what that place owns: a socket only while connecting, resuming
 * or live, the reconnect timer only while waiting, the timer that sends refused actions again only
 * while live. `attempt` counts the backoff steps since the chat was last live.
 */
type State =
  | { status: 'idle' }
  /** The token is looked up (no socket yet), then the socket opens. */
  | { status: 'connecting'; attempt: number; socket: Socket | null }
  /** `client.resume` sent, its boundary not come: a gap may still be filled by the replay. */
  | { status: 'resuming'; attempt: number; socket: Socket }
  | { status: 'live'; attempt: number; socket: Socket; resend: Timer | null }
  | { status: 'waiting'; attempt: number; timer: Timer }
  /** The host said offline or background: no socket, no timer, until it says otherwise. */
  | { status: 'offline' | 'background' }
  | { status: 'closed' };

function socketOf(s: State): Socket | null {
  return s.status === 'connecting' || s.status === 'resuming' || s.status === 'live' ? s.socket : null;
}

export class ChatConnection {
  private state: State = { status: 'idle' };
  private listeners = new Set<ChatListener>();
  private readonly pending: PendingQueue;
  private readonly indexKey: string;
  private lastIndex: number;
  private _processing = false;
  /** What the host says of the device; the state follows them (pauseOrResume). */
  private online = true;
  private foreground = true;
  private readonly commands = new CommandTracker();
  private composerTarget: string | null = null;

  constructor(
    private readonly host: Host,
    readonly ids: ChatIds,
    private readonly opts: ChatConnectionOptions = {},
  ) {
    this.pending = new PendingQueue(host.storage, ids);
    this.indexKey = storageKey(ids.appId, ids.userId, ids.chatId, 'last_index');
    const stored = readJson<unknown>(host.storage, this.indexKey, -1);
    this.lastIndex = typeof stored === 'number' && Number.isInteger(stored) ? stored : -1;
  }

  get status(): ConnectionStatus {
    return this.state.status;
  }
  get processing(): boolean {
    return this._processing;
  }
  /** The highest timeline index applied (-1: none). */
  get lastAppliedIndex(): number {
    return this.lastIndex;
  }
  get pendingActions(): readonly PendingAction[] {
    return this.pending.list();
  }
  /** The event_id of the composer tool call the next `send` answers, if any. */
  get composerToolCall(): string | null {
    return this.composerTarget;
  }

  on(listener: ChatListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  connect(): void {
    const s = this.state;
    if (s.status === 'closed') throw new Error('this ChatConnection was closed; make a new one');
    if (s.status !== 'idle' && s.status !== 'offline' && s.status !== 'background') return;
    if (!this.online) return this.to({ status: 'offline' });
    if (!this.foreground) return this.to({ status: 'background' });
    void this.open(0);
  }

  /** Ends the connection for good; pending actions stay in storage for the next client. */
  close(): void {
    this.to({ status: 'closed' });
  }

  /** Reconnects now: after a drop, or instead of waiting out the backoff. A live socket is kept. */
  reconnect(): void {
    const s = this.state;
    if (s.status === 'closed' || !this.online || !this.foreground) return;
    if ('attempt' in s) s.attempt = 0;
    if (!socketOf(s) && s.status !== 'connecting') void this.open(0);
  }

  /** Closes the socket on purpose (a test, a "reconnect" button): the connection reconnects and resumes as after any drop. */
  drop(): void {
    const socket = socketOf(this.state);
    if (!socket) return;
    try {
      socket.ws.close(1000, 'dropped by the client');
    } catch {
      // already closing: its close event reconnects
    }
  }

  setOnline(online: boolean): void {
    this.online = online;
    this.pauseOrResume();
  }

  /** A backgrounded mobile app gives up its socket; coming back reconnects at once. */
  setForeground(foreground: boolean): void {
    this.foreground = foreground;
    this.pauseOrResume();
  }

  /**
   * Sends the user's message, or, when a `display: "composer"` tool call awaits an answer, answers
   * it with the text. Queued (and persisted) until the runtime acknowledges it. Returns its id.
   * `multitaskStrategy` says what it does while a turn runs (default: the workflow's): `reject`
   * refuses it (CHAT_BUSY), `interrupt` cuts the turn off, `rollback` cuts it off and drops it.
   */
  send(text: string, context?: Record<string, unknown>, opts: { multitaskStrategy?: MultitaskStrategy } = {}): string {
    if (this.composerTarget) {
      const response = this.opts.composerResponse?.(text) ?? { answer: text };
      return this.respondToolCall(this.composerTarget, response);
    }
    return this.enqueue({
      kind: 'message',
      client_message_id: newId(),
      text,
      ...(context && { context }),
      ...(opts.multitaskStrategy && { multitask_strategy: opts.multitaskStrategy }),
    });
  }

  respondToolCall(eventId: string, response: Record<string, unknown>): string {
    if (eventId === this.composerTarget) this.composerTarget = null;
    return this.enqueue({ kind: 'tool_response', client_message_id: newId(), event_id: eventId, response });
  }

  /** Moves the chat to another workflow (`chat.mode_changed` answers). */
  async switchWorkflow(workflowName: string): Promise<Extract<CommandReply, { type: 'chat.mode_changed' }>['data']> {
    const [r] = await this.command({ type: 'chat.switch_workflow', workflow_name: workflowName });
    return r.data as Extract<CommandReply, { type: 'chat.mode_changed' }>['data'];
  }

  async enterGeneralMode(): Promise<void> {
    await this.command({ type: 'chat.enter_general_mode' });
  }

  /** Starts a general chat (a new chat id) that inherits this chat's context. */
  async startGeneralChat(): Promise<{ chatId: string; workflowName: string }> {
    return started((await this.command({ type: 'chat.start_general_chat' })).at(-1)!);
  }

  /** Starts a new chat of `workflowName` that inherits this chat's context. */
  async startWorkflow(workflowName: string): Promise<{ chatId: string; workflowName: string }> {
    return started((await this.command({ type: 'chat.start_workflow', workflow_name: workflowName }))[0]);
  }

  /** Starts one chat per workflow (all known, or none started). */
  async startWorkflowBatch(workflowNames: string[]): Promise<{ chatId: string; workflowName: string }[]> {
    return (await this.command({ type: 'chat.start_workflow_batch', workflows: workflowNames })).map(started);
  }

  /**
   * Sends a command now. Commands are not queued across drops (they are not idempotent): while the
   * socket is not live this rejects at once with CommandFailed('NOT_CONNECTED').
   */
  command(cmd: ChatCommand): Promise<CommandReply[]> {
    const s = this.state;
    if (s.status !== 'live') return Promise.reject(new CommandFailed('NOT_CONNECTED', `not connected (${s.status}); send the command once the chat is live`));
    const id = `cmd:${newId()}`;
    const reply = this.commands.add(id, cmd);
    if (this.sendRaw(s.socket, cmd)) s.socket.inFlight.push(id);
    else this.commands.fail(id, new CommandFailed('NOT_CONNECTED', 'the socket closed as the command was sent'));
    return reply;
  }

  /**
   * Every change of state: what the old state owned and the new one does not keep (its timer, its
   * socket with the commands awaiting an answer on it) ends here, then `status` is told.
   */
  private to(next: State): void {
    const prev = this.state;
    if (prev.status === 'closed') return;
    this.state = next;
    if (prev.status === 'waiting') clearTimeout(prev.timer);
    if (prev.status === 'live' && prev.resend) clearTimeout(prev.resend);
    const socket = socketOf(prev);
    const kept = socket !== null && socket === socketOf(next);
    // Whatever ends a socket, or the chat's connection, ends what waited on an answer through it.
    if (!kept && (socket || next.status === 'closed' || next.status === 'offline' || next.status === 'background')) {
      this.commands.abandon();
      this.setProcessing(false);
    }
    if (socket && !kept) this.release(socket);
    // A listener told of the release may have moved the state on already.
    if (prev.status !== next.status && this.state === next) this.emit({ kind: 'status', status: next.status });
  }

  private release({ ws }: Socket): void {
    ws.onopen = ws.onmessage = ws.onclose = null;
    ws.onerror = () => undefined;
    if (ws.readyState === CLOSED) return;
    try {
      ws.close(1000, 'client closed');
    } catch {
      // already closing
    }
  }

  private enqueue(a: PendingAction): string {
    this.pending.add(a);
    this.setProcessing(true);
    this.flush();
    return a.client_message_id;
  }

  private pauseOrResume(): void {
    const s = this.state;
    if (s.status === 'closed') return;
    if (!this.online || !this.foreground) return this.to({ status: this.online ? 'background' : 'offline' });
    if ('attempt' in s) s.attempt = 0;
    if (!socketOf(s) && s.status !== 'connecting') void this.open(0);
  }

  private async open(attempt: number): Promise<void> {
    const connecting: Extract<State, { status: 'connecting' }> = { status: 'connecting', attempt, socket: null };
    this.to(connecting);
    const { workflowName, appId, chatId, userId } = this.ids;
    let token: string | null;
    try {
      token = await this.host.getAccessToken();
    } catch {
      if (this.state === connecting) this.waitAndRetry();
      return;
    }
    // The state may have changed while the token was looked up.
    if (this.state !== connecting) return;
    const path = [workflowName, appId, chatId, userId].map(encodeURIComponent).join('/');
    const url = `${trimSlash(this.host.wsBaseUrl)}/ws/${path}${token ? `?access_token=${encodeURIComponent(token)}` : ''}`;
    let ws: SocketLike;
    try {
      ws = new (socketFactory(this.host))(url);
    } catch {
      return this.waitAndRetry();
    }
    const socket: Socket = { ws, inFlight: [] };
    connecting.socket = socket;
    const ours = () => socketOf(this.state) === socket;
    ws.onopen = () => {
      const s = this.state;
      if (s.status !== 'connecting' || s.socket !== socket) return;
      this.to({ status: 'resuming', attempt: s.attempt, socket });
      if (this.sendRaw(socket, { type: 'client.resume', chat_id: this.ids.chatId, lastClientIndex: this.lastIndex })) socket.inFlight.push(RESUME);
    };
    ws.onmessage = (ev) => {
      if (ours()) this.onMessage(socket, typeof ev.data === 'string' ? ev.data : String(ev.data));
    };
    ws.onerror = () => undefined; // onclose follows and decides
    ws.onclose = (ev) => {
      if (!ours()) return;
      this.emit({ kind: 'socket_closed', code: ev.code ?? 0, reason: ev.reason ?? '' });
      if (ours()) this.waitAndRetry();
    };
  }

  /**
   * From connecting, resuming or live: the socket (if any) goes, and a new one is opened after the
   * backoff; it resumes from the last applied index. Also what a socket that cannot bring what is
   * missing gets: it will not send it again, a new one will.
   */
  private waitAndRetry(): void {
    const s = this.state;
    if (s.status !== 'connecting' && s.status !== 'resuming' && s.status !== 'live') return;
    const delay = backoffDelay(s.attempt, this.opts.backoff ?? DEFAULT_BACKOFF, this.opts.random);
    const attempt = s.attempt + 1;
    this.to({ status: 'waiting', attempt, timer: setTimeout(() => void this.open(attempt), delay) });
  }

  private onMessage(socket: Socket, raw: string): void {
    const m = parseServerMessage(raw);
    if (!m) return; // not ours to crash on
    if (m.kind === 'timeline') return this.onTimeline(m.event.index, m);
    if (m.kind === 'control') return this.onControl(socket, m.event);
    if (m.message.index !== undefined) return this.onTimeline(m.message.index, m);
    this.emit(m);
  }

  /** A timeline event, or an unreadable one that still takes its index's place. */
  private onTimeline(index: number, m: Exclude<ServerMessage, { kind: 'control' }>): void {
    if (index <= this.lastIndex) return; // already applied (a replay overlapping what we saw)
    const expected = this.lastIndex < 1 ? 1 : this.lastIndex + 1;
    if (index !== expected) {
      // A gap: never apply out of order. During the resume the boundary tells whether the replay
      // filled it; after it, only a new socket's resume can (this one will not send it again).
      if (this.state.status !== 'resuming') this.waitAndRetry();
      return;
    }
    this.lastIndex = index;
    this.host.storage.setItem(this.indexKey, String(index));
    if (m.kind === 'unknown') return this.emit(m);
    const e = m.event;
    switch (e.type) {
      case 'chat.tool_call':
        if (e.data.awaiting_response && e.data.display === 'composer') this.composerTarget = e.data.event_id;
        break;
      case 'chat.tool_call_complete':
      case 'chat.tool_call_dismiss':
        if (this.composerTarget === e.data.event_id) this.composerTarget = null;
        break;
      case 'chat.run_complete':
      case 'chat.error':
        this.setProcessing(false);
        break;
    }
    this.emit({ kind: 'timeline', event: e });
  }

  private onControl(socket: Socket, e: ControlEvent): void {
    switch (e.type) {
      case 'ack.input':
      case 'chat.input_ack':
        this.acked(socket, (a) => a.client_message_id === e.data.client_message_id);
        break;
      case 'ack.tool_call_response':
        this.acked(socket, (a) => a.kind === 'tool_response' && a.event_id === e.data.event_id);
        break;
      case 'chat.resume_boundary': {
        socket.inFlight = socket.inFlight.filter((id) => id !== RESUME);
        // -1 (a new chat) and 0 both mean "nothing applied": a boundary at 0 is not short.
        if (Math.max(this.lastIndex, 0) < e.data.last_message_index) {
          // Short of what this socket sent (live events that came before the replay, set aside as
          // a gap): it will not send them again, a new socket will.
          this.emit({ kind: 'control', event: e });
          return this.waitAndRetry();
        }
        const s = this.state;
        if (s.status === 'resuming') this.to({ status: 'live', attempt: 0, socket, resend: null });
        else if (s.status === 'live') s.attempt = 0;
        this.flush();
        break;
      }
      case 'chat.mode_changed':
      case 'chat.workflow_started': {
        const done = this.commands.reply(e);
        if (done) socket.inFlight = socket.inFlight.filter((id) => id !== done);
        break;
      }
      case 'chat.error': {
        const id = socket.inFlight.shift();
        if (id === RESUME) {
          // The resume itself was refused (rate limited, say): the boundary will not come.
          this.emit({ kind: 'control', event: e });
          return this.waitAndRetry();
        }
        if (id && this.commands.fail(id, new CommandFailed(e.data.error_code, e.data.message))) break;
        this.setProcessing(false);
        const action = id && this.pending.list().find((a) => a.client_message_id === id);
        if (action && !RETRYABLE.has(e.data.error_code)) {
          this.pending.remove((a) => a.client_message_id === id);
          this.emit({ kind: 'rejected', action, error: e.data });
        } else if (action) {
          this.resendLater();
        }
        break;
      }
    }
    this.emit({ kind: 'control', event: e });
  }

  private acked(socket: Socket, match: (a: PendingAction) => boolean): void {
    for (const a of this.pending.remove(match)) socket.inFlight = socket.inFlight.filter((id) => id !== a.client_message_id);
  }

  /** While live: sends, in order, every pending action not yet sent on this socket. */
  private flush(): void {
    const s = this.state;
    if (s.status !== 'live') return;
    const { socket } = s;
    for (const a of this.pending.list()) {
      if (socket.inFlight.includes(a.client_message_id)) continue;
      const ok =
        a.kind === 'message'
          ? this.sendRaw(socket, {
              type: 'user.input.submit',
              chat_id: this.ids.chatId,
              text: a.text,
              client_message_id: a.client_message_id,
              ...(a.context && { context: a.context }),
              ...(a.multitask_strategy && { multitask_strategy: a.multitask_strategy }),
            })
          : this.sendRaw(socket, { type: 'tool_call_response', tool_call_id: a.event_id, response: a.response });
      if (!ok) return;
      socket.inFlight.push(a.client_message_id);
    }
  }

  /** After a rate limit or an internal error: send what is still pending again, later, on this socket. */
  private resendLater(): void {
    const live = this.state;
    if (live.status !== 'live' || live.resend) return;
    const delay = backoffDelay(live.attempt++, this.opts.backoff ?? DEFAULT_BACKOFF, this.opts.random);
    live.resend = setTimeout(() => {
      live.resend = null;
      live.socket.inFlight = [];
      this.flush();
    }, delay);
  }

  private sendRaw({ ws }: Socket, msg: Record<string, unknown>): boolean {
    if (ws.readyState !== OPEN) return false;
    try {
      ws.send(JSON.stringify(msg));
      return true;
    } catch {
      return false;
    }
  }

  private setProcessing(p: boolean): void {
    if (this._processing === p) return;
    this._processing = p;
    this.emit({ kind: 'processing', processing: p });
  }

  private emit(e: ChatEvent): void {
    for (const l of [...this.listeners]) {
      try {
        l(e);
      } catch (err) {
        // A listener's bug must not stop the chat; the host still hears about it.
        console.error('tessera client listener failed', err);
      }
    }
  }
}

function started(r: CommandReply): { chatId: string; workflowName: string } {
  if (r.type !== 'chat.workflow_started') throw new CommandFailed('UNEXPECTED_REPLY', `expected chat.workflow_started, got ${r.type}`);
  return { chatId: r.data.chat_id, workflowName: r.data.workflow_name };
}

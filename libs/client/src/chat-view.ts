/**
 * What a chat screen shows, folded from a ChatConnection's events: finished messages, the text
 * streaming in, tool calls awaiting an answer, token usage, and the user's messages not yet on
 * the timeline. Framework-free (React's useChat, a React Native screen or a terminal read the same
 * immutable snapshot); every change makes a new snapshot object, so `===` tells a change.
 *
 * A user message goes through three states: pending (in the queue, not acknowledged), accepted
 * (acknowledged with an input_id, waiting for its turn) and on the timeline, where the runtime
 * writes it as `chat.text` with message_id `<input_id>:user` when its turn begins.
 */
import type { ChatConnection } from './connection';
import type { ChatEvent, ConnectionStatus, TimelineEvent } from './events';
import type { MultitaskStrategy } from './pending';

export interface ChatMessage {
  /** The timeline's message_id, or the client_message_id of a user message not on the timeline yet. */
  id: string;
  role: 'user' | 'assistant';
  /** The agent that wrote it ('user' for the user). */
  agent: string;
  text: string;
  /** Timeline index of the message's first event; null until it is on the timeline. */
  index: number | null;
  /** Queued or sent, not acknowledged by the runtime yet. */
  pending: boolean;
}

export interface ToolCallAwaiting {
  eventId: string;
  toolName: string;
  /** The UI component id (UiToolRegistry's key). */
  component: string | null;
  /** e.g. 'composer' (the next message answers it) or 'inline'. */
  display: string | null;
  payload: Record<string, unknown>;
}

export interface ChatUsage {
  inputTokens: number;
  outputTokens: number;
}

export interface ChatSnapshot {
  messages: ChatMessage[];
  /** Assistant text of the message streaming now ('' when none). */
  streamingText: string;
  toolCalls: ToolCallAwaiting[];
  /** Summed over the chat's turns (every `chat.usage_delta`); null before the first. */
  usage: ChatUsage | null;
  status: ConnectionStatus;
  processing: boolean;
  /** The last error in words (a refused message, a failed turn, ...); cleared by the next send. */
  error: string | null;
}

interface Streaming {
  id: string;
  agent: string;
  index: number;
  text: string;
}

const REFUSED = 'the runtime refused the connection';

export class ChatView {
  private timeline: ChatMessage[] = [];
  /** Assistant messages in progress, by message_id, in the order they began. */
  private readonly streaming = new Map<string, Streaming>();
  /** Acknowledged user messages whose turn has not begun. */
  private accepted: { inputId: string; clientMessageId: string; text: string }[] = [];
  /** Text of every user message seen in the queue, so it can still be shown once acknowledged. */
  private readonly queuedText = new Map<string, string>();
  private toolCalls: ToolCallAwaiting[] = [];
  private usage: ChatUsage | null = null;
  private error: string | null = null;
  private snap: ChatSnapshot;
  private readonly listeners = new Set<() => void>();
  private readonly off: () => void;

  constructor(readonly connection: ChatConnection) {
    this.snap = this.build();
    this.off = connection.on((e) => this.apply(e));
  }

  get snapshot(): ChatSnapshot {
    return this.snap;
  }

  subscribe(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  send(text: string, context?: Record<string, unknown>, opts?: { multitaskStrategy?: MultitaskStrategy }): string {
    this.error = null;
    const id = this.connection.send(text, context, opts);
    this.changed();
    return id;
  }

  answer(eventId: string, response: Record<string, unknown>): string {
    this.error = null;
    const id = this.connection.respondToolCall(eventId, response);
    this.changed();
    return id;
  }

  /** Shows an error from outside the socket (a refused stop, a failed upload). */
  setError(message: string | null): void {
    this.error = message;
    this.changed();
  }

  /** Stops listening; the connection is the caller's to close. */
  dispose(): void {
    this.off();
    this.listeners.clear();
  }

  private apply(e: ChatEvent): void {
    switch (e.kind) {
      case 'timeline':
        this.applyTimeline(e.event);
        break;
      case 'control':
        if (e.event.type === 'ack.input' || e.event.type === 'chat.input_ack') {
          const { input_id, client_message_id } = e.event.data;
          const onTimeline = this.timeline.some((m) => m.id === `${input_id}:user`);
          const text = client_message_id === null ? undefined : this.queuedText.get(client_message_id);
          if (client_message_id !== null) this.queuedText.delete(client_message_id);
          if (!onTimeline && text !== undefined && !this.accepted.some((a) => a.inputId === input_id)) {
            this.accepted.push({ inputId: input_id, clientMessageId: client_message_id!, text });
          }
        } else if (e.event.type === 'chat.error') {
          this.error = e.event.data.message;
        }
        break;
      case 'rejected':
        this.error = `${e.action.kind === 'message' ? 'message' : 'answer'} refused: ${e.error.message}`;
        if (e.action.kind === 'message') this.queuedText.delete(e.action.client_message_id);
        break;
      case 'status':
        if (e.status === 'live' && this.error?.startsWith(REFUSED)) this.error = null; // refused no more
        break;
      case 'socket_closed':
        if (e.code !== 1008) return; // an ordinary drop: the status tells it
        this.error = `${REFUSED}: ${e.reason || 'policy violation'}`;
        break;
      case 'unknown':
        return; // nothing shown changes
    }
    this.changed();
  }

  private applyTimeline(e: TimelineEvent): void {
    switch (e.type) {
      case 'chat.text': {
        const d = e.data;
        if (d.role === 'user') {
          const text = d.content ?? d.delta;
          const i = this.accepted.findIndex((a) => `${a.inputId}:user` === d.message_id);
          const j = i >= 0 ? i : this.accepted.findIndex((a) => a.text === text);
          if (j >= 0) this.accepted.splice(j, 1);
          this.timeline.push({ id: d.message_id, role: 'user', agent: d.agent, text, index: e.index, pending: false });
          break;
        }
        let s = this.streaming.get(d.message_id);
        if (!s) {
          s = { id: d.message_id, agent: d.agent, index: e.index, text: '' };
          this.streaming.set(d.message_id, s);
        }
        s.text += d.delta;
        if (d.done) {
          this.streaming.delete(d.message_id);
          this.timeline.push({ id: s.id, role: 'assistant', agent: s.agent, text: d.content ?? s.text, index: s.index, pending: false });
        }
        break;
      }
      case 'chat.tool_call':
        if (e.data.awaiting_response && !this.toolCalls.some((t) => t.eventId === e.data.event_id)) {
          const d = e.data;
          this.toolCalls = [...this.toolCalls, { eventId: d.event_id, toolName: d.tool_name, component: d.component || null, display: d.display || null, payload: d.payload }];
        }
        break;
      case 'chat.tool_call_complete':
      case 'chat.tool_call_dismiss': {
        const id = e.data.event_id;
        this.toolCalls = this.toolCalls.filter((t) => t.eventId !== id);
        break;
      }
      case 'chat.usage_delta': {
        const u = this.usage ?? { inputTokens: 0, outputTokens: 0 };
        this.usage = { inputTokens: u.inputTokens + e.data.prompt_tokens, outputTokens: u.outputTokens + e.data.completion_tokens };
        break;
      }
      case 'chat.run_complete': {
        // A turn that ended (stopped, failed) with a message still open: keep what streamed.
        for (const s of this.streaming.values()) this.timeline.push({ id: s.id, role: 'assistant', agent: s.agent, text: s.text, index: s.index, pending: false });
        this.streaming.clear();
        if (e.data.status === 'failed') this.error = e.data.reason ?? 'the turn failed';
        const turn = e.data.turn_id;
        // A newer message superseded this input: one that never ran is no longer waiting, and a
        // rolled-back turn leaves the conversation (its messages' ids start with its turn id).
        if (e.data.status === 'interrupted' || e.data.status === 'rolled_back') this.accepted = this.accepted.filter((a) => a.inputId !== turn);
        if (e.data.status === 'rolled_back') this.timeline = this.timeline.filter((m) => !m.id.startsWith(`${turn}:`));
        break;
      }
      case 'chat.error':
        this.error = e.data.message;
        break;
    }
  }

  private changed(): void {
    this.snap = this.build();
    for (const l of [...this.listeners]) l();
  }

  private build(): ChatSnapshot {
    const queued: ChatMessage[] = [];
    for (const a of this.connection.pendingActions) {
      if (a.kind !== 'message') continue;
      this.queuedText.set(a.client_message_id, a.text);
      queued.push({ id: a.client_message_id, role: 'user', agent: 'user', text: a.text, index: null, pending: true });
    }
    const accepted = this.accepted.map((a): ChatMessage => ({ id: a.clientMessageId, role: 'user', agent: 'user', text: a.text, index: null, pending: false }));
    let streamingText = '';
    for (const s of this.streaming.values()) streamingText = s.text; // the latest begun
    return {
      messages: [...this.timeline, ...accepted, ...queued],
      streamingText,
      toolCalls: this.toolCalls,
      usage: this.usage,
      status: this.connection.status,
      processing: this.connection.processing,
      error: this.error,
    };
  }
}

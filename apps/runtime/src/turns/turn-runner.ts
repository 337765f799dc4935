import { DelayedError, type Job } from 'bullmq';
import type { ChatStatus, TurnJob } from '@tessera/contracts';
import type { Logger } from '@tessera/kit';
import { runTurn } from '../engine/run-turn';
import { emptyState, type ConversationState, type Emit, type LoadedWorkflow, type ProviderRegistry, type TurnInput } from '../engine/types';
import type { ChatFeed } from '../bus/feed';
import type { ChatRow, ChatStore } from '../store/chats';
import { turnInputOf, type InputRow, type InputStore } from '../store/inputs';
import type { Timeline, StoredEvent } from '../store/timeline';
import type { ToolCallStore } from '../store/tool-calls';
import type { ChatLease, HeldLease } from './chat-lease';
import { EventWriter } from './event-writer';

export interface TurnRunnerDeps {
  chats: ChatStore;
  inputs: InputStore;
  toolCalls: ToolCallStore;
  timeline: Timeline;
  feed: ChatFeed;
  lease: ChatLease;
  workflows: Map<string, LoadedWorkflow>;
  providers: ProviderRegistry;
  logger: Logger;
  observe: (chat: ChatRow, stored: StoredEvent[]) => void;
  resolveBlueprint?: (name: string) => Promise<string>;
}

/** How long a job whose chat is leased elsewhere waits before looking again. */
const RECHECK_MS = 300;

/**
 * Runs a chat's turns: takes the chat's lease, then every pending input in order, one turn at a
 * time. A job whose chat is leased by another worker waits (delayed, not failed) until its input
 * has been taken; a worker that dies mid-turn leaves the input `processing` and its job stalled,
 * and the next worker re-runs the turn: event keys derive from the input id, so what was already
 * stored is not stored or sent again.
 */
export class TurnRunner {
  private readonly running = new Map<string, AbortController>();

  constructor(private readonly d: TurnRunnerDeps) {}

  get activeTurns(): number {
    return this.running.size;
  }

  /** Abort the chat's running turn (a stop); false when no turn of it runs here. */
  stop(chatId: string, reason = 'stopped'): boolean {
    const c = this.running.get(chatId);
    if (!c) return false;
    c.abort(new Error(reason));
    return true;
  }

  /** Abort every running turn (shutdown): the inputs stay `processing` and are re-run elsewhere. */
  abortAll(): void {
    for (const c of this.running.values()) c.abort(new Error('worker shutting down'));
  }

  async process(job: TurnJob, bullJob?: Job, token?: string): Promise<void> {
    // A job taken up again (it waited for the chat's lease, or is retried): most often the lease
    // holder has run its input meanwhile, and one read says there is nothing left to do.
    const again = !!bullJob && (bullJob.attemptsStarted ?? 0) > 1;
    if (again && (await this.inputSettled(job.input_id))) return;
    for (let first = true; ; first = false) {
      const lease = await this.d.lease.acquire(job.chat_id);
      if (!lease) {
        if (!bullJob) return;
        // On the first look the input was just read (a job taken up again), or the holder is most
        // often running the turn before this one and will take this input too (it looks for
        // more before it lets go): wait without reading it; later looks read it.
        if (!first && (await this.inputSettled(job.input_id))) return;
        await bullJob.moveToDelayed(Date.now() + RECHECK_MS, token);
        throw new DelayedError();
      }
      try {
        if (lease.lost.aborted) throw new Error('chat lease lost');
        const input = await this.d.inputs.next(job.chat_id);
        if (input) await this.runOne(input, lease);
      } finally {
        await lease.release();
      }
      // More input (queued behind this one, or arrived before the release): take the lease again
      // for it. One look after the release answers both, instead of one before and one after.
      if (!(await this.d.inputs.hasPending(job.chat_id))) return;
    }
  }

  /** The input is gone, done or cancelled: its job has nothing to do. */
  private async inputSettled(inputId: string): Promise<boolean> {
    const input = await this.d.inputs.get(inputId);
    return !input || input.status === 'done' || input.status === 'cancelled';
  }

  private async runOne(input: InputRow, lease: HeldLease): Promise<void> {
    const [chat] = await Promise.all([this.d.chats.get(input.chatId), input.status === 'pending' ? this.d.inputs.markProcessing(input.id) : null]);
    if (!chat) {
      await this.d.inputs.markDone(input.id, 'cancelled');
      return;
    }
    const observed = new ObserveBuffer((s) => this.d.observe(chat, s));
    try {
      await this.runTurnOf(chat, input, lease, observed);
    } finally {
      observed.flush();
    }
  }

  private async runTurnOf(chat: ChatRow, input: InputRow, lease: HeldLease, observed: ObserveBuffer): Promise<void> {
    const turnId = input.id;
    const writer = new EventWriter(chat.id, turnId, this.d.timeline, this.d.feed, observed.add);
    const turnInput = turnInputOf(input);
    const workflow = this.d.workflows.get(chat.workflowName);
    if (!workflow) {
      await writer.emit('chat.error', { message: `workflow "${chat.workflowName}" is not available`, error_code: 'WORKFLOW_NOT_FOUND' });
      await this.finish(chat, input, writer, 'failed', turnId, 'workflow not available');
      return;
    }

    await this.openTurn(turnInput, turnId, writer);
    if (chat.status !== 'in_progress') await this.d.chats.setStatus(chat.id, 'in_progress');

    const abort = new AbortController();
    const onLost = () => abort.abort(new Error('chat lease lost'));
    lease.lost.addEventListener('abort', onLost);
    this.running.set(chat.id, abort);
    let artifact = null as Record<string, unknown> | null;
    const emit: Emit = async (type, data) => {
      if (type === 'chat.tool_call') {
        const tc = data as import('@tessera/contracts').TimelineDataOf<'chat.tool_call'>;
        // Recorded before the event is visible, so an immediate answer finds it.
        await this.d.toolCalls.record({ eventId: tc.event_id, chatId: chat.id, toolCallId: tc.tool_call_id, toolName: tc.tool_name, agent: tc.agent, awaiting: tc.awaiting_response });
        if (tc.display === 'artifact') artifact = { tool_name: tc.tool_name, component: tc.component, payload: tc.payload };
      }
      await writer.emit(type, data);
    };

    try {
      const state = (isState(chat.state) ? chat.state : emptyState(workflow.starting_agent)) as ConversationState;
      const result = await runTurn({
        workflow,
        state,
        context: (chat.context ?? {}) as Record<string, unknown>,
        input: turnInput,
        turnId,
        signal: abort.signal,
        emit,
        providers: this.d.providers,
        resolveBlueprint: this.d.resolveBlueprint,
      });
      await writer.drain();
      if (lease.lost.aborted && result.status === 'stopped') throw new Error('chat lease lost');
      const status: ChatStatus = result.status === 'completed' ? 'in_progress' : result.status;
      // The status goes with the state in one update (finish() then does not set it again).
      await this.d.chats.saveTurn(chat.id, { state: result.state, usage: result.state.usage, status, lastArtifact: artifact });
      await writer.emit('chat.usage_summary', { ...result.state.usage, turns: result.state.turns });
      await this.finish(chat, input, writer, status, turnId, result.error ?? (result.status === 'stopped' ? 'stopped by request' : undefined), true);
    } finally {
      this.running.delete(chat.id);
      lease.lost.removeEventListener('abort', onLost);
    }
  }

  /** The input's own event opens the turn: the user's message, or the tool call's completion. */
  private async openTurn(input: TurnInput, turnId: string, writer: EventWriter): Promise<void> {
    if (input.kind === 'message') {
      await writer.emit('chat.text', { message_id: `${turnId}:user`, agent: 'user', role: 'user', delta: input.text, done: true, content: input.text }, `${turnId}:user`);
    } else if (input.kind === 'tool_response') {
      await writer.emit(
        'chat.tool_call_complete',
        { event_id: input.event_id, tool_call_id: input.tool_call_id, tool_name: input.tool_name, response: input.response },
        `${turnId}:complete`,
      );
    }
  }

  private async finish(chat: ChatRow, input: InputRow, writer: EventWriter, status: ChatStatus, turnId: string, reason?: string, statusSet = false): Promise<void> {
    if (!statusSet) await this.d.chats.setStatus(chat.id, status);
    if (status === 'stopped') {
      await this.d.inputs.cancelPending(chat.id);
      for (const tc of await this.d.toolCalls.dismissAwaiting(chat.id))
        await writer.emit('chat.tool_call_dismiss', { event_id: tc.eventId, tool_call_id: tc.toolCallId, reason: 'chat stopped' }, `${turnId}:dismiss:${tc.eventId}`);
    }
    const runStatus = status === 'in_progress' ? 'completed' : (status as 'awaiting_input' | 'stopped' | 'failed');
    await writer.emit('chat.run_complete', { turn_id: turnId, status: runStatus, ...(reason && { reason }) }, `${turnId}:complete_run`);
    await writer.drain();
    await this.d.inputs.markDone(input.id);
  }
}

/** How long stored events may wait to go to observability together (one job per window). */
const OBSERVE_WINDOW_MS = 250;
const OBSERVE_MAX_EVENTS = 500;

/**
 * A turn's stored events on their way to observability: gathered for up to OBSERVE_WINDOW_MS
 * (or OBSERVE_MAX_EVENTS) and sent as one job, and whatever is left when the turn ends, so that a
 * fast turn costs one queue job instead of one per write. Every event still goes, in order.
 */
class ObserveBuffer {
  private pending: StoredEvent[] = [];
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly send: (stored: StoredEvent[]) => void) {}

  readonly add = (stored: StoredEvent[]): void => {
    for (const e of stored) this.pending.push(e);
    if (this.pending.length >= OBSERVE_MAX_EVENTS) this.flush();
    else this.timer ??= setTimeout(() => this.flush(), OBSERVE_WINDOW_MS);
  };

  flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (this.pending.length === 0) return;
    const out = this.pending;
    this.pending = [];
    this.send(out);
  }
}

function isState(v: unknown): v is ConversationState {
  return !!v && typeof v === 'object' && typeof (v as ConversationState).current_agent === 'string' && Array.isArray((v as ConversationState).messages);
}

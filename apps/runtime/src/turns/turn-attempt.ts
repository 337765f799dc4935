import type { ChatStatus, TimelineDataOf } from '@tessera/contracts';
import { runTurn } from '../engine/run-turn';
import { emptyState, type ConversationState, type Emit, type TurnInput } from '../engine/types';
import type { ChatRow } from '../store/chats';
import { turnInputOf, type InputRow } from '../store/inputs';
import type { StoredEvent } from '../store/timeline';
import type { TurnOutcome } from '../store/turn-end';
import { EventWriter } from './event-writer';
import type { TurnRunnerDeps } from './turn-runner';

/** Why a turn was cut off when it is not a stop: its input stays `processing` and the turn runs again elsewhere. */
export class HandBack extends Error {}

/** A newer message superseded the turn (multitask_strategy `interrupt` or `rollback`): the chat goes on with that message. */
export class Superseded extends Error {
  constructor(readonly rollback: boolean) {
    super(rollback ? 'rolled back: a newer message replaced the turn' : 'interrupted by a newer message');
  }
}

/**
 * How a turn ended for its scheduler: `ran`, `ran_idle` (ran, and its end found no other input of
 * the chat waiting, so the scheduler need not look), or `handed_back` (cut off for another worker).
 */
export type Outcome = 'ran' | 'ran_idle' | 'handed_back';

/**
 * One attempt at one turn, once the scheduler (TurnRunner) holds the chat's lease and took its
 * input: the input's own event opens it, what an earlier attempt left open is closed, the engine
 * runs, and its end is saved in one statement (or a stop that came first is carried out).
 */
export class TurnAttempt {
  /** When the turn's first assistant text was emitted (for its first-text latency). */
  private firstTextAt: number | null = null;

  constructor(
    private readonly d: TurnRunnerDeps,
    private readonly chat: ChatRow,
    private readonly input: InputRow,
    private readonly attempt: number,
  ) {}

  async run(signal: AbortSignal): Promise<Outcome> {
    const { chat, input, attempt } = this;
    // The first attempt keeps the input id as its turn id; a re-run gets ids (event keys, message
    // and tool call ids) of its own, so nothing it says lands on what the first one stored.
    const turnId = attempt > 1 ? `${input.id}:a${attempt}` : input.id;
    const writer = new EventWriter(chat.id, turnId, this.d.timeline, this.d.feed, (stored) => this.observe(chat, stored));
    const turnInput = turnInputOf(input);
    const workflow = this.d.workflows.get(chat.workflowName);
    if (!workflow) {
      await writer.emit('chat.error', { message: `workflow "${chat.workflowName}" is not available`, error_code: 'WORKFLOW_NOT_FOUND' });
      await this.finish(chat, input, writer, 'failed', turnId, 'workflow not available');
      return 'ran';
    }

    await this.openTurn(turnInput, input.id, writer);
    if (attempt > 1) await closeAttempts(this.d, chat.id, input.id, writer);
    if (chat.status !== 'in_progress') await this.d.chats.setStatus(chat.id, 'in_progress');

    let artifact = null as Record<string, unknown> | null;
    const emit: Emit = async (type, data) => {
      if (type === 'chat.text' && this.firstTextAt === null && (data as TimelineDataOf<'chat.text'>).role === 'assistant') this.firstTextAt = Date.now();
      if (type === 'chat.tool_call') {
        const tc = data as TimelineDataOf<'chat.tool_call'>;
        // Recorded before the event is visible, so an immediate answer finds it.
        await this.d.toolCalls.record({ eventId: tc.event_id, chatId: chat.id, toolCallId: tc.tool_call_id, toolName: tc.tool_name, agent: tc.agent, awaiting: tc.awaiting_response });
        if (tc.display === 'artifact') artifact = { tool_name: tc.tool_name, component: tc.component, payload: tc.payload };
      }
      await writer.emit(type, data);
    };

    const state = (isState(chat.state) ? chat.state : emptyState(workflow.starting_agent)) as ConversationState;
    const result = await runTurn({
      workflow,
      state,
      context: (chat.context ?? {}) as Record<string, unknown>,
      input: turnInput,
      turnId,
      signal,
      emit,
      providers: this.d.providers,
      resolveBlueprint: this.d.resolveBlueprint && ((name: string) => this.d.resolveBlueprint!(name, chat.appId)),
      history: this.d.history,
      extensions: this.d.extensions,
      budget: this.d.budgets && { admit: () => this.d.budgets!.admit(chat.appId, chat.userId) },
    });
    await writer.drain();
    // Cut off by a shutdown or a lost lease: what was said is stored and closed; the chat is
    // left as it is for the next attempt.
    if (result.status === 'stopped' && signal.reason instanceof HandBack) return 'handed_back';
    if (result.status === 'stopped' && signal.reason instanceof Superseded) return this.endSuperseded(chat, input, state, result.state, turnId, writer, signal.reason);
    const status: ChatStatus = result.status === 'completed' ? 'in_progress' : result.status;
    // One statement saves the state with the status, stores the closing events and marks the
    // input done; a stop requested meanwhile wins over what the turn reached, and then only the
    // save happens and the stop is carried out below, as finish() does.
    const runStatus = status === 'in_progress' ? 'completed' : (status as 'awaiting_input' | 'failed');
    return this.save(
      { chat, input, turnId, writer },
      { state: result.state, usage: result.state.usage, status, lastArtifact: artifact },
      { turn_id: input.id, status: runStatus, ...(result.error && { reason: result.error }), ...this.timing() },
      result.status === 'stopped' ? reasonOf(signal) : 'stopped by request',
    );
  }

  /**
   * Saves the end of a turn in one statement (state, status, closing events, input done) and
   * publishes it. When a stop came first, only the state was saved: the stop is carried out here
   * (`stopReason` when the request carried none), as finish() does.
   */
  private async save(
    t: { chat: ChatRow; input: InputRow; turnId: string; writer: EventWriter },
    outcome: TurnOutcome,
    runComplete: TimelineDataOf<'chat.run_complete'>,
    stopReason: string,
  ): Promise<Outcome> {
    const state = outcome.state as ConversationState;
    const usageSummary = { ...state.usage, turns: state.turns };
    const ended = await this.d.turnEnd.finish(t.chat.id, { id: t.input.id, attempt: this.attempt }, outcome, [
      { key: `${t.turnId}:usage_summary`, type: 'chat.usage_summary', data: usageSummary },
      { key: `${t.turnId}:complete_run`, type: 'chat.run_complete', data: runComplete },
    ], this.d.feed);
    // Its lease was lost and another attempt runs the input now: that one ends the turn.
    if (ended.superseded) return 'handed_back';
    if (ended.stored) {
      if (ended.stored.length) this.observe(t.chat, ended.stored);
      return ended.morePending ? 'ran' : 'ran_idle';
    }
    await t.writer.emit('chat.usage_summary', usageSummary);
    const reason = ended.status === 'stopped' ? (ended.stopReason ?? stopReason) : runComplete.reason;
    await this.finish(t.chat, t.input, t.writer, ended.status, t.turnId, reason, true);
    return 'ran';
  }

  /**
   * A turn a newer message cut off: the chat goes on (that message's turn runs next). `interrupt`
   * keeps what the turn said in the conversation; `rollback` saves the conversation as it was
   * before the turn (only its usage counts), and clients drop the turn's messages (their ids
   * start with its turn id) on `chat.run_complete {status: "rolled_back"}`. A stop requested
   * meanwhile still wins, as in a turn's normal end.
   */
  private async endSuperseded(
    chat: ChatRow,
    input: InputRow,
    before: ConversationState,
    after: ConversationState,
    turnId: string,
    writer: EventWriter,
    why: Superseded,
  ): Promise<Outcome> {
    const state = why.rollback ? { ...before, usage: after.usage } : after;
    const status = why.rollback ? ('rolled_back' as const) : ('interrupted' as const);
    return this.save({ chat, input, turnId, writer }, { state, usage: after.usage, status: 'in_progress' }, { turn_id: input.id, status, reason: why.message }, 'stopped by request');
  }

  /** The turn's latencies as its user saw them: from their input being accepted (a re-run counts from then too). */
  private timing(): { first_text_ms?: number; duration_ms: number } {
    const since = this.input.createdAt.getTime();
    const now = Date.now();
    return { duration_ms: Math.max(0, now - since), ...(this.firstTextAt !== null && { first_text_ms: Math.max(0, this.firstTextAt - since) }) };
  }

  /** Observability never fails a turn. */
  private observe(chat: ChatRow, stored: StoredEvent[]): void {
    try {
      this.d.observe(chat, stored);
    } catch {
      // best effort
    }
  }

  /** The input's own event opens the turn (once, whatever the attempt): the user's message, or the tool call's completion. */
  private async openTurn(input: TurnInput, inputId: string, writer: EventWriter): Promise<void> {
    if (input.kind === 'message') {
      await writer.emit('chat.text', { message_id: `${inputId}:user`, agent: 'user', role: 'user', delta: input.text, done: true, content: input.text }, `${inputId}:user`);
    } else if (input.kind === 'tool_response') {
      await writer.emit(
        'chat.tool_call_complete',
        { event_id: input.event_id, tool_call_id: input.tool_call_id, tool_name: input.tool_name, response: input.response },
        `${inputId}:complete`,
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
    await writer.emit('chat.run_complete', { turn_id: input.id, status: runStatus, ...(reason && { reason }), ...this.timing() }, `${turnId}:complete_run`);
    await writer.drain();
    await this.d.inputs.markDone(input.id);
  }
}

/** A re-run: messages earlier attempts left open are closed with what they said; their awaiting tool calls are dismissed. */
async function closeAttempts(d: TurnRunnerDeps, chatId: string, inputId: string, writer: EventWriter): Promise<void> {
  for (const m of await d.timeline.openMessages(chatId, `${inputId}:`))
    await writer.emit('chat.text', { message_id: m.messageId, agent: m.agent, role: 'assistant', delta: '', done: true, content: m.content }, `${inputId}:close:${m.messageId}`);
  for (const tc of await d.toolCalls.dismissAwaitingFrom(chatId, `${inputId}:`))
    await writer.emit('chat.tool_call_dismiss', { event_id: tc.eventId, tool_call_id: tc.toolCallId, reason: 'interrupted' }, `${inputId}:dismiss:${tc.eventId}`);
}

/**
 * A turn cut off by a lost lease or a shutdown goes back to its job to run again; if a newer
 * message or a stop cancelled its input meanwhile, nothing runs it again. Its job (taken up again,
 * holding the chat's lease, so no turn of the chat runs) ends it on the timeline as its own end
 * would have: what it left open is closed, then `chat.run_complete` (interrupted). Nothing is done
 * for an input that was not taken, or whose turn ended (a run_complete names it).
 */
export async function endCutOff(d: TurnRunnerDeps, inputId: string): Promise<void> {
  const input = await d.inputs.get(inputId);
  if (!input || input.status !== 'cancelled' || input.attempt === 0) return;
  if (await d.timeline.hasRunComplete(input.chatId, input.id)) return;
  const chat = await d.chats.get(input.chatId);
  if (!chat) return;
  const writer = new EventWriter(chat.id, `${input.id}:cut`, d.timeline, d.feed, (stored) => d.observe(chat, stored));
  await closeAttempts(d, chat.id, input.id, writer);
  await writer.emit('chat.run_complete', { turn_id: input.id, status: 'interrupted', reason: 'cut off, then cancelled before it could run again' }, `${input.id}:cut:complete_run`);
  await writer.drain();
}

function reasonOf(signal: AbortSignal): string {
  return signal.reason instanceof Error && signal.reason.message ? signal.reason.message : 'stopped by request';
}

function isState(v: unknown): v is ConversationState {
  return !!v && typeof v === 'object' && typeof (v as ConversationState).current_agent === 'string' && Array.isArray((v as ConversationState).messages);
}

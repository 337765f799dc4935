import { DelayedError, type Job } from 'bullmq';
import type { ChatStatus, TimelineDataOf, TurnJob } from '@tessera/contracts';
import type { Logger } from '@tessera/kit';
import type { HistoryLimits } from '../engine/history';
import { runTurn } from '../engine/run-turn';
import { emptyState, type ConversationState, type Emit, type LoadedWorkflow, type ProviderRegistry, type TurnExtensionSource, type TurnInput } from '../engine/types';
import type { ChatFeed } from '../bus/feed';
import type { ChatRow, ChatStore } from '../store/chats';
import { turnInputOf, type InputRow, type InputStore } from '../store/inputs';
import type { Timeline, StoredEvent } from '../store/timeline';
import type { ToolCallStore } from '../store/tool-calls';
import type { TurnEnd, TurnOutcome } from '../store/turn-end';
import type { ChatLease, HeldLease } from './chat-lease';
import { EventWriter } from './event-writer';
import { carryOutStop } from './stop';

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
  turnEnd: TurnEnd;
  /** A blueprint's system prompt, in the chat's app (blueprints are an app's). */
  resolveBlueprint?: (name: string, appId: string) => Promise<string>;
  history?: HistoryLimits;
  /** What features contribute to every turn (the worker passes Mission Ally's checkpoints). */
  extensions?: readonly TurnExtensionSource[];
}

/** How long a job whose chat is leased elsewhere waits before looking again. */
const RECHECK_MS = 300;

/** Why a turn was cut off when it is not a stop: its input stays `processing` and the turn runs again elsewhere. */
class HandBack extends Error {}

/** A newer message superseded the turn (multitask_strategy `interrupt` or `rollback`): the chat goes on with that message. */
class Superseded extends Error {
  constructor(readonly rollback: boolean) {
    super(rollback ? 'rolled back: a newer message replaced the turn' : 'interrupted by a newer message');
  }
}

/** A turn running here: its abort, its input's seq once taken, and a supersede that came before the take. */
interface RunningTurn {
  abort: AbortController;
  seq?: bigint;
  superseded?: { beforeSeq: bigint; rollback: boolean };
}

type Outcome = 'ran' | 'handed_back';

/**
 * Runs a chat's turns: takes the chat's lease, then every pending input in order, one turn at a
 * time. A job whose chat is leased by another worker waits (delayed, not failed) until its input
 * has been taken. A worker that dies mid-turn leaves the input `processing` and its job stalled;
 * one that shuts down hands its turns back the same way at once. The next worker runs such a
 * turn again as a new attempt: it closes what the earlier attempt left open (a message cut off,
 * a tool call nobody can answer), then answers afresh under ids of its own, so that a model that
 * answers differently the second time never splices two replies into one message.
 */
export class TurnRunner {
  private readonly running = new Map<string, RunningTurn>();
  private closing = false;
  private backlogged: () => boolean = () => false;

  constructor(private readonly d: TurnRunnerDeps) {}

  get activeTurns(): number {
    return this.running.size;
  }

  /**
   * Tells whether other chats' jobs wait for a slot. While they do, a chat's next input is not run
   * at once by the job that ran its last one: its own job, queued behind theirs, runs it, so a
   * chat that answers fast cannot keep a worker to itself.
   */
  setBacklogged(backlogged: () => boolean): void {
    this.backlogged = backlogged;
  }

  /** Abort the chat's running turn (a stop); false when no turn of it runs here. */
  stop(chatId: string, reason = 'stopped by request'): boolean {
    const t = this.running.get(chatId);
    if (!t) return false;
    t.abort.abort(new Error(reason));
    return true;
  }

  /**
   * A newer input (its seq `beforeSeq`) superseded the chat's earlier ones: a turn of one of them
   * running here is cut off. Its input is already cancelled; one about to be taken is seen then.
   */
  supersede(chatId: string, beforeSeq: bigint, rollback: boolean): void {
    const t = this.running.get(chatId);
    if (!t) return;
    if (t.seq === undefined) t.superseded = { beforeSeq, rollback };
    else if (t.seq < beforeSeq) t.abort.abort(new Superseded(rollback));
  }

  /** Shutdown: running turns are cut off and handed back (inputs stay `processing`, jobs go back to the queue); the chats are left as they are. */
  abortAll(): void {
    this.closing = true;
    for (const t of this.running.values()) t.abort.abort(new HandBack('worker shutting down'));
  }

  async process(job: TurnJob, bullJob?: Job, token?: string): Promise<void> {
    if (this.closing) return handBack(bullJob, token);
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
      let outcome: Outcome = 'ran';
      try {
        if (lease.lost.aborted) throw new Error('chat lease lost');
        outcome = await this.runNext(job.chat_id, lease);
      } finally {
        await lease.release();
      }
      if (outcome === 'handed_back') return handBack(bullJob, token);
      // More input (queued behind this one, or arrived before the release): take the lease again
      // for it. One look after the release answers both, instead of one before and one after.
      // Not while other chats wait: every input has a job of its own, which runs it in its turn.
      if (bullJob && this.backlogged()) return;
      if (!(await this.d.inputs.hasPending(job.chat_id))) return;
      if (this.closing) return handBack(bullJob, token);
    }
  }

  /** The input is gone, done or cancelled: its job has nothing to do. */
  private async inputSettled(inputId: string): Promise<boolean> {
    const input = await this.d.inputs.get(inputId);
    return !input || input.status === 'done' || input.status === 'cancelled';
  }

  /** Takes the chat's next input (if any) and runs its turn. */
  private async runNext(chatId: string, lease: HeldLease): Promise<Outcome> {
    const abort = new AbortController();
    const onLost = () => abort.abort(new HandBack('chat lease lost'));
    lease.lost.addEventListener('abort', onLost);
    // Registered before the input is taken: a stop made durable after that finds the turn here
    // (its control message aborts it); one made before cancelled the input, which is not taken.
    const turn: RunningTurn = { abort };
    this.running.set(chatId, turn);
    try {
      if (this.closing) return 'handed_back';
      const taken = await this.d.inputs.take(chatId);
      if (!taken) return 'ran';
      const { input } = taken;
      turn.seq = input.seq;
      if (turn.superseded && input.seq < turn.superseded.beforeSeq) abort.abort(new Superseded(turn.superseded.rollback));
      let chat = taken.chat;
      let attempt: number | null = input.attempt;
      if (!chat) {
        await this.d.inputs.markDone(input.id, 'cancelled');
        return 'ran';
      }
      if (chat.stopReason !== null) {
        // A stop waits for this lease: carry it out before anything newer runs. The input taken is
        // a re-run's (a stop cancels only pending inputs), or the stop came right after the take;
        // either way, the input runs only if it is still processing once the stop is carried out.
        await carryOutStop(this.d, chatId);
        if (attempt !== null && (await this.d.inputs.get(input.id))?.status !== 'processing') attempt = null;
        chat = await this.d.chats.get(chatId);
      }
      if (attempt === null || !chat) return 'ran';
      return await this.runTurnOf(chat, input, attempt, abort.signal);
    } finally {
      this.running.delete(chatId);
      lease.lost.removeEventListener('abort', onLost);
    }
  }

  private async runTurnOf(chat: ChatRow, input: InputRow, attempt: number, signal: AbortSignal): Promise<Outcome> {
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
    if (attempt > 1) await this.closeEarlierAttempts(chat.id, input.id, writer);
    if (chat.status !== 'in_progress') await this.d.chats.setStatus(chat.id, 'in_progress');

    let artifact = null as Record<string, unknown> | null;
    const emit: Emit = async (type, data) => {
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
      { turn_id: input.id, status: runStatus, ...(result.error && { reason: result.error }) },
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
    const ended = await this.d.turnEnd.finish(t.chat.id, t.input.id, outcome, [
      { key: `${t.turnId}:usage_summary`, type: 'chat.usage_summary', data: usageSummary },
      { key: `${t.turnId}:complete_run`, type: 'chat.run_complete', data: runComplete },
    ]);
    if (ended.stored) {
      if (ended.stored.length) {
        await this.d.feed.publish(t.chat.id, ended.stored);
        this.observe(t.chat, ended.stored);
      }
      return 'ran';
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

  /** A re-run: messages an earlier attempt left open are closed with what they said; its awaiting tool calls are dismissed. */
  private async closeEarlierAttempts(chatId: string, inputId: string, writer: EventWriter): Promise<void> {
    for (const m of await this.d.timeline.openMessages(chatId, `${inputId}:`))
      await writer.emit('chat.text', { message_id: m.messageId, agent: m.agent, role: 'assistant', delta: '', done: true, content: m.content }, `${inputId}:close:${m.messageId}`);
    for (const tc of await this.d.toolCalls.dismissAwaitingFrom(chatId, `${inputId}:`))
      await writer.emit('chat.tool_call_dismiss', { event_id: tc.eventId, tool_call_id: tc.toolCallId, reason: 'interrupted' }, `${inputId}:dismiss:${tc.eventId}`);
  }

  private async finish(chat: ChatRow, input: InputRow, writer: EventWriter, status: ChatStatus, turnId: string, reason?: string, statusSet = false): Promise<void> {
    if (!statusSet) await this.d.chats.setStatus(chat.id, status);
    if (status === 'stopped') {
      await this.d.inputs.cancelPending(chat.id);
      for (const tc of await this.d.toolCalls.dismissAwaiting(chat.id))
        await writer.emit('chat.tool_call_dismiss', { event_id: tc.eventId, tool_call_id: tc.toolCallId, reason: 'chat stopped' }, `${turnId}:dismiss:${tc.eventId}`);
    }
    const runStatus = status === 'in_progress' ? 'completed' : (status as 'awaiting_input' | 'stopped' | 'failed');
    await writer.emit('chat.run_complete', { turn_id: input.id, status: runStatus, ...(reason && { reason }) }, `${turnId}:complete_run`);
    await writer.drain();
    await this.d.inputs.markDone(input.id);
  }
}

/** The job goes back to the queue (delayed, not failed: no attempt is used up) for any worker to take. */
async function handBack(bullJob: Job | undefined, token: string | undefined): Promise<void> {
  if (!bullJob) return;
  await bullJob.moveToDelayed(Date.now(), token);
  throw new DelayedError();
}

function reasonOf(signal: AbortSignal): string {
  return signal.reason instanceof Error && signal.reason.message ? signal.reason.message : 'stopped by request';
}

function isState(v: unknown): v is ConversationState {
  return !!v && typeof v === 'object' && typeof (v as ConversationState).current_agent === 'string' && Array.isArray((v as ConversationState).messages);
}

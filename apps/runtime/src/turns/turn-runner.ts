import { DelayedError, type Job } from 'bullmq';
import type { TurnJob } from '@tessera/contracts';
import type { Logger } from '@tessera/kit';
import type { HistoryLimits } from '../engine/history';
import type { LoadedWorkflow, ProviderRegistry, TurnExtensionSource } from '../engine/types';
import type { BudgetMeter } from '../budgets/meter';
import type { ChatFeed } from '../bus/feed';
import type { ChatRow, ChatStore } from '../store/chats';
import type { InputStore } from '../store/inputs';
import type { Timeline, StoredEvent } from '../store/timeline';
import type { ToolCallStore } from '../store/tool-calls';
import type { TurnEnd } from '../store/turn-end';
import type { ChatLease, HeldLease } from './chat-lease';
import { carryOutStop } from './stop';
import { endCutOff, HandBack, Superseded, TurnAttempt, type Outcome } from './turn-attempt';

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
  /** Budgets, asked before each model call of a chat's app and user. */
  budgets?: BudgetMeter;
}

/** How long a job whose chat is leased elsewhere waits before looking again. */
const RECHECK_MS = 300;

/** A turn running here: its abort, its input's seq once taken, and a supersede that came before the take. */
interface RunningTurn {
  abort: AbortController;
  seq?: bigint;
  superseded?: { beforeSeq: bigint; rollback: boolean };
}

/**
 * Schedules a chat's turns (each one's life is a TurnAttempt): takes the chat's lease, then every
 * pending input in order, one turn at a time. A job whose chat is leased by another worker waits (delayed, not failed) until its input
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
        if (first && again) await endCutOff(this.d, job.input_id);
        // The timeline's tail: closing events a dead worker held for the chat's last turn go out
        // first (on the job's first lease: later ones follow turns this process ended itself).
        if (first) await this.d.timeline.tail?.recoverClosing(job.chat_id);
        outcome = await this.runNext(job.chat_id, lease);
      } finally {
        await lease.release();
      }
      if (outcome === 'handed_back') return handBack(bullJob, token);
      // More input (queued behind this one, or arrived before the release): take the lease again
      // for it. One look after the release answers both, instead of one before and one after.
      // Not while other chats wait: every input has a job of its own, which runs it in its turn.
      if (bullJob && this.backlogged()) return;
      // The turn's end said no input waited. One that came between that and the release, if its
      // job found the lease still held, looks again within RECHECK_MS.
      if (outcome === 'ran_idle' || !(await this.d.inputs.hasPending(job.chat_id))) return;
      if (this.closing) return handBack(bullJob, token);
    }
  }

  /**
   * The job has nothing left to do: its input is gone or done, or was cancelled before any turn
   * took it. One cancelled after a turn took it is not settled here: that turn may have been cut
   * off (handed back) and never ended; endCutOff looks, under the chat's lease.
   */
  private async inputSettled(inputId: string): Promise<boolean> {
    const input = await this.d.inputs.get(inputId);
    return !input || input.status === 'done' || (input.status === 'cancelled' && input.attempt === 0);
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
      return await new TurnAttempt(this.d, chat, input, attempt).run(abort.signal);
    } finally {
      this.running.delete(chatId);
      lease.lost.removeEventListener('abort', onLost);
    }
  }
}

/** The job goes back to the queue (delayed, not failed: no attempt is used up) for any worker to take. */
async function handBack(bullJob: Job | undefined, token: string | undefined): Promise<void> {
  if (!bullJob) return;
  await bullJob.moveToDelayed(Date.now(), token);
  throw new DelayedError();
}

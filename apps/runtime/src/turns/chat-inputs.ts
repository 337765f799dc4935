import { Queue, WsErrorCode, type MultitaskStrategy } from '@tessera/contracts';
import { HttpError, type TypedQueue } from '@tessera/kit';
import type { ChatFeed } from '../bus/feed';
import { mergeContext } from '../domain/context';
import type { LoadedWorkflow } from '../engine/types';
import type { ChatRow, ChatStore } from '../store/chats';
import type { InputRow, InputStore } from '../store/inputs';
import type { StoredEvent, Timeline } from '../store/timeline';
import type { ToolCallStore } from '../store/tool-calls';
import type { AppliedLimits, BudgetMeter } from '../budgets/meter';
import type { UserMessageLimit } from './user-limit';

/**
 * A client-caused refusal: a kit HttpError, so the HTTP error mapper answers its status and code,
 * and the socket sends it as `chat.error` with the same code.
 */
export class InputRefused extends HttpError {
  constructor(code: (typeof WsErrorCode)[keyof typeof WsErrorCode], message: string, status: 400 | 404 | 409 | 429, retryAfterS?: number) {
    super(status, code, message, retryAfterS === undefined ? undefined : { retry_after_s: retryAfterS }, retryAfterS === undefined ? undefined : { 'Retry-After': String(retryAfterS) });
  }
}

export interface ChatInputsOptions {
  /** Pending inputs a chat may have; one more is refused (RATE_LIMITED, 429). */
  maxPending: number;
  /** The chat's workflow's rule for a message sent while a turn runs, when the message names none. */
  strategyOf?: (chat: ChatRow) => MultitaskStrategy;
}

/**
 * What clients send into a chat, over the socket or HTTP: recorded durably as an input, then a
 * turn job is queued (job id = input id, so a retry never queues twice).
 */
export interface ChatInputsDeps {
  chats: ChatStore;
  inputs: InputStore;
  toolCalls: ToolCallStore;
  turnQueue: TypedQueue<typeof Queue.RuntimeTurns>;
  timeline: Timeline;
  feed: Pick<ChatFeed, 'publish' | 'publishControl'>;
  observe: (chat: ChatRow, stored: StoredEvent[]) => void;
  userLimit: UserMessageLimit;
  budgets: BudgetMeter;
}

export class ChatInputs {
  constructor(
    private readonly d: ChatInputsDeps,
    private readonly opts: ChatInputsOptions = { maxPending: 20 },
  ) {}

  /**
   * `context` is the client's: merged under `ui_` keys (never over a backend value) by the same
   * statement that stores the input. `strategy` (else the workflow's) says what the message does
   * while a turn of the chat runs or waits: see MultitaskStrategy.
   */
  async submitMessage(
    chat: ChatRow,
    text: string,
    clientMessageId?: string,
    context?: Record<string, unknown>,
    strategy?: MultitaskStrategy,
  ): Promise<{ input: InputRow; duplicate: boolean; lastIndex?: number }> {
    await this.takeFromBudget(chat);
    const rule = strategy ?? this.opts.strategyOf?.(chat) ?? 'enqueue';
    const uiContext = context && Object.keys(context).length ? mergeContext(undefined, context) : undefined;
    const r = await this.d.inputs.add(chat.id, { kind: 'message', text }, clientMessageId, { uiContext, maxPending: this.opts.maxPending, onlyIfIdle: rule === 'reject' });
    if (r.refused === 'busy')
      throw new InputRefused(WsErrorCode.ChatBusy, 'a turn of this chat is running or waiting (multitask_strategy "reject"): send again after its chat.run_complete', 409);
    if (r.refused)
      throw new InputRefused(WsErrorCode.RateLimited, `too many messages waiting (${this.opts.maxPending}); wait for the agent to answer before sending more`, 429);
    if ((rule === 'interrupt' || rule === 'rollback') && r.input.status === 'pending') await this.supersede(chat, r.input.seq, rule === 'rollback');
    // A retry of a submit whose enqueue failed finds its input still pending: queue it now (the
    // job id is the input id, so a job that does exist is not queued twice).
    if (!r.duplicate || r.input.status === 'pending') await this.enqueue(chat, r.input.id);
    return r;
  }

  /**
   * Every message that makes work, whichever way it came, is refused while a budget of its app or
   * user is spent (BUDGET_EXCEEDED), and counts against its user's turn rate (RATE_LIMITED): the
   * budget's turns_per_minute, else the deployment's. Both say when to try again (Retry-After).
   */
  async takeFromBudget(chat: ChatRow): Promise<void> {
    const applied = await this.d.budgets.applied(chat.appId, chat.userId);
    await this.checkBudget(chat.appId, chat.userId, applied);
    const retry = await this.d.userLimit.take(chat.appId, chat.userId, applied.user?.limits.turns_per_minute ?? undefined);
    if (retry !== null) throw new InputRefused(WsErrorCode.RateLimited, `too many messages from this user; try again in ${retry} s`, 429, retry);
  }

  /** A new chat's first check (its start makes no turn yet, the rate counts it where it starts). */
  async checkBudget(appId: string, userId: string, applied?: AppliedLimits): Promise<void> {
    const refusal = await this.d.budgets.check(appId, userId, applied);
    if (refusal) throw new InputRefused(WsErrorCode.BudgetExceeded, refusal.message, 429, refusal.retryAfterS);
  }

  /**
   * The chat's earlier inputs give way to the one of `seq`. Made durable first (an input cancelled
   * here never runs again, even when the control message is lost); then each waiting input that
   * will never run ends on the timeline as its own `chat.run_complete`, so that clients stop
   * showing it as queued; then the running turn is cut off by its worker. In that order, the
   * waiting inputs' ends come before the new message's turn, which cannot start while the running
   * turn holds the chat (it had, when the cut-off went first and the new turn was quick).
   */
  private async supersede(chat: ChatRow, seq: bigint, rollback: boolean): Promise<void> {
    const { running, dropped } = await this.d.inputs.supersede(chat.id, seq);
    if (dropped.length) {
      const status = rollback ? ('rolled_back' as const) : ('interrupted' as const);
      const stored = await this.d.timeline.record(
        chat.id,
        dropped.map((id) => ({ key: `${id}:complete_run`, type: 'chat.run_complete', data: { turn_id: id, status, reason: 'dropped: a newer message superseded it' } })),
        this.d.feed,
      );
      this.d.observe(chat, stored);
    }
    if (running) await this.d.feed.publishControl({ action: 'interrupt', session_id: chat.id, app_id: chat.appId, before_seq: seq.toString(), rollback });
  }

  /** Answer a UI tool call that awaits a response; `id` is its event_id or tool_call_id. */
  async respondToolCall(chat: ChatRow | null, id: string, response: Record<string, unknown>, ownerCheck: (chat: ChatRow) => void) {
    const tc = await this.d.toolCalls.find(id, chat?.id);
    if (!tc) throw new InputRefused(WsErrorCode.ToolCallNotFound, `no tool call "${id}"`, 404);
    const owner = chat ?? (await this.d.chats.get(tc.chatId));
    if (!owner) throw new InputRefused(WsErrorCode.ToolCallNotFound, `no tool call "${id}"`, 404);
    ownerCheck(owner);
    await this.takeFromBudget(owner);
    const input = await this.d.inputs.addToolResponse(tc.eventId, {
      kind: 'tool_response',
      event_id: tc.eventId,
      tool_call_id: tc.toolCallId,
      tool_name: tc.toolName,
      agent: tc.agent,
      response,
    });
    if (!input) throw new InputRefused(WsErrorCode.ToolCallNotAwaiting, `tool call "${id}" is not awaiting a response (${tc.status})`, 409);
    await this.enqueue(owner, input.id);
    return { chat: owner, toolCall: tc, input };
  }

  /** The agent speaks first: once per chat, when the first socket connects. */
  async startGreetingOnce(chat: ChatRow, workflow: LoadedWorkflow): Promise<boolean> {
    if (workflow.initiator !== 'agent' || chat.status !== 'created') return false;
    if (!(await this.d.chats.transition(chat.id, ['created'], 'in_progress'))) return false;
    const r = await this.d.inputs.add(chat.id, { kind: 'greeting' }, 'greeting');
    if (!r.refused && !r.duplicate) await this.enqueue(chat, r.input.id);
    return true;
  }

  private async enqueue(chat: ChatRow, inputId: string): Promise<void> {
    await this.d.turnQueue.add({ chat_id: chat.id, app_id: chat.appId, input_id: inputId }, { jobId: inputId });
  }
}

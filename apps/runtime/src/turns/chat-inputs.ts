import { Queue, WsErrorCode } from '@tessera/contracts';
import { HttpError, type TypedQueue } from '@tessera/kit';
import { mergeContext } from '../domain/context';
import type { LoadedWorkflow } from '../engine/types';
import type { ChatRow, ChatStore } from '../store/chats';
import type { InputRow, InputStore } from '../store/inputs';
import type { ToolCallStore } from '../store/tool-calls';

/**
 * A client-caused refusal: a kit HttpError, so the HTTP error mapper answers its status and code,
 * and the socket sends it as `chat.error` with the same code.
 */
export class InputRefused extends HttpError {
  constructor(code: (typeof WsErrorCode)[keyof typeof WsErrorCode], message: string, status: 400 | 404 | 409 | 429) {
    super(status, code, message);
  }
}

export interface ChatInputsOptions {
  /** Pending inputs a chat may have; one more is refused (RATE_LIMITED, 429). */
  maxPending: number;
}

/**
 * What clients send into a chat, over the socket or HTTP: recorded durably as an input, then a
 * turn job is queued (job id = input id, so a retry never queues twice).
 */
export class ChatInputs {
  constructor(
    private readonly chats: ChatStore,
    private readonly inputs: InputStore,
    private readonly toolCalls: ToolCallStore,
    private readonly queue: TypedQueue<typeof Queue.RuntimeTurns>,
    private readonly opts: ChatInputsOptions = { maxPending: 20 },
  ) {}

  /**
   * `context` is the client's: merged under `ui_` keys (never over a backend value) by the same
   * statement that stores the input.
   */
  async submitMessage(chat: ChatRow, text: string, clientMessageId?: string, context?: Record<string, unknown>): Promise<{ input: InputRow; duplicate: boolean }> {
    const uiContext = context && Object.keys(context).length ? mergeContext(undefined, context) : undefined;
    const r = await this.inputs.add(chat.id, { kind: 'message', text }, clientMessageId, { uiContext, maxPending: this.opts.maxPending });
    if (r.refused)
      throw new InputRefused(WsErrorCode.RateLimited, `too many messages waiting (${this.opts.maxPending}); wait for the agent to answer before sending more`, 429);
    // A retry of a submit whose enqueue failed finds its input still pending: queue it now (the
    // job id is the input id, so a job that does exist is not queued twice).
    if (!r.duplicate || r.input.status === 'pending') await this.enqueue(chat, r.input.id);
    return r;
  }

  /** Answer a UI tool call that awaits a response; `id` is its event_id or tool_call_id. */
  async respondToolCall(chat: ChatRow | null, id: string, response: Record<string, unknown>, ownerCheck: (chat: ChatRow) => void) {
    const tc = await this.toolCalls.find(id, chat?.id);
    if (!tc) throw new InputRefused(WsErrorCode.ToolCallNotFound, `no tool call "${id}"`, 404);
    const owner = chat ?? (await this.chats.get(tc.chatId));
    if (!owner) throw new InputRefused(WsErrorCode.ToolCallNotFound, `no tool call "${id}"`, 404);
    ownerCheck(owner);
    const input = await this.inputs.addToolResponse(tc.eventId, {
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
    if (!(await this.chats.transition(chat.id, ['created'], 'in_progress'))) return false;
    const r = await this.inputs.add(chat.id, { kind: 'greeting' }, 'greeting');
    if (!r.refused && !r.duplicate) await this.enqueue(chat, r.input.id);
    return true;
  }

  private async enqueue(chat: ChatRow, inputId: string): Promise<void> {
    await this.queue.add({ chat_id: chat.id, app_id: chat.appId, input_id: inputId }, { jobId: inputId });
  }
}

import { Queue, WsErrorCode } from '@tessera/contracts';
import { HttpError, type TypedQueue } from '@tessera/kit';
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
  ) {}

  async submitMessage(chat: ChatRow, text: string, clientMessageId?: string): Promise<{ input: InputRow; duplicate: boolean }> {
    const r = await this.inputs.add(chat.id, { kind: 'message', text }, clientMessageId);
    if (!r.duplicate) await this.enqueue(chat, r.input.id);
    return r;
  }

  /** Answer a UI tool call that awaits a response; `id` is its event_id or tool_call_id. */
  async respondToolCall(chat: ChatRow | null, id: string, response: Record<string, unknown>, ownerCheck: (chat: ChatRow) => void) {
    const tc = await this.toolCalls.find(id, chat?.id);
    if (!tc) throw new InputRefused(WsErrorCode.ToolCallNotFound, `no tool call "${id}"`, 404);
    const owner = chat ?? (await this.chats.get(tc.chatId));
    if (!owner) throw new InputRefused(WsErrorCode.ToolCallNotFound, `no tool call "${id}"`, 404);
    ownerCheck(owner);
    if (!(await this.toolCalls.answer(tc.eventId, response)))
      throw new InputRefused(WsErrorCode.ToolCallNotAwaiting, `tool call "${id}" is not awaiting a response (${tc.status})`, 409);
    const r = await this.inputs.add(owner.id, {
      kind: 'tool_response',
      event_id: tc.eventId,
      tool_call_id: tc.toolCallId,
      tool_name: tc.toolName,
      agent: tc.agent,
      response,
    });
    await this.enqueue(owner, r.input.id);
    return { chat: owner, toolCall: tc, input: r.input };
  }

  /** The agent speaks first: once per chat, when the first socket connects. */
  async startGreetingOnce(chat: ChatRow, workflow: LoadedWorkflow): Promise<boolean> {
    if (workflow.initiator !== 'agent' || chat.status !== 'created') return false;
    if (!(await this.chats.transition(chat.id, ['created'], 'in_progress'))) return false;
    const r = await this.inputs.add(chat.id, { kind: 'greeting' }, 'greeting');
    if (!r.duplicate) await this.enqueue(chat, r.input.id);
    return true;
  }

  private async enqueue(chat: ChatRow, inputId: string): Promise<void> {
    await this.queue.add({ chat_id: chat.id, app_id: chat.appId, input_id: inputId }, { jobId: inputId });
  }
}

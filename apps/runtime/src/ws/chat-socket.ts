import type { RawData, WebSocket } from 'ws';
import { ClientMessage, CLIENT_MESSAGE_TYPES, WsErrorCode, type ChatStatus } from '@tessera/contracts';
import { HttpError, isStorageUnreachable, zodIssues, type Logger, type SocketHandler } from '@tessera/kit';
import type { LoadedWorkflow } from '../engine/types';
import type { ChatRow, ChatStore } from '../store/chats';
import type { ToolCallStore } from '../store/tool-calls';
import { InputRefused, type ChatInputs } from '../turns/chat-inputs';
import type { ChatStarter } from '../turns/chat-starter';
import { ChatDelivery, type DeliveryDeps } from './chat-delivery';
import { control } from './envelope';

export interface ChatSocketDeps extends DeliveryDeps {
  chats: ChatStore;
  toolCalls: ToolCallStore;
  chatInputs: ChatInputs;
  starter: ChatStarter;
  workflows: Map<string, LoadedWorkflow>;
  logger: Logger;
}

/** Messages that make work (a turn, a chat): counted against the user's budget across sockets. */
/** Messages that start chats count against the user's budget here; messages and answers are counted by ChatInputs. */
const COSTLY = new Set<ClientMessage['type']>(['chat.start_general_chat', 'chat.start_workflow', 'chat.start_workflow_batch']);

/**
 * One client socket on one chat (document 003): its timeline goes out through ChatDelivery; what
 * the client sends is parsed with the contract and handled here. The kit's SocketHub calls
 * `onMessage` one message at a time, in order, and `onClose` once.
 */
export class ChatSocket implements SocketHandler {
  private readonly delivery: ChatDelivery;

  constructor(
    private readonly d: ChatSocketDeps,
    ws: WebSocket,
    private chat: ChatRow,
  ) {
    this.delivery = new ChatDelivery(d, ws, chat.id);
  }

  /** Subscribe, send chat_meta, and let an agent that speaks first begin. */
  async open(): Promise<void> {
    const fresh = await this.delivery.subscribe(async () => {
      const row = await this.d.chats.get(this.chat.id);
      if (!row) throw new Error('chat vanished while its socket opened');
      return Object.assign(row, { pendingToolCalls: await this.d.toolCalls.awaitingIds(row.id) });
    });
    this.chat = fresh;
    this.delivery.send(
      control('chat_meta', {
        chat_id: fresh.id,
        app_id: fresh.appId,
        user_id: fresh.userId,
        workflow_name: fresh.workflowName,
        status: fresh.status as ChatStatus,
        cache_seed: fresh.cacheSeed,
        last_index: fresh.lastIndex,
        mode: fresh.mode as 'workflow' | 'general',
        pending_tool_calls: fresh.pendingToolCalls,
      }),
    );
    this.delivery.armGrace();
    const workflow = this.d.workflows.get(fresh.workflowName);
    if (workflow) await this.d.chatInputs.startGreetingOnce(fresh, workflow);
  }

  onClose(): Promise<void> {
    return this.delivery.close();
  }

  onRateLimited(): void {
    this.error(WsErrorCode.RateLimited, 'too many messages; slow down and send again');
  }

  /** A client's mistake (a kit HttpError below 500) is sent with its code; storage out of reach is UNAVAILABLE; anything else is INTERNAL. */
  onError(err: unknown): void {
    if (err instanceof HttpError && err.status < 500) return this.error(err.code, err.message);
    if (isStorageUnreachable(err)) return this.error(WsErrorCode.Unavailable, 'storage unavailable; try again');
    this.error(WsErrorCode.Internal, 'the message could not be processed; try again');
  }

  async onMessage(raw: RawData, isBinary: boolean): Promise<void> {
    if (isBinary) return this.error(WsErrorCode.SchemaValidationFailed, 'binary frames are not supported; send JSON text');
    let json: unknown;
    try {
      json = JSON.parse(raw.toString());
    } catch {
      return this.error(WsErrorCode.InvalidJson, 'message is not valid JSON');
    }
    const type = (json as { type?: unknown } | null)?.type;
    if (typeof type !== 'string' || !(CLIENT_MESSAGE_TYPES as string[]).includes(type)) {
      return this.error(WsErrorCode.UnknownMessageType, `unknown message type ${JSON.stringify(type ?? null)?.slice(0, 64)}; expected one of ${CLIENT_MESSAGE_TYPES.join(', ')}`);
    }
    const parsed = ClientMessage.safeParse(json);
    if (!parsed.success) {
      const issues = zodIssues(parsed.error);
      return this.error(WsErrorCode.SchemaValidationFailed, `invalid ${type}: ${issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`, { issues });
    }
    await this.handle(parsed.data);
  }

  private async handle(m: ClientMessage): Promise<void> {
    if (m.type !== 'client.resume') this.delivery.startLive();
    if ('chat_id' in m && m.chat_id !== undefined && m.chat_id !== this.chat.id)
      throw new InputRefused(WsErrorCode.ChatMismatch, `chat_id ${m.chat_id} is not this socket's chat`, 400);
    if (COSTLY.has(m.type)) await this.d.chatInputs.takeFromBudget(this.chat);
    switch (m.type) {
      case 'client.resume':
        return this.delivery.resume(m.lastClientIndex);
      case 'user.input.submit': {
        const { input } = await this.d.chatInputs.submitMessage(this.chat, m.text, m.client_message_id, m.context, m.multitask_strategy);
        this.delivery.send(control('ack.input', { input_id: input.id, client_message_id: m.client_message_id ?? null }));
        return;
      }
      case 'tool_call_response': {
        const { toolCall } = await this.d.chatInputs.respondToolCall(this.chat, m.tool_call_id, m.response, () => undefined);
        this.delivery.send(control('ack.tool_call_response', { event_id: toolCall.eventId }));
        return;
      }
      case 'chat.switch_workflow': {
        const wf = this.workflow(m.workflow_name);
        this.chat = await this.d.chats.update(this.chat.id, { workflowName: wf.name, mode: 'workflow', state: {} });
        this.delivery.send(control('chat.mode_changed', { mode: 'workflow', workflow_name: wf.name }));
        return;
      }
      case 'chat.enter_general_mode': {
        this.chat = await this.d.chats.update(this.chat.id, { mode: 'general' });
        this.delivery.send(control('chat.mode_changed', { mode: 'general', workflow_name: null }));
        return;
      }
      case 'chat.start_general_chat': {
        const general = [...this.d.workflows.values()].find((w) => w.entry_point) ?? [...this.d.workflows.values()][0];
        const chat = await this.startChat(general.name, 'general');
        this.delivery.send(control('chat.mode_changed', { mode: 'general', workflow_name: general.name }));
        this.delivery.send(control('chat.workflow_started', { workflow_name: general.name, chat_id: chat.id, batch: false }));
        return;
      }
      case 'chat.start_workflow': {
        const chat = await this.startChat(this.workflow(m.workflow_name).name, 'workflow');
        this.delivery.send(control('chat.workflow_started', { workflow_name: m.workflow_name, chat_id: chat.id, batch: false }));
        return;
      }
      case 'chat.start_workflow_batch': {
        m.workflows.forEach((w) => this.workflow(w)); // all known, or none started
        for (const w of m.workflows) {
          const chat = await this.startChat(w, 'workflow');
          this.delivery.send(control('chat.workflow_started', { workflow_name: w, chat_id: chat.id, batch: true }));
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

  private error(code: string, message: string, details?: unknown): void {
    this.delivery.send(JSON.stringify({ type: 'chat.error', data: { message, error_code: code, ...(details !== undefined && { details }) }, timestamp: new Date().toISOString() }));
  }
}

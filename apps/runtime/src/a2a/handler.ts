import { randomUUID } from 'node:crypto';
import type { A2ARequestHandler } from '@a2a-js/sdk/server';
import {
  Role,
  TaskState,
  type AgentCard,
  type Artifact,
  type CancelTaskRequest,
  type GetTaskRequest,
  type Message,
  type SendMessageRequest,
  type StreamResponse,
  type SubscribeToTaskRequest,
  type Task,
  type TaskStatus,
} from '@a2a-js/sdk';
import { RequestMalformedError, TaskNotCancelableError, TaskNotFoundError, UnsupportedOperationError } from '@a2a-js/sdk/errors';
import { MultitaskStrategy, SafeText, type TimelineDataOf, type TimelineEvent, type TimelineType } from '@tessera/contracts';
import { assertOwner, NotFound, type Principal } from '@tessera/kit';
import { followTimeline } from '../bus/follow';
import type { RuntimeServices } from '../services';
import type { ChatRow } from '../store/chats';
import { ownedChat } from '../routes/access';
import { InputRefused } from '../turns/chat-inputs';

/**
 * A2A (protocol 1.0, as @a2a-js/sdk 1.x implements it) over Tessera chats: a task is a chat turn
 * (its contextId is the chat id), what it says is read from the chat's timeline, so any instance
 * answers any task and a resubscribe replays the task from its first event.
 */

/** What a task id stands for, in Redis (shared by every instance). */
interface TaskRecord {
  chatId: string;
  appId: string;
  userId: string;
  workflow: string;
  /** The timeline index before the task's first message: its events come after. */
  base: number;
  /** The chat input whose run ends the task (a new one when an answer continues it). */
  turnId: string;
  /** Every chat input of the task, the first and each answer's: what their turns say is the task's. */
  turns: string[];
}

const TASK_TTL_S = 7 * 24 * 3600;
const PAGE = 500;
const data = <T extends TimelineType>(e: TimelineEvent, _t: T) => e.data as TimelineDataOf<T>;
const TERMINAL = new Set([TaskState.TASK_STATE_COMPLETED, TaskState.TASK_STATE_FAILED, TaskState.TASK_STATE_CANCELED]);

/** A task's state so far, folded from its timeline events. */
class TaskView {
  state = TaskState.TASK_STATE_WORKING;
  reason: string | undefined;
  /** The UI tool call awaiting an answer (its event id), while input is required. */
  pending: string | null = null;
  question: string | undefined;
  private awaitingMine = false;
  readonly texts = new Map<string, string>();
  cursor: number;
  constructor(readonly rec: TaskRecord) {
    this.cursor = rec.base;
  }

  /** Folds one event in; returns the A2A updates it makes. */
  apply(id: string, e: TimelineEvent): StreamResponse[] {
    this.cursor = e.index;
    const ids = { taskId: id, contextId: this.rec.chatId, metadata: undefined };
    switch (e.type) {
      case 'chat.text': {
        const d = data(e, 'chat.text');
        // Another turn of the chat may still speak after the base (the end of an earlier reply, one a newer message cut off).
        if (d.role !== 'assistant' || (!d.delta && !d.done) || !this.rec.turns.some((t) => d.message_id.startsWith(`${t}:`))) return [];
        const before = this.texts.get(d.message_id);
        this.texts.set(d.message_id, (before ?? '') + (d.delta ?? ''));
        const artifact = textArtifact(d.message_id, d.delta ?? '', d.agent);
        return [{ payload: { $case: 'artifactUpdate', value: { ...ids, artifact, append: before !== undefined, lastChunk: Boolean(d.done) } } }];
      }
      case 'chat.tool_call': {
        const d = data(e, 'chat.tool_call');
        if (d.awaiting_response) {
          this.pending = d.event_id;
          this.question = typeof d.payload.question === 'string' ? d.payload.question : undefined;
        }
        return [];
      }
      case 'chat.tool_call_complete': {
        // The question was answered: the task works again.
        if (this.pending === data(e, 'chat.tool_call_complete').event_id) {
          this.pending = null;
          this.state = TaskState.TASK_STATE_WORKING;
        }
        return [];
      }
      case 'chat.run_complete': {
        const d = data(e, 'chat.run_complete');
        const mine = d.turn_id === this.rec.turnId;
        this.awaitingMine = false;
        if (d.status === 'awaiting_input' && this.pending) {
          this.state = TaskState.TASK_STATE_INPUT_REQUIRED;
          this.awaitingMine = mine;
        } else if (d.status === 'stopped') this.state = TaskState.TASK_STATE_CANCELED; // also a stop of the idle chat (its own turn id) while input was required
        else if (!mine) return [];
        else if (d.status === 'failed') this.state = TaskState.TASK_STATE_FAILED;
        else if (d.status === 'interrupted' || d.status === 'rolled_back') this.state = TaskState.TASK_STATE_CANCELED; // a newer message superseded it
        else this.state = TaskState.TASK_STATE_COMPLETED;
        this.reason = d.reason;
        return [{ payload: { $case: 'statusUpdate', value: { ...ids, status: this.status(id) } } }];
      }
      default:
        return [];
    }
  }

  /** Whether the task's stream ends here: a terminal state, or input required by the task's current turn (an earlier question was answered since). */
  get settled(): boolean {
    return TERMINAL.has(this.state) || (this.state === TaskState.TASK_STATE_INPUT_REQUIRED && this.awaitingMine);
  }

  status(id: string): TaskStatus {
    const say = this.state === TaskState.TASK_STATE_INPUT_REQUIRED ? this.question : this.state === TaskState.TASK_STATE_FAILED ? (this.reason ?? 'the run failed') : undefined;
    return {
      state: this.state,
      timestamp: new Date().toISOString(),
      message: say === undefined ? undefined : agentMessage(id, this.rec.chatId, say),
    };
  }

  task(id: string): Task {
    return {
      id,
      contextId: this.rec.chatId,
      status: this.status(id),
      artifacts: [...this.texts].map(([messageId, text]) => textArtifact(messageId, text)),
      history: [],
      metadata: { workflow_name: this.rec.workflow },
    };
  }
}

function textArtifact(messageId: string, text: string, agent?: string): Artifact {
  return {
    artifactId: messageId,
    name: 'reply',
    description: '',
    parts: [{ content: { $case: 'text', value: text }, metadata: undefined, filename: '', mediaType: 'text/plain' }],
    metadata: agent ? { agent } : undefined,
    extensions: [],
  };
}

function agentMessage(taskId: string, contextId: string, text: string): Message {
  return {
    messageId: `${taskId}:status`,
    contextId,
    taskId,
    role: Role.ROLE_AGENT,
    parts: [{ content: { $case: 'text', value: text }, metadata: undefined, filename: '', mediaType: 'text/plain' }],
    metadata: undefined,
    extensions: [],
    referenceTaskIds: [],
  };
}

/** Another user's, another app's or no chat: all alike "not found"; anything else (the database) is an error. */
function notFoundAsNull(e: unknown): null {
  if (e instanceof NotFound) return null;
  throw e;
}

/** One caller's A2A handler for one app's workflow (made per request: the principal is the tenant). */
export class ChatTaskHandler implements A2ARequestHandler {
  constructor(
    private readonly s: RuntimeServices,
    private readonly principal: Principal,
    private readonly appId: string,
    private readonly workflow: string,
    private readonly card: AgentCard,
    /** Aborted when the caller's connection closes: a stream stops following the task. */
    private readonly closed: AbortSignal = new AbortController().signal,
  ) {}

  private key(id: string): string {
    return `${this.s.config.BULL_PREFIX}:a2a:task:${id}`;
  }

  async getAgentCard(): Promise<AgentCard> {
    return this.card;
  }

  async getAuthenticatedExtendedAgentCard(): Promise<AgentCard> {
    throw new UnsupportedOperationError('no extended agent card');
  }

  /** The caller's task of that id in this app and workflow; anything else is "not found". */
  private async record(id: string): Promise<TaskRecord> {
    const raw = id.length <= 200 ? await this.s.redis.get(this.key(id)) : null;
    const rec = raw ? (JSON.parse(raw) as TaskRecord) : null;
    if (!rec || rec.appId !== this.appId || rec.userId !== this.principal.sub || rec.workflow !== this.workflow) throw new TaskNotFoundError(`no task "${id.slice(0, 200)}"`);
    return rec;
  }

  private async view(id: string, rec: TaskRecord): Promise<TaskView> {
    const v = new TaskView(rec);
    for (;;) {
      const page = await this.s.timeline.after(rec.chatId, v.cursor, PAGE);
      for (const e of page) {
        v.apply(id, e);
        if (TERMINAL.has(v.state)) return v; // later turns of the chat are other tasks
      }
      if (page.length < PAGE) return v;
    }
  }

  /** Starts (or, for a task awaiting input, continues) a task with the message; returns its id. */
  private async begin(params: SendMessageRequest): Promise<{ id: string; rec: TaskRecord }> {
    const message = params.message;
    if (!message) throw new RequestMalformedError('params.message is required');
    const raw = message.parts.flatMap((p) => (p.content?.$case === 'text' ? [p.content.value] : [])).join('\n');
    const checked = SafeText.max(32_000).safeParse(raw);
    if (!checked.success) throw new RequestMalformedError(`params.message.parts: ${checked.error.issues[0].message}`);
    const text = checked.data;
    if (!text.trim()) throw new RequestMalformedError('params.message.parts: the message has no text part');

    if (message.taskId) {
      const id = message.taskId;
      const rec = await this.record(id);
      if (message.contextId && message.contextId !== rec.chatId) throw new RequestMalformedError(`task "${id}" belongs to context "${rec.chatId}", not "${message.contextId}"`);
      const v = await this.view(id, rec);
      if (v.state !== TaskState.TASK_STATE_INPUT_REQUIRED || !v.pending) throw new RequestMalformedError(`task "${id}" is not awaiting input (send without taskId to start a new task)`);
      const chat = await ownedChat(this.s.chats, this.principal, rec.chatId, this.appId);
      const { input } = await this.s.chatInputs.respondToolCall(chat, v.pending, { answer: text }, () => undefined);
      const next = { ...rec, turnId: input.id, turns: [...rec.turns, input.id] };
      await this.s.redis.set(this.key(id), JSON.stringify(next), 'EX', TASK_TTL_S);
      return { id, rec: next };
    }

    const chat = await this.chat(message.contextId);
    const base = await this.s.timeline.lastIndex(chat.id);
    const id = randomUUID();
    const strategy = MultitaskStrategy.optional().safeParse(message.metadata?.multitask_strategy);
    if (!strategy.success) throw new RequestMalformedError(`params.message.metadata.multitask_strategy: ${strategy.error.issues[0].message}`);
    const clientId = message.messageId ? `a2a:${message.messageId.slice(0, 200)}` : undefined;
    const { input } = await this.s.chatInputs.submitMessage(chat, text, clientId, undefined, strategy.data).catch((e: unknown) => {
      // A refusal of the message itself (the chat busy under `reject`, too many waiting): A2A's word for "not now".
      throw e instanceof InputRefused ? new UnsupportedOperationError(`${e.code}: ${e.message}`) : e;
    });
    const rec: TaskRecord = { chatId: chat.id, appId: this.appId, userId: this.principal.sub, workflow: this.workflow, base, turnId: input.id, turns: [input.id] };
    await this.s.redis.set(this.key(id), JSON.stringify(rec), 'EX', TASK_TTL_S);
    return { id, rec };
  }

  /** The context's chat: one of the caller's chats in this app and workflow, or a new one. */
  private async chat(contextId: string): Promise<ChatRow> {
    assertOwner(this.principal, this.principal.sub, this.appId);
    if (contextId) {
      const chat = contextId.length <= 200 ? await ownedChat(this.s.chats, this.principal, contextId, this.appId).catch(notFoundAsNull) : null;
      if (!chat || chat.workflowName !== this.workflow) throw new TaskNotFoundError(`no context "${contextId.slice(0, 200)}"`);
      return chat;
    }
    const { chat } = await this.s.starter.start({ appId: this.appId, userId: this.principal.sub, workflowName: this.workflow, backendContext: null, uiContext: null });
    return chat;
  }

  async sendMessage(params: SendMessageRequest): Promise<Task> {
    const { id, rec } = await this.begin(params);
    if (params.configuration?.returnImmediately) return (await this.view(id, rec)).task(id);
    let last: TaskView | null = null;
    for await (const _ of this.follow(id, rec, (v) => (last = v))) void _;
    return (last ?? (await this.view(id, rec))).task(id);
  }

  async *sendMessageStream(params: SendMessageRequest): AsyncGenerator<StreamResponse, void, undefined> {
    const { id, rec } = await this.begin(params);
    yield* this.follow(id, rec);
  }

  async getTask(params: GetTaskRequest): Promise<Task> {
    const rec = await this.record(params.id);
    return (await this.view(params.id, rec)).task(params.id);
  }

  async cancelTask(params: CancelTaskRequest): Promise<Task> {
    const rec = await this.record(params.id);
    let v = await this.view(params.id, rec);
    if (TERMINAL.has(v.state)) throw new TaskNotCancelableError(`task "${params.id}" is already ${TaskState[v.state]}`);
    await this.s.feed.publishControl({ action: 'stop', session_id: rec.chatId, app_id: rec.appId, requested_by: this.principal.sub });
    // The stop lands when the worker reads it: wait (a little) for the canceled state.
    for (let i = 0; i < 50 && !TERMINAL.has(v.state); i++) {
      await new Promise((r) => setTimeout(r, 200));
      v = await this.view(params.id, rec);
    }
    return v.task(params.id);
  }

  async *resubscribe(params: SubscribeToTaskRequest): AsyncGenerator<StreamResponse, void, undefined> {
    const rec = await this.record(params.id);
    yield* this.follow(params.id, rec);
  }

  /**
   * The task from its first event: the task itself, then its artifact and status updates as the
   * timeline has them, until it is settled. Read from the log, so a resubscribe loses nothing.
   */
  private async *follow(id: string, rec: TaskRecord, onView?: (v: TaskView) => void): AsyncGenerator<StreamResponse, void, undefined> {
    const v = new TaskView(rec);
    onView?.(v);
    yield { payload: { $case: 'task', value: { ...v.task(id), status: { state: TaskState.TASK_STATE_WORKING, message: undefined, timestamp: new Date().toISOString() } } } };
    for await (const e of followTimeline(this.s, rec.chatId, v.cursor, this.closed)) {
      for (const out of v.apply(id, e)) yield out;
      if (v.settled) return;
    }
  }

  async createTaskPushNotificationConfig(): Promise<never> {
    throw new UnsupportedOperationError('push notifications are not supported');
  }
  async getTaskPushNotificationConfig(): Promise<never> {
    throw new UnsupportedOperationError('push notifications are not supported');
  }
  async listTaskPushNotificationConfigs(): Promise<never> {
    throw new UnsupportedOperationError('push notifications are not supported');
  }
  async deleteTaskPushNotificationConfig(): Promise<never> {
    throw new UnsupportedOperationError('push notifications are not supported');
  }
  async listTasks(): Promise<never> {
    throw new UnsupportedOperationError('tasks/list is not supported: read the chats with GET /api/chats/{app_id}');
  }
}

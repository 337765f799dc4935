import { z } from 'zod';
import { WorkflowName } from '../common/ids';
import { SafeJsonRecord, SafeText } from '../common/safe';
import { ChatStatus } from './http';
import { MultitaskStrategy } from './workflow';

/* ------------------------------------------------------------------------------------------------
 * Client → runtime messages on /ws/{workflow_name}/{app_id}/{chat_id}/{user_id}
 * ---------------------------------------------------------------------------------------------- */

export const UserInputSubmit = z.object({
  type: z.literal('user.input.submit'),
  chat_id: SafeText.max(128).optional(),
  text: SafeText.min(1).max(32_000),
  context: SafeJsonRecord.optional(),
  client_message_id: SafeText.max(128).optional(),
  multitask_strategy: MultitaskStrategy.optional().describe("while a turn runs: enqueue, reject, interrupt or rollback (default: the workflow's)"),
});
export const ToolCallResponse = z.object({
  type: z.literal('tool_call_response'),
  tool_call_id: SafeText.min(1).max(256).describe('The event_id (or tool_call_id) of the chat.tool_call'),
  response: SafeJsonRecord,
});
export const ClientResume = z.object({
  type: z.literal('client.resume'),
  chat_id: SafeText.max(128).optional(),
  /** The highest index the client has applied; -1 (or 0) when it has applied nothing. */
  lastClientIndex: z
    .number()
    .int()
    .min(-1)
    .transform((n) => Math.max(n, 0))
    .describe('highest index applied; -1 or 0 = nothing applied, everything is replayed'),
});
export const SwitchWorkflow = z.object({ type: z.literal('chat.switch_workflow'), workflow_name: WorkflowName });
export const EnterGeneralMode = z.object({ type: z.literal('chat.enter_general_mode') });
export const StartGeneralChat = z.object({ type: z.literal('chat.start_general_chat') });
export const StartWorkflow = z.object({ type: z.literal('chat.start_workflow'), workflow_name: WorkflowName });
export const StartWorkflowBatch = z.object({
  type: z.literal('chat.start_workflow_batch'),
  workflows: z.array(WorkflowName).min(1).max(10),
});

export const ClientMessage = z.discriminatedUnion('type', [
  UserInputSubmit,
  ToolCallResponse,
  ClientResume,
  SwitchWorkflow,
  EnterGeneralMode,
  StartGeneralChat,
  StartWorkflow,
  StartWorkflowBatch,
]);
export type ClientMessage = z.infer<typeof ClientMessage>;
export const CLIENT_MESSAGE_TYPES = ClientMessage.options.map((o) => o.shape.type.value);

/* ------------------------------------------------------------------------------------------------
 * Runtime → client. Every message is an envelope {type, data, timestamp}; events of the chat's
 * timeline also carry `index`, the chat's increasing order, which `client.resume` counts from.
 * ---------------------------------------------------------------------------------------------- */

/**
 * Tokens of model calls as the provider reports them. `prompt_tokens` counts every input token,
 * cached or not (OpenAI's reading; Anthropic's uncached `input_tokens` plus its cache reads and
 * writes); `cache_read_tokens` and `cache_write_tokens` are parts of it, `reasoning_tokens` a part
 * of `completion_tokens`. Each part is absent when the provider does not report it.
 */
export const Usage = z.object({
  prompt_tokens: z.number().int().min(0),
  completion_tokens: z.number().int().min(0),
  total_tokens: z.number().int().min(0),
  cache_read_tokens: z.number().int().min(0).optional().describe('input tokens read from the provider’s prompt cache (part of prompt_tokens)'),
  cache_write_tokens: z.number().int().min(0).optional().describe('input tokens written to the provider’s prompt cache (part of prompt_tokens)'),
  reasoning_tokens: z.number().int().min(0).optional().describe('output tokens spent on reasoning (part of completion_tokens)'),
});
export type Usage = z.infer<typeof Usage>;

/** Data of each timeline event type. */
export const TimelineData = {
  'chat.text': z.object({
    message_id: z.string(),
    agent: z.string(),
    role: z.enum(['user', 'assistant']),
    /** The next piece of the message. */
    delta: z.string(),
    /** True on the message's last event, which also carries the whole `content`. */
    done: z.boolean(),
    content: z.string().optional(),
  }),
  'chat.print': z.object({ agent: z.string(), content: z.string() }),
  'chat.tool_call': z.object({
    event_id: z.string(),
    tool_call_id: z.string(),
    tool_name: z.string(),
    component: z.string(),
    agent: z.string(),
    payload: z.record(z.string(), z.unknown()),
    awaiting_response: z.boolean(),
    interaction_type: z.enum(['input_request', 'display']),
    display: z.string(),
  }),
  'chat.tool_call_complete': z.object({
    event_id: z.string(),
    tool_call_id: z.string(),
    tool_name: z.string(),
    response: z.record(z.string(), z.unknown()),
  }),
  'chat.tool_call_dismiss': z.object({ event_id: z.string(), tool_call_id: z.string(), reason: z.string() }),
  'chat.tool_response': z.object({ tool_call_id: z.string(), tool_name: z.string(), agent: z.string(), content: z.string() }),
  'chat.usage_delta': Usage.extend({ agent: z.string(), model: z.string(), provider: z.string().optional().describe('scripted, openai-compatible or anthropic') }),
  'chat.usage_summary': Usage.extend({ turns: z.number().int() }),
  'chat.run_complete': z.object({
    turn_id: z.string(),
    /** `interrupted` / `rolled_back`: a newer message cut the turn off (multitask_strategy); the chat goes on. */
    status: z.enum(['completed', 'awaiting_input', 'stopped', 'failed', 'interrupted', 'rolled_back']),
    reason: z.string().optional(),
    /** From the user's message (or answer) being accepted to the turn's first assistant text, when it had one. */
    first_text_ms: z.number().int().nonnegative().optional(),
    /** From the user's message (or answer) being accepted to the turn's end. */
    duration_ms: z.number().int().nonnegative().optional(),
  }),
  'chat.custom_event': z.object({ kind: z.string(), payload: z.record(z.string(), z.unknown()) }),
  'chat.attachment_uploaded': z.object({
    attachment_id: z.string(),
    filename: z.string(),
    size: z.number().int(),
    content_type: z.string(),
    intent: z.string().nullable(),
    bundle_path: z.string().nullable(),
    uploaded_by: z.string(),
  }),
  'chat.error': z.object({ message: z.string(), error_code: z.string() }),
} as const;
export type TimelineType = keyof typeof TimelineData;
export type TimelineDataOf<T extends TimelineType> = z.infer<(typeof TimelineData)[T]>;

/** Data of messages that are not part of the timeline (not replayed, no index). */
export const ControlData = {
  chat_meta: z.object({
    chat_id: z.string(),
    app_id: z.string(),
    user_id: z.string(),
    workflow_name: z.string(),
    status: ChatStatus,
    cache_seed: z.number().int(),
    last_index: z.number().int(),
    mode: z.enum(['workflow', 'general']),
    pending_tool_calls: z.array(z.string()),
  }),
  'ack.input': z.object({ input_id: z.string(), client_message_id: z.string().nullable() }),
  'chat.input_ack': z.object({ input_id: z.string(), client_message_id: z.string().nullable() }),
  'ack.tool_call_response': z.object({ event_id: z.string() }),
  'chat.resume_boundary': z.object({
    replayed_messages: z.number().int(),
    last_message_index: z.number().int(),
    total_messages: z.number().int(),
    resume_state: z.enum(['up_to_date', 'replayed', 'diverged']),
  }),
  'chat.mode_changed': z.object({ mode: z.enum(['workflow', 'general']), workflow_name: z.string().nullable() }),
  'chat.workflow_started': z.object({ workflow_name: z.string(), chat_id: z.string(), batch: z.boolean() }),
  'chat.error': z.object({ message: z.string(), error_code: z.string() }),
} as const;

export const ServerEnvelope = z.object({
  type: z.string(),
  data: z.record(z.string(), z.unknown()),
  timestamp: z.string(),
  index: z.number().int().positive().optional(),
});
export type ServerEnvelope = z.infer<typeof ServerEnvelope>;

/** `chat.error` codes sent on the socket. */
export const WsErrorCode = {
  SchemaValidationFailed: 'SCHEMA_VALIDATION_FAILED',
  UnknownMessageType: 'UNKNOWN_MESSAGE_TYPE',
  InvalidJson: 'INVALID_JSON',
  ChatMismatch: 'CHAT_MISMATCH',
  ToolCallNotFound: 'TOOL_CALL_NOT_FOUND',
  ToolCallNotAwaiting: 'TOOL_CALL_NOT_AWAITING',
  WorkflowNotFound: 'WORKFLOW_NOT_FOUND',
  ChatClosed: 'CHAT_CLOSED',
  RateLimited: 'RATE_LIMITED',
  /** A budget of the app or the user is spent (budgets.BUDGET_EXCEEDED): the message names it and when it resets. */
  BudgetExceeded: 'BUDGET_EXCEEDED',
  /** A message sent with multitask_strategy `reject` while a turn of the chat runs or waits. */
  ChatBusy: 'CHAT_BUSY',
  TurnFailed: 'TURN_FAILED',
  /** PostgreSQL or Redis out of reach: send the message again with the same `client_message_id` (stored before the failure, it is not stored twice, and its turn is queued then). */
  Unavailable: 'UNAVAILABLE',
  Internal: 'INTERNAL',
} as const;

/** WebSocket close codes used by every Tessera socket. */
export const CloseCode = {
  Normal: 1000,
  GoingAway: 1001,
  PolicyViolation: 1008,
  TooBig: 1009,
  InternalError: 1011,
  TryAgainLater: 1013,
} as const;

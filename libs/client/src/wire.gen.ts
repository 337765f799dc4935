// Generated from libs/contracts/src/runtime/ws.ts by `npx tsx libs/client/scripts/generate-wire.ts`: do not edit.
// test/wire.test.ts fails when this file and the contracts differ.
import * as z from 'zod/mini';

/** Data of each timeline event type (the contracts' TimelineData). */
export const TimelineData = {
  'chat.text': z.object({
    message_id: z.string(),
    agent: z.string(),
    role: z.enum(['user', 'assistant']),
    delta: z.string(),
    done: z.boolean(),
    content: z.optional(z.string()),
  }),
  'chat.print': z.object({
    agent: z.string(),
    content: z.string(),
  }),
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
  'chat.tool_call_dismiss': z.object({
    event_id: z.string(),
    tool_call_id: z.string(),
    reason: z.string(),
  }),
  'chat.tool_response': z.object({
    tool_call_id: z.string(),
    tool_name: z.string(),
    agent: z.string(),
    content: z.string(),
  }),
  'chat.usage_delta': z.object({
    prompt_tokens: z.int().check(z.gte(0)),
    completion_tokens: z.int().check(z.gte(0)),
    total_tokens: z.int().check(z.gte(0)),
    cache_read_tokens: z.optional(z.int().check(z.gte(0))),
    cache_write_tokens: z.optional(z.int().check(z.gte(0))),
    reasoning_tokens: z.optional(z.int().check(z.gte(0))),
    agent: z.string(),
    model: z.string(),
    provider: z.optional(z.string()),
  }),
  'chat.usage_summary': z.object({
    prompt_tokens: z.int().check(z.gte(0)),
    completion_tokens: z.int().check(z.gte(0)),
    total_tokens: z.int().check(z.gte(0)),
    cache_read_tokens: z.optional(z.int().check(z.gte(0))),
    cache_write_tokens: z.optional(z.int().check(z.gte(0))),
    reasoning_tokens: z.optional(z.int().check(z.gte(0))),
    turns: z.int(),
  }),
  'chat.run_complete': z.object({
    turn_id: z.string(),
    status: z.enum(['completed', 'awaiting_input', 'stopped', 'failed', 'interrupted', 'rolled_back']),
    reason: z.optional(z.string()),
    first_text_ms: z.optional(z.int().check(z.gte(0))),
    duration_ms: z.optional(z.int().check(z.gte(0))),
  }),
  'chat.custom_event': z.object({
    kind: z.string(),
    payload: z.record(z.string(), z.unknown()),
  }),
  'chat.attachment_uploaded': z.object({
    attachment_id: z.string(),
    filename: z.string(),
    size: z.int(),
    content_type: z.string(),
    intent: z.nullable(z.string()),
    bundle_path: z.nullable(z.string()),
    uploaded_by: z.string(),
  }),
  'chat.error': z.object({
    message: z.string(),
    error_code: z.string(),
  }),
} as const;

/** Data of messages outside the timeline (the contracts' ControlData). */
export const ControlData = {
  chat_meta: z.object({
    chat_id: z.string(),
    app_id: z.string(),
    user_id: z.string(),
    workflow_name: z.string(),
    status: z.enum(['created', 'in_progress', 'awaiting_input', 'completed', 'stopped', 'failed']),
    cache_seed: z.int(),
    last_index: z.int(),
    mode: z.enum(['workflow', 'general']),
    pending_tool_calls: z.array(z.string()),
  }),
  'ack.input': z.object({
    input_id: z.string(),
    client_message_id: z.nullable(z.string()),
  }),
  'chat.input_ack': z.object({
    input_id: z.string(),
    client_message_id: z.nullable(z.string()),
  }),
  'ack.tool_call_response': z.object({
    event_id: z.string(),
  }),
  'chat.resume_boundary': z.object({
    replayed_messages: z.int(),
    last_message_index: z.int(),
    total_messages: z.int(),
    resume_state: z.enum(['up_to_date', 'replayed', 'diverged']),
  }),
  'chat.mode_changed': z.object({
    mode: z.enum(['workflow', 'general']),
    workflow_name: z.nullable(z.string()),
  }),
  'chat.workflow_started': z.object({
    workflow_name: z.string(),
    chat_id: z.string(),
    batch: z.boolean(),
  }),
  'chat.error': z.object({
    message: z.string(),
    error_code: z.string(),
  }),
} as const;

/** Every runtime → client message (the contracts' ServerEnvelope). */
export const ServerEnvelope = z.object({
  type: z.string(),
  data: z.record(z.string(), z.unknown()),
  timestamp: z.string(),
  index: z.optional(z.int().check(z.gt(0))),
});

/** `chat.error` codes sent on the socket (the contracts' WsErrorCode). */
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
  BudgetExceeded: 'BUDGET_EXCEEDED',
  ChatBusy: 'CHAT_BUSY',
  TurnFailed: 'TURN_FAILED',
  Unavailable: 'UNAVAILABLE',
  Internal: 'INTERNAL',
} as const;

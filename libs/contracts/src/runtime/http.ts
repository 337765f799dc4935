import { z } from 'zod';
import { AppId, ChatId, UserId, WorkflowName } from '../common/ids';
import { SafeJsonRecord, SafeText } from '../common/safe';
import { MultitaskStrategy } from './workflow';

export const ChatStatus = z.enum(['created', 'in_progress', 'awaiting_input', 'completed', 'stopped', 'failed']);
export type ChatStatus = z.infer<typeof ChatStatus>;

/** `GET /api/workflows`: config map keyed by workflow_name. */
export const WorkflowSummary = z
  .object({
    name: z.string(),
    description: z.string(),
    entry_point: z.boolean(),
    initiator: z.enum(['user', 'agent']),
    starting_agent: z.string(),
    agents: z.array(z.object({ name: z.string(), description: z.string() })),
    ui_tools: z.array(
      z.object({ name: z.string(), component: z.string(), awaits_response: z.boolean(), display: z.string() }),
    ),
    context_variables: z.array(z.string()),
  })
  .meta({ id: 'WorkflowSummary' });
export const WorkflowsReply = z.record(z.string(), WorkflowSummary).meta({ id: 'WorkflowsReply' });

/**
 * `GET /api/chats/{app_id}/agents`: the app's active agent-manager agents a user can chat with,
 * each with the workflow name that starts the chat (`agent.<name>`, GET /api/workflows lists files only).
 */
export const AgentChatsParams = z.object({ app_id: AppId });
export const AgentChatsReply = z
  .object({
    agents: z.array(
      z.object({
        name: z.string(),
        description: z.string(),
        workflow_name: z.string().describe('Start the chat with POST /api/chats/{app_id}/{workflow_name}/start (or the broker), then open its socket as for any workflow'),
      }),
    ),
  })
  .meta({ id: 'AgentChatsReply' });

export const TransportReply = z
  .object({
    workflow_name: z.string(),
    transport: z.literal('websocket'),
    websocket_path: z.string(),
    input_path: z.string(),
    tool_response_path: z.string(),
    upload_path: z.string(),
    auth: z.object({ http: z.literal('bearer'), websocket: z.literal('access_token query parameter') }),
  })
  .meta({ id: 'TransportReply' });

/** `POST /api/chats/{app_id}/{workflow_name}/start` */
export const StartChatParams = z.object({ app_id: AppId, workflow_name: WorkflowName });
export const StartChatBody = z
  .object({
    user_id: UserId,
    client_request_id: SafeText.min(1).max(128).optional(),
    force_new: z.boolean().optional(),
    /** Client-supplied context: stored with the `ui_` prefix, never overwriting backend values. */
    context: SafeJsonRecord.optional(),
  })
  .meta({ id: 'StartChatBody' });
export const StartChatReply = z
  .object({ chat_id: z.string(), websocket_url: z.string(), cache_seed: z.number().int(), reused: z.boolean() })
  .meta({ id: 'StartChatReply' });

/** `POST /api/chat/start` (document 000's form, called by a trusted backend). */
export const BackendStartBody = z
  .object({
    app_id: AppId,
    user_id: UserId,
    workflow_name: WorkflowName,
    initial_context: SafeJsonRecord.nullish(),
    client_request_id: SafeText.min(1).max(128).optional(),
    /** Context the end user supplied through the broker; stored with the `ui_` prefix. */
    ui_context: SafeJsonRecord.optional(),
  })
  .meta({ id: 'BackendStartBody' });
export const BackendStartReply = z
  .object({ chat_id: z.string(), status: ChatStatus, reused: z.boolean(), websocket_url: z.string() })
  .meta({ id: 'BackendStartReply' });

export const ChatSession = z
  .object({
    chat_id: z.string(),
    app_id: z.string(),
    user_id: z.string(),
    workflow_name: z.string(),
    status: ChatStatus,
    created_at: z.string(),
    updated_at: z.string(),
    last_index: z.number().int(),
  })
  .meta({ id: 'ChatSession' });
export type ChatSession = z.infer<typeof ChatSession>;
export const SessionsParams = z.object({ app_id: AppId, user_id: UserId });
export const SessionsReply = z.array(ChatSession).meta({ id: 'SessionsReply' });
export const RecentSessionReply = z
  .object({ found: z.boolean(), chat_id: z.string().nullable(), workflow_name: z.string().nullable() })
  .meta({ id: 'RecentSessionReply' });

/** `POST /chat/{app_id}/{chat_id}/{user_id}/input` (HTTP fallback for a user message). */
export const InputParams = z.object({ app_id: AppId, chat_id: ChatId, user_id: UserId });
export const InputBody = z
  .object({
    message: SafeText.min(1).max(32_000),
    workflow_name: WorkflowName,
    client_message_id: SafeText.max(128).optional(),
    multitask_strategy: MultitaskStrategy.optional().describe("while a turn runs: enqueue, reject, interrupt or rollback (default: the workflow's)"),
  })
  .meta({ id: 'InputBody' });
export const InputReply = z.object({ accepted: z.literal(true), input_id: z.string(), chat_id: z.string() }).meta({ id: 'InputReply' });

/** `POST /api/tool-call/respond` */
export const ToolRespondBody = z
  .object({ event_id: SafeText.min(1).max(256), response_data: SafeJsonRecord })
  .meta({ id: 'ToolRespondBody' });
export const ToolRespondReply = z.object({ accepted: z.literal(true), event_id: z.string(), chat_id: z.string() }).meta({ id: 'ToolRespondReply' });

/** `POST /api/chat/upload` multipart fields (besides `file`). */
export const UploadFields = z.object({
  appId: AppId,
  userId: UserId,
  chatId: ChatId,
  intent: SafeText.max(64).optional(),
  bundle_path: SafeText.max(512).optional(),
});
export const UploadReply = z
  .object({
    attachment_id: z.string(),
    chat_id: z.string(),
    filename: z.string(),
    size: z.number().int(),
    content_type: z.string(),
    intent: z.string().nullable(),
    bundle_path: z.string().nullable(),
  })
  .meta({ id: 'UploadReply' });

/** `GET /api/chats/meta/{app_id}/{workflow_name}/{chat_id}` */
export const ChatMetaParams = z.object({ app_id: AppId, workflow_name: WorkflowName, chat_id: ChatId });
export const ChatMetaReply = z
  .object({
    chat_id: z.string(),
    workflow_name: z.string(),
    cache_seed: z.number().int(),
    status: ChatStatus,
    last_index: z.number().int(),
    last_artifact: z.record(z.string(), z.unknown()).nullable(),
    artifact_restore: z.object({ event_index: z.number().int().nullable(), available: z.boolean() }),
    pending_tool_calls: z.array(z.string()),
  })
  .meta({ id: 'ChatMetaReply' });

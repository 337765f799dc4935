import { z } from 'zod';
import { AppId, WorkflowName } from '../common/ids';
import { SafeJsonRecord, SafeText } from '../common/safe';
import { ChatSession, RecentSessionReply } from '../runtime/http';

/** `POST /api/mozaiks/session`: the user comes from the verified token, never from the body. */
export const CreateSessionBody = z
  .object({
    workflow_name: WorkflowName.describe('A workflow of GET /api/workflows, or agent.<name>: a chat with the app\'s active agent <name> (GET /api/chats/{app_id}/agents)'),
    /** Tessera: the app to start the chat in, when the token allows several; the broker's APP_ID when absent. */
    app_id: AppId.optional().describe("The app to start the chat in (the token must allow it); the broker's APP_ID when absent"),
    client_request_id: SafeText.min(1).max(128).optional(),
    /** Optional client context; reaches agents only with the `ui_` prefix. */
    context: SafeJsonRecord.optional(),
  })
  .strict()
  .meta({ id: 'CreateSessionBody' });
export const CreateSessionReply = z
  .object({ chat_id: z.string(), websocket_url: z.string(), workflow_name: z.string(), reused: z.boolean() })
  .meta({ id: 'CreateSessionReply' });

export const BrokerSessionsReply = z.array(ChatSession).meta({ id: 'BrokerSessionsReply' });
export const BrokerRecentReply = RecentSessionReply;

/** What the host application's context source returns for a user (document 000 §3). */
export const BackendContext = SafeJsonRecord;
export type BackendContext = z.infer<typeof BackendContext>;

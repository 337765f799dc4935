import { timingSafeEqual } from 'node:crypto';
import {
  BackendStartBody,
  BackendStartReply,
  ChatMetaParams,
  ChatMetaReply,
  StartChatBody,
  StartChatParams,
  StartChatReply,
  type ChatStatus,
  type RouteSpec,
} from '@tessera/contracts';
import { assertOwner, SERVICE_KEY_HEADER } from '@tessera/kit';
import type { z } from 'zod';
import type { RuntimeRoutes, RuntimeServices } from '../services';
import { ownedChat, wsPath } from './access';
import { agentChatRoutes, agentChatsRoutes } from './agent-chats';

/** A start refused while a budget of the app or the user is spent (its chats stay readable). */
export const budgetSpent = { 429: { description: 'BUDGET_EXCEEDED: a budget of the app or the user is spent (the message names it; Retry-After: seconds until it resets)' } } as const;

const startChat = {
  method: 'post',
  path: '/api/chats/{app_id}/{workflow_name}/start',
  access: 'user',
  summary: 'Start a chat (idempotent by client_request_id)',
  description:
    "Document 003: `user_id` must be the token's subject in the path's app. The same `client_request_id` returns the same chat (200, `reused: true`); `force_new` starts another. `context` reaches the agents with the `ui_` prefix. Then open `websocket_url` with `?access_token=` (see `/asyncapi.json`).",
  tags: ['chats'],
  params: StartChatParams,
  body: StartChatBody,
  examples: { start: { summary: 'Start (or rejoin) a chat', value: { user_id: 'user-123', client_request_id: 'req-7c1e', context: { locale: 'en-GB' } } } },
  responses: { 200: { description: 'an existing chat, reused', schema: StartChatReply }, 201: { description: 'a new chat', schema: StartChatReply }, ...budgetSpent },
} as const satisfies RouteSpec;
const backendStart = {
  method: 'post',
  path: '/api/chat/start',
  access: 'user',
  summary: 'Start a chat from a trusted backend (document 000); initial_context is backend context only with the service key',
  tags: ['chats'],
  body: BackendStartBody,
  responses: { 200: { description: 'an existing chat, reused', schema: BackendStartReply }, 201: { description: 'a new chat', schema: BackendStartReply }, ...budgetSpent },
} as const satisfies RouteSpec;
const chatMeta = {
  method: 'get',
  path: '/api/chats/meta/{app_id}/{workflow_name}/{chat_id}',
  access: 'owner',
  summary: 'Chat metadata for restore/rejoin',
  tags: ['chats'],
  params: ChatMetaParams,
  responses: { 200: { description: 'meta', schema: ChatMetaReply } },
} as const satisfies RouteSpec;

export const chatRoutes: RouteSpec[] = [startChat, backendStart, chatMeta, ...agentChatRoutes];

export function chatsRoutes(routes: RuntimeRoutes, s: RuntimeServices): void {
  // Chats with an agent of the agent manager: the agents to chat with (starting one is startChat's).
  agentChatsRoutes(routes, s);
  routes.route(startChat, async ({ params, body }, req, res) => {
    assertOwner(req.principal, body.user_id, params.app_id);
    await s.chatInputs.checkBudget(params.app_id, body.user_id);
    const { chat, reused } = await s.starter.start({
      appId: params.app_id,
      userId: body.user_id,
      workflowName: params.workflow_name,
      backendContext: null,
      uiContext: body.context,
      clientRequestId: body.client_request_id,
      forceNew: body.force_new,
    });
    const reply: z.infer<typeof StartChatReply> = {
      chat_id: chat.id,
      websocket_url: wsPath(chat.workflowName, chat.appId, chat.id, chat.userId),
      cache_seed: chat.cacheSeed,
      reused,
    };
    res.status(reused ? 200 : 201).json(reply);
  });

  routes.route(backendStart, async ({ body }, req, res) => {
    assertOwner(req.principal, body.user_id, body.app_id);
    await s.chatInputs.checkBudget(body.app_id, body.user_id);
    const trusted = isService(req.header(SERVICE_KEY_HEADER), s.config.SERVICE_KEY);
    const { chat, reused } = await s.starter.start({
      appId: body.app_id,
      userId: body.user_id,
      workflowName: body.workflow_name,
      // Only a caller holding the service key speaks for the backend; anyone else is a client.
      backendContext: trusted ? body.initial_context : null,
      uiContext: trusted ? body.ui_context : { ...body.initial_context, ...body.ui_context },
      clientRequestId: body.client_request_id,
    });
    const reply: z.infer<typeof BackendStartReply> = {
      chat_id: chat.id,
      status: chat.status as ChatStatus,
      reused,
      websocket_url: wsPath(chat.workflowName, chat.appId, chat.id, chat.userId),
    };
    res.status(reused ? 200 : 201).json(reply);
  });

  routes.route(chatMeta, async ({ params }, req, res) => {
    const chat = await ownedChat(s.chats, req.principal, params.chat_id, params.app_id);
    const reply: z.infer<typeof ChatMetaReply> = {
      chat_id: chat.id,
      workflow_name: chat.workflowName,
      cache_seed: chat.cacheSeed,
      status: chat.status as ChatStatus,
      last_index: chat.lastIndex,
      last_artifact: (chat.lastArtifact as Record<string, unknown> | null) ?? null,
      artifact_restore: { event_index: chat.artifactIndex ?? null, available: chat.lastArtifact !== null },
      pending_tool_calls: await s.toolCalls.awaitingIds(chat.id),
    };
    res.json(reply);
  });
}

function isService(given: string | undefined, expected: string): boolean {
  if (!given) return false;
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

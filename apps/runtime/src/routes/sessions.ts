import { RecentSessionReply, SessionsParams, SessionsReply, type RouteSpec } from '@tessera/contracts';
import { assertOwner } from '@tessera/kit';
import type { z } from 'zod';
import type { RuntimeRoutes, RuntimeServices } from '../services';

const recentChat = {
  method: 'get',
  path: '/api/sessions/recent/{app_id}/{user_id}',
  access: 'owner',
  summary: 'The most recently updated in-progress chat (found: false when none)',
  tags: ['sessions'],
  params: SessionsParams,
  responses: { 200: { description: 'recent chat', schema: RecentSessionReply } },
} as const satisfies RouteSpec;
const userChats = {
  method: 'get',
  path: '/api/sessions/{app_id}/{user_id}',
  access: 'owner',
  summary: "The user's chats, most recently updated first",
  tags: ['sessions'],
  params: SessionsParams,
  responses: { 200: { description: 'chats', schema: SessionsReply } },
} as const satisfies RouteSpec;

export const sessionRoutes: RouteSpec[] = [userChats, recentChat];

/** The owner is the token's subject, in an app the token allows (the user's chats are theirs alone). */
export function sessionsRoutes(routes: RuntimeRoutes, s: RuntimeServices): void {
  // `recent` first: `/api/sessions/{app_id}/{user_id}` would read it as an app id.
  routes.route(recentChat, async ({ params: p }, req, res) => {
    assertOwner(req.principal, p.user_id, p.app_id);
    const chat = await s.chats.recent(p.app_id, p.user_id);
    const reply: z.infer<typeof RecentSessionReply> = chat
      ? { found: true, chat_id: chat.id, workflow_name: chat.workflowName }
      : { found: false, chat_id: null, workflow_name: null };
    res.json(reply);
  });
  routes.route(userChats, async ({ params: p }, req, res) => {
    assertOwner(req.principal, p.user_id, p.app_id);
    res.json(await s.chats.listForUser(p.app_id, p.user_id));
  });
}

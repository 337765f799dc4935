import { Router } from 'express';
import { RecentSessionReply, SessionsParams, SessionsReply, type RouteSpec } from '@tessera/contracts';
import { assertOwner, parseOr400 } from '@tessera/kit';
import type { z } from 'zod';
import type { RuntimeServices } from '../services';

export const sessionRoutes: RouteSpec[] = [
  { method: 'get', path: '/api/sessions/{app_id}/{user_id}', access: 'owner', summary: "The user's chats, most recently updated first", tags: ['sessions'], params: SessionsParams, responses: { 200: { description: 'chats', schema: SessionsReply } } },
  {
    method: 'get',
    path: '/api/sessions/recent/{app_id}/{user_id}',
    access: 'owner',
    summary: 'The most recently updated in-progress chat (found: false when none)',
    tags: ['sessions'],
    params: SessionsParams,
    responses: { 200: { description: 'recent chat', schema: RecentSessionReply } },
  },
];

export function sessionsRouter(s: RuntimeServices): Router {
  const r = Router();
  r.get('/api/sessions/recent/:app_id/:user_id', async (req, res) => {
    const p = parseOr400(SessionsParams, req.params, 'path');
    assertOwner(req.principal, p.user_id, p.app_id);
    const chat = await s.chats.recent(p.app_id, p.user_id);
    const reply: z.infer<typeof RecentSessionReply> = chat
      ? { found: true, chat_id: chat.id, workflow_name: chat.workflowName }
      : { found: false, chat_id: null, workflow_name: null };
    res.json(reply);
  });
  r.get('/api/sessions/:app_id/:user_id', async (req, res) => {
    const p = parseOr400(SessionsParams, req.params, 'path');
    assertOwner(req.principal, p.user_id, p.app_id);
    res.json(await s.chats.listForUser(p.app_id, p.user_id));
  });
  return r;
}

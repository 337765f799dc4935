import { agents, type RouteSpec } from '@tessera/contracts';
import { agentWorkflowName } from '../blueprints/agent-workflows';
import type { RuntimeRoutes, RuntimeServices } from '../services';

const LIMIT = 100;

const activeChats = {
  method: 'get',
  path: '/api/internal/blueprints/{name}/active-chats',
  summary: "An app's open chats whose workflow has an agent on this blueprint (service key only; the agent manager asks before a delete or deactivation, for the blueprint's app)",
  tags: ['internal'],
  access: 'service',
  params: agents.AgentParams,
  query: agents.ActiveChatsQuery,
  responses: { 200: { description: 'the newest open chats', schema: agents.ActiveChatsReply }, 401: { description: 'no or a wrong service key' } },
} as const satisfies RouteSpec;

export const blueprintRoutes: RouteSpec[] = [activeChats];

/** Not routed by the gateway, and the service key besides: only another Tessera service asks this. */
export function blueprintsRoutes(routes: RuntimeRoutes, s: RuntimeServices): void {
  // A blueprint is an app's: only that app's chats run it.
  routes.route(activeChats, async ({ params: { name }, query: { app_id } }, _req, res) => {
    // The files' workflows with an agent on it, and the chat with the agent itself.
    const workflows = [...[...s.workflows.values()].filter((w) => w.agents.some((a) => a.blueprint === name)).map((w) => w.name), agentWorkflowName(name)];
    const reply: agents.ActiveChatsReply = { blueprint: name, workflows, chats: [], total: 0 };
    // Open chats run the blueprint on their next turn, whether one runs now or the user is typing.
    const rows = await s.db.pool.query<{ id: string; app_id: string; workflow_name: string; status: string; updated_at: Date; total: string }>({
      name: 'blueprint-active-chats-of-app',
      text: `SELECT id, app_id, workflow_name, status, updated_at, count(*) OVER () AS total FROM chats
             WHERE app_id = $2 AND workflow_name = ANY($1) AND status IN ('created', 'in_progress', 'awaiting_input')
             ORDER BY updated_at DESC LIMIT ${LIMIT}`,
      values: [workflows, app_id],
    });
    reply.chats = rows.rows.map((c) => ({ chat_id: c.id, app_id: c.app_id, workflow_name: c.workflow_name, status: c.status, updated_at: c.updated_at.toISOString() }));
    reply.total = Number(rows.rows[0]?.total ?? 0);
    res.json(reply);
  });
}

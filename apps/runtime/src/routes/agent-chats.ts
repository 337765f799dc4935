import { AgentChatsParams, AgentChatsReply, type RouteSpec } from '@tessera/contracts';
import { canUseApp, Forbidden, Unavailable } from '@tessera/kit';
import { agentWorkflowName } from '../blueprints/agent-workflows';
import { BlueprintRefusal } from '../engine/run-turn';
import type { RuntimeRoutes, RuntimeServices } from '../services';
import type { z } from 'zod';

const listAgentChats = {
  method: 'get',
  path: '/api/chats/{app_id}/agents',
  access: 'user',
  summary: "The app's active agents a user can chat with, each with the workflow name that starts the chat",
  description:
    "Tessera: a chat with an agent of the agent manager is a chat of the workflow `agent.<name>` (one agent, on the app's blueprint `<name>`): start it with `POST /api/chats/{app_id}/agent.<name>/start` or the broker's `POST /api/mozaiks/session`, open its `websocket_url`, resume it, as for any workflow. `GET /api/workflows` lists the workflow files, the same for every app; which agents exist is each app's. An inactive agent is not listed, and its chat does not start (409).",
  tags: ['chats'],
  params: AgentChatsParams,
  responses: {
    200: { description: "the app's active agents, by name", schema: AgentChatsReply },
    403: { description: 'the token does not allow the app' },
    503: { description: 'the agent manager did not answer' },
  },
} as const satisfies RouteSpec;

export const agentChatRoutes: RouteSpec[] = [listAgentChats];

export function agentChatsRoutes(routes: RuntimeRoutes, s: RuntimeServices): void {
  routes.route(listAgentChats, async ({ params: { app_id } }, req, res) => {
    if (req.principal && !req.principal.anonymous && !canUseApp(req.principal, app_id)) throw new Forbidden(`token does not allow app "${app_id}"`);
    let all: Awaited<ReturnType<NonNullable<RuntimeServices['blueprints']>['list']>>;
    try {
      all = s.blueprints ? await s.blueprints.list(app_id) : [];
    } catch (e) {
      if (e instanceof BlueprintRefusal) throw new Unavailable(e.message);
      throw e;
    }
    const reply: z.infer<typeof AgentChatsReply> = {
      agents: all
        .filter((a) => a.status === 'active')
        .sort((a, b) => a.name.localeCompare(b.name))
        .map((a) => ({ name: a.name, description: a.description, workflow_name: agentWorkflowName(a.name) })),
    };
    res.json(reply);
  });
}

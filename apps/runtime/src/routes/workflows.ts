import { PathId, TransportReply, WorkflowsReply, type RouteSpec } from '@tessera/contracts';
import { NotFound } from '@tessera/kit';
import { z } from 'zod';
import { summarizeWorkflow } from '../engine/workflows';
import type { RuntimeRoutes, RuntimeServices } from '../services';

const listWorkflows = {
  method: 'get',
  path: '/api/workflows',
  summary: 'Workflow config map keyed by workflow_name',
  tags: ['workflows'],
  access: 'public',
  responses: { 200: { description: 'workflows', schema: WorkflowsReply } },
} as const satisfies RouteSpec;
const transport = {
  method: 'get',
  path: '/api/workflows/{workflow_name}/transport',
  summary: 'WebSocket and input route patterns of a workflow',
  tags: ['workflows'],
  access: 'public',
  params: z.object({ workflow_name: PathId }),
  responses: { 200: { description: 'transport', schema: TransportReply } },
} as const satisfies RouteSpec;

export const workflowRoutes: RouteSpec[] = [listWorkflows, transport];

export function workflowsRoutes(routes: RuntimeRoutes, s: RuntimeServices): void {
  routes.route(listWorkflows, (_input, _req, res) => {
    res.json(Object.fromEntries([...s.workflows.values()].map((w) => [w.name, summarizeWorkflow(w)])));
  });
  routes.route(transport, ({ params: { workflow_name } }, _req, res) => {
    const wf = s.workflows.get(workflow_name);
    if (!wf) throw new NotFound(`no workflow named "${workflow_name}"`);
    const body: z.infer<typeof TransportReply> = {
      workflow_name: wf.name,
      transport: 'websocket',
      websocket_path: `/ws/${wf.name}/{app_id}/{chat_id}/{user_id}`,
      input_path: '/chat/{app_id}/{chat_id}/{user_id}/input',
      tool_response_path: '/api/tool-call/respond',
      upload_path: '/api/chat/upload',
      auth: { http: 'bearer', websocket: 'access_token query parameter' },
    };
    res.json(body);
  });
}

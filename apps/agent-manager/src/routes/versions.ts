import { agents } from '@tessera/contracts';
import { z } from 'zod';
import type { AgentManagerRoutes, AgentManagerServices } from '../services';

const HistoryQuery = z.object({
  limit: z.coerce.number().int().min(1).max(1000).default(100),
  before: z.coerce.number().int().min(1).optional().describe('Versions older than this one (the next page)'),
});

export function versionRoutes(routes: AgentManagerRoutes, s: AgentManagerServices): void {
  const store = (app: string | undefined) => s.stores.of(app!);

  routes.route(
    {
      method: 'get',
      path: '/agents/{name}/versions',
      summary: "Every state the app's agent has been in, newest first (also after a delete): what prompt a past session ran with",
      tags: ['agents'],
      access: 'user',
      params: agents.AgentParams,
      query: HistoryQuery.extend(agents.AppQuery.shape),
      responses: { 200: { description: 'versions', schema: agents.VersionsReply }, 404: { description: 'no agent and no history by that name' } },
    },
    async ({ params: { name }, query }, req, res) => {
      const reply: z.infer<typeof agents.VersionsReply> = { name, versions: await store(req.agentApp).history(name, query.limit, query.before) };
      res.json(reply);
    },
  );

  routes.route(
    {
      method: 'get',
      path: '/agents/{name}/versions/{version}',
      summary: 'One version',
      tags: ['agents'],
      access: 'user',
      params: agents.VersionParams,
      query: agents.AppQuery,
      responses: { 200: { description: 'the version', schema: agents.AgentVersion }, 404: { description: 'no such version' } },
    },
    async ({ params: { name, version } }, req, res) => {
      const reply: z.infer<typeof agents.AgentVersion> = await store(req.agentApp).version(name, version);
      res.json(reply);
    },
  );

  routes.route(
    {
      method: 'post',
      path: '/agents/{name}/versions/{version}/restore',
      summary: "Roll back: the version's description, prompt, MCP servers and skills become a new version (the status stays)",
      tags: ['agents'],
      access: 'operator',
      params: agents.VersionParams,
      query: agents.AppQuery,
      responses: { 200: { description: 'the agent as it now is', schema: agents.Agent }, 403: { description: 'not an operator' }, 404: { description: 'no such version' }, 409: { description: 'the version is a deletion' } },
    },
    async ({ params: { name, version } }, req, res) => {
      res.json(await store(req.agentApp).restore(name, version));
    },
  );
}

import { agents } from '@tessera/contracts';
import { z } from 'zod';
import type { AgentManagerRoutes, AgentManagerServices } from '../services';

/** Every route acts in one app (domain/access.ts): the token's, or the one it names. */
const inApp = { query: agents.AppQuery };
const named = { params: agents.AgentParams };
const refusals = {
  400: { description: 'the token allows several apps and names none (?app_id= or x-tessera-app), or a field is invalid (named)' },
  401: { description: 'no valid token' },
  403: { description: "not an operator, or the named app is not the token's" },
};
const missing = { 404: { description: "no agent by that name in the app (another app's agent is not found either)" } };
const inUse = { 409: { description: 'running sessions use the agent (named in the error); ?force=true skips the check' }, 503: { description: 'the runtime or observability could not say which sessions use it' } };

export function agentRoutes(routes: AgentManagerRoutes, s: AgentManagerServices): void {
  const store = (app: string | undefined) => s.stores.of(app!);

  routes.route(
    { method: 'get', path: '/agents', summary: 'Every agent blueprint of the app, by name', tags: ['agents'], access: 'user', ...inApp, responses: { 200: { description: 'agents', schema: agents.AgentsReply }, 401: refusals[401] } },
    async (_input, req, res) => {
      const reply: z.infer<typeof agents.AgentsReply> = await store(req.agentApp).list();
      res.json(reply);
    },
  );

  routes.route(
    { method: 'get', path: '/agents/{name}', summary: 'One agent blueprint of the app', tags: ['agents'], access: 'user', ...named, ...inApp, responses: { 200: { description: 'the agent', schema: agents.Agent }, 401: refusals[401], ...missing } },
    async ({ params: { name } }, req, res) => {
      res.json(await store(req.agentApp).get(name));
    },
  );

  routes.route(
    {
      method: 'post',
      path: '/agents',
      summary: 'Create an agent blueprint (active) in the app',
      description:
        "Document 001 §2. The name is unique in the app, letters, digits and hyphens; a description and a system prompt are required. Stored as the command-line tools' files (`agent.json`, `agent.system-prompt.md`, `agent.mcp.json`, `agent.status.json`) and kept as version 1.",
      tags: ['agents'],
      access: 'operator',
      ...inApp,
      body: agents.CreateAgentBody,
      examples: {
        document001: {
          summary: "Document 001's example",
          value: { name: 'new-agent', description: 'Agent description', system_prompt: 'System prompt markdown...', mcp_servers: ['github'], skills: ['pdf'] },
        },
        withServerDefinition: {
          summary: 'An MCP server defined with the agent',
          value: {
            name: 'code-reviewer',
            description: 'Reviews code and suggests improvements',
            system_prompt: 'You are a code reviewer. Point out bugs first, style last.',
            mcp_servers: [{ name: 'filesystem', command: 'npx', args: ['-y', '@modelcontextprotocol/server-filesystem', '.'] }],
          },
        },
      },
      responses: { 201: { description: 'created', schema: agents.Agent }, ...refusals, 409: { description: 'the name is taken in the app' } },
    },
    async ({ body }, req, res) => {
      res.status(201).json(await store(req.agentApp).create(body));
    },
  );

  routes.route(
    {
      method: 'patch',
      path: '/agents/{name}',
      summary: 'Change some fields of an agent blueprint',
      description: 'Document 001 §2: a partial update; only the fields given change, and the change is kept as a new version.',
      tags: ['agents'],
      access: 'operator',
      ...named,
      ...inApp,
      body: agents.UpdateAgentBody,
      examples: { document001: { summary: "Document 001's example", value: { description: 'Updated description', system_prompt: 'Updated prompt...' } } },
      responses: { 200: { description: 'the whole agent as it now is', schema: agents.Agent }, ...refusals, ...missing },
    },
    async ({ params: { name }, body }, req, res) => {
      res.json(await store(req.agentApp).update(name, body));
    },
  );

  routes.route(
    {
      method: 'delete',
      path: '/agents/{name}',
      summary: 'Delete an agent blueprint (its history stays)',
      description: 'Document 001 §2: refused (409) while running sessions use the agent, unless `?force=true`.',
      tags: ['agents'],
      access: 'operator',
      ...named,
      query: agents.ForceQuery.extend(agents.AppQuery.shape),
      responses: { 200: { description: 'deleted', schema: agents.DeleteAgentReply }, ...refusals, ...missing, ...inUse },
    },
    async ({ params: { name }, query: { force } }, req, res) => {
      const app = req.agentApp!;
      await store(app).delete(name, () => (force ? Promise.resolve() : s.sessions.assertNone(app, name, 'deleted', req.header('authorization'))));
      const reply: z.infer<typeof agents.DeleteAgentReply> = { success: true, message: 'Agent deleted successfully' };
      res.json(reply);
    },
  );

  routes.route(
    {
      method: 'patch',
      path: '/agents/{name}/status',
      summary: 'Activate or deactivate an agent blueprint (an inactive one refuses new turns)',
      description: 'Document 001 §2, stored in `agent.status.json`. Deactivating is refused (409) while running sessions use the agent, unless `?force=true`.',
      tags: ['agents'],
      access: 'operator',
      ...named,
      query: agents.ForceQuery.extend(agents.AppQuery.shape),
      body: agents.StatusBody,
      examples: { deactivate: { summary: 'Deactivate', value: { status: 'inactive' } } },
      responses: { 200: { description: 'the whole agent as it now is', schema: agents.Agent }, ...refusals, ...missing, ...inUse },
    },
    async ({ params: { name }, query: { force }, body: { status } }, req, res) => {
      const app = req.agentApp!;
      const current = await store(app).get(name);
      if (status === 'inactive' && current.status === 'active' && !force) await s.sessions.assertNone(app, name, 'deactivated', req.header('authorization'));
      res.json(await store(app).setStatus(name, status));
    },
  );
}

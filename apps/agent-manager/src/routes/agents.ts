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
      tags: ['agents'],
      access: 'operator',
      ...inApp,
      body: agents.CreateAgentBody,
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
      tags: ['agents'],
      access: 'operator',
      ...named,
      ...inApp,
      body: agents.UpdateAgentBody,
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
      tags: ['agents'],
      access: 'operator',
      ...named,
      query: agents.ForceQuery.extend(agents.AppQuery.shape),
      body: agents.StatusBody,
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

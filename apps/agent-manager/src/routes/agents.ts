import { Router, type Request } from 'express';
import { agents, type RouteSpec } from '@tessera/contracts';
import { parseOr400 } from '@tessera/kit';
import { z } from 'zod';
import type { AgentManagerServices } from '../services';

const named = { params: agents.AgentParams };
/** Every route acts in one app (domain/access.ts): the token's, or the one it names. */
const inApp = { query: agents.AppQuery };
const refusals = {
  400: { description: 'the token allows several apps and names none (?app_id= or x-tessera-app), or a field is invalid (named)' },
  401: { description: 'no valid token' },
  403: { description: 'not an operator, or the named app is not the token\'s' },
};
const missing = { 404: { description: "no agent by that name in the app (another app's agent is not found either)" } };
const inUse = { 409: { description: 'running sessions use the agent (named in the error); ?force=true skips the check' }, 503: { description: 'the runtime or observability could not say which sessions use it' } };

export const agentRoutes: RouteSpec[] = [
  { method: 'get', path: '/agents', summary: "Every agent blueprint of the app, by name", tags: ['agents'], ...inApp, responses: { 200: { description: 'agents', schema: agents.AgentsReply }, 401: refusals[401] } },
  { method: 'get', path: '/agents/{name}', summary: 'One agent blueprint of the app', tags: ['agents'], ...named, ...inApp, responses: { 200: { description: 'the agent', schema: agents.Agent }, 401: refusals[401], ...missing } },
  {
    method: 'post',
    path: '/agents',
    summary: 'Create an agent blueprint (active) in the app',
    tags: ['agents'],
    ...inApp,
    body: agents.CreateAgentBody,
    responses: { 201: { description: 'created', schema: agents.Agent }, ...refusals, 409: { description: 'the name is taken in the app' } },
  },
  {
    method: 'patch',
    path: '/agents/{name}',
    summary: 'Change some fields of an agent blueprint',
    tags: ['agents'],
    ...named,
    ...inApp,
    body: agents.UpdateAgentBody,
    responses: { 200: { description: 'the whole agent as it now is', schema: agents.Agent }, ...refusals, ...missing },
  },
  {
    method: 'delete',
    path: '/agents/{name}',
    summary: 'Delete an agent blueprint (its history stays)',
    tags: ['agents'],
    ...named,
    query: agents.ForceQuery.extend(agents.AppQuery.shape),
    responses: { 200: { description: 'deleted', schema: agents.DeleteAgentReply }, ...refusals, ...missing, ...inUse },
  },
  {
    method: 'patch',
    path: '/agents/{name}/status',
    summary: 'Activate or deactivate an agent blueprint (an inactive one refuses new turns)',
    tags: ['agents'],
    ...named,
    query: agents.ForceQuery.extend(agents.AppQuery.shape),
    body: agents.StatusBody,
    responses: { 200: { description: 'the whole agent as it now is', schema: agents.Agent }, ...refusals, ...missing, ...inUse },
  },
];

export function agentsRouter(s: AgentManagerServices): Router {
  const r = Router();
  const { reader, operator } = s.access;
  const store = (req: Request) => s.stores.of(req.agentApp!);

  r.get('/agents', reader, async (req, res) => {
    const reply: z.infer<typeof agents.AgentsReply> = await store(req).list();
    res.json(reply);
  });

  r.get('/agents/:name', reader, async (req, res) => {
    const { name } = parseOr400(agents.AgentParams, req.params, 'path');
    res.json(await store(req).get(name));
  });

  r.post('/agents', operator, async (req, res) => {
    const body = parseOr400(agents.CreateAgentBody, req.body ?? {}, 'body');
    res.status(201).json(await store(req).create(body));
  });

  r.patch('/agents/:name', operator, async (req, res) => {
    const { name } = parseOr400(agents.AgentParams, req.params, 'path');
    const body = parseOr400(agents.UpdateAgentBody, req.body ?? {}, 'body');
    res.json(await store(req).update(name, body));
  });

  r.delete('/agents/:name', operator, async (req, res) => {
    const { name } = parseOr400(agents.AgentParams, req.params, 'path');
    const { force } = parseOr400(agents.ForceQuery, req.query, 'query');
    const app = req.agentApp!;
    await store(req).delete(name, () => (force ? Promise.resolve() : s.sessions.assertNone(app, name, 'deleted', req.header('authorization'))));
    const reply: z.infer<typeof agents.DeleteAgentReply> = { success: true, message: 'Agent deleted successfully' };
    res.json(reply);
  });

  r.patch('/agents/:name/status', operator, async (req, res) => {
    const { name } = parseOr400(agents.AgentParams, req.params, 'path');
    const { force } = parseOr400(agents.ForceQuery, req.query, 'query');
    const { status } = parseOr400(agents.StatusBody, req.body ?? {}, 'body');
    const current = await store(req).get(name);
    if (status === 'inactive' && current.status === 'active' && !force) await s.sessions.assertNone(req.agentApp!, name, 'deactivated', req.header('authorization'));
    res.json(await store(req).setStatus(name, status));
  });
  return r;
}

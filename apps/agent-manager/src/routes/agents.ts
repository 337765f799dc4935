import { Router } from 'express';
import { agents, type RouteSpec } from '@tessera/contracts';
import { parseOr400 } from '@tessera/kit';
import { z } from 'zod';
import type { AgentManagerServices } from '../services';

const named = { params: agents.AgentParams };
const refusals = { 401: { description: 'no valid token' }, 403: { description: 'not an operator' } };
const missing = { 404: { description: 'no agent by that name' } };
const inUse = { 409: { description: 'running sessions use the agent (named in the error); ?force=true skips the check' }, 503: { description: 'the runtime or observability could not say which sessions use it' } };

export const agentRoutes: RouteSpec[] = [
  { method: 'get', path: '/agents', summary: 'Every agent blueprint, by name', tags: ['agents'], responses: { 200: { description: 'agents', schema: agents.AgentsReply }, 401: refusals[401] } },
  { method: 'get', path: '/agents/{name}', summary: 'One agent blueprint', tags: ['agents'], ...named, responses: { 200: { description: 'the agent', schema: agents.Agent }, 401: refusals[401], ...missing } },
  {
    method: 'post',
    path: '/agents',
    summary: 'Create an agent blueprint (active)',
    tags: ['agents'],
    body: agents.CreateAgentBody,
    responses: { 201: { description: 'created', schema: agents.Agent }, 400: { description: 'a field is invalid (named)' }, ...refusals, 409: { description: 'the name is taken' } },
  },
  {
    method: 'patch',
    path: '/agents/{name}',
    summary: 'Change some fields of an agent blueprint',
    tags: ['agents'],
    ...named,
    body: agents.UpdateAgentBody,
    responses: { 200: { description: 'the whole agent as it now is', schema: agents.Agent }, ...refusals, ...missing },
  },
  {
    method: 'delete',
    path: '/agents/{name}',
    summary: 'Delete an agent blueprint (its history stays)',
    tags: ['agents'],
    ...named,
    query: agents.ForceQuery,
    responses: { 200: { description: 'deleted', schema: agents.DeleteAgentReply }, ...refusals, ...missing, ...inUse },
  },
  {
    method: 'patch',
    path: '/agents/{name}/status',
    summary: 'Activate or deactivate an agent blueprint (an inactive one refuses new turns)',
    tags: ['agents'],
    ...named,
    query: agents.ForceQuery,
    body: agents.StatusBody,
    responses: { 200: { description: 'the whole agent as it now is', schema: agents.Agent }, ...refusals, ...missing, ...inUse },
  },
];

export function agentsRouter(s: AgentManagerServices): Router {
  const r = Router();
  const { reader, operator } = s.access;

  r.get('/agents', reader, async (_req, res) => {
    const reply: z.infer<typeof agents.AgentsReply> = await s.store.list();
    res.json(reply);
  });

  r.get('/agents/:name', reader, async (req, res) => {
    const { name } = parseOr400(agents.AgentParams, req.params, 'path');
    res.json(await s.store.get(name));
  });

  r.post('/agents', operator, async (req, res) => {
    const body = parseOr400(agents.CreateAgentBody, req.body ?? {}, 'body');
    res.status(201).json(await s.store.create(body));
  });

  r.patch('/agents/:name', operator, async (req, res) => {
    const { name } = parseOr400(agents.AgentParams, req.params, 'path');
    const body = parseOr400(agents.UpdateAgentBody, req.body ?? {}, 'body');
    res.json(await s.store.update(name, body));
  });

  r.delete('/agents/:name', operator, async (req, res) => {
    const { name } = parseOr400(agents.AgentParams, req.params, 'path');
    const { force } = parseOr400(agents.ForceQuery, req.query, 'query');
    await s.store.delete(name, () => (force ? Promise.resolve() : s.sessions.assertNone(name, 'deleted', req.header('authorization'))));
    const reply: z.infer<typeof agents.DeleteAgentReply> = { success: true, message: 'Agent deleted successfully' };
    res.json(reply);
  });

  r.patch('/agents/:name/status', operator, async (req, res) => {
    const { name } = parseOr400(agents.AgentParams, req.params, 'path');
    const { force } = parseOr400(agents.ForceQuery, req.query, 'query');
    const { status } = parseOr400(agents.StatusBody, req.body ?? {}, 'body');
    const current = await s.store.get(name);
    if (status === 'inactive' && current.status === 'active' && !force) await s.sessions.assertNone(name, 'deactivated', req.header('authorization'));
    res.json(await s.store.setStatus(name, status));
  });
  return r;
}

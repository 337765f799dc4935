import { Router } from 'express';
import { agents, type RouteSpec } from '@tessera/contracts';
import { parseOr400 } from '@tessera/kit';
import { z } from 'zod';
import type { AgentManagerServices } from '../services';

const HistoryQuery = z.object({
  limit: z.coerce.number().int().min(1).max(1000).default(100),
  before: z.coerce.number().int().min(1).optional().describe('Versions older than this one (the next page)'),
});

export const versionRoutes: RouteSpec[] = [
  {
    method: 'get',
    path: '/agents/{name}/versions',
    summary: 'Every state the app\'s agent has been in, newest first (also after a delete): what prompt a past session ran with',
    tags: ['agents'],
    params: agents.AgentParams,
    query: HistoryQuery.extend(agents.AppQuery.shape),
    responses: { 200: { description: 'versions', schema: agents.VersionsReply }, 404: { description: 'no agent and no history by that name' } },
  },
  {
    method: 'get',
    path: '/agents/{name}/versions/{version}',
    summary: 'One version',
    tags: ['agents'],
    params: agents.VersionParams,
    query: agents.AppQuery,
    responses: { 200: { description: 'the version', schema: agents.AgentVersion }, 404: { description: 'no such version' } },
  },
  {
    method: 'post',
    path: '/agents/{name}/versions/{version}/restore',
    summary: "Roll back: the version's description, prompt, MCP servers and skills become a new version (the status stays)",
    tags: ['agents'],
    params: agents.VersionParams,
    query: agents.AppQuery,
    responses: { 200: { description: 'the agent as it now is', schema: agents.Agent }, 403: { description: 'not an operator' }, 404: { description: 'no such version' }, 409: { description: 'the version is a deletion' } },
  },
];

export function versionsRouter(s: AgentManagerServices): Router {
  const r = Router();
  const { reader, operator } = s.access;

  r.get('/agents/:name/versions', reader, async (req, res) => {
    const { name } = parseOr400(agents.AgentParams, req.params, 'path');
    const q = parseOr400(HistoryQuery, req.query, 'query');
    const reply: z.infer<typeof agents.VersionsReply> = { name, versions: await s.stores.of(req.agentApp!).history(name, q.limit, q.before) };
    res.json(reply);
  });

  r.get('/agents/:name/versions/:version', reader, async (req, res) => {
    const { name, version } = parseOr400(agents.VersionParams, req.params, 'path');
    const reply: z.infer<typeof agents.AgentVersion> = await s.stores.of(req.agentApp!).version(name, version);
    res.json(reply);
  });

  r.post('/agents/:name/versions/:version/restore', operator, async (req, res) => {
    const { name, version } = parseOr400(agents.VersionParams, req.params, 'path');
    res.json(await s.stores.of(req.agentApp!).restore(name, version));
  });
  return r;
}

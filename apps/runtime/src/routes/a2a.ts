import { AgentCard, type AgentSkill } from '@a2a-js/sdk';
import { defaultServerCallContextBuilder, JsonRpcTransportHandler, validateVersion, type User } from '@a2a-js/sdk/server';
import { SSE_HEADERS, formatSSEErrorEvent, formatSSEEvent } from '@a2a-js/sdk';
import { AppId, WorkflowName, type RouteSpec } from '@tessera/contracts';
import { assertOwner, closeSignal, NotFound, sseKeepAlive, type Principal } from '@tessera/kit';
import type { Request } from 'express';
import { z } from 'zod';
import { ChatTaskHandler } from '../a2a/handler';
import type { LoadedWorkflow } from '../engine/types';
import type { RuntimeRoutes, RuntimeServices } from '../services';

/** The A2A protocol version @a2a-js/sdk 1.x implements (method names SendMessage, GetTask, …). */
export const A2A_PROTOCOL_VERSION = '1.0';
export const A2A_PATH = '/api/a2a/{app_id}/{workflow_name}';

const card = {
  method: 'get',
  path: `${A2A_PATH}/.well-known/agent-card.json`,
  access: 'user',
  summary: "A workflow's A2A Agent Card: its JSON-RPC endpoint, skills and security scheme",
  description:
    "The Agent Card (A2A 1.0) of one workflow in one app: `supportedInterfaces` names the JSON-RPC endpoint (`POST /api/a2a/{app_id}/{workflow_name}`), the one skill is the workflow. The platform's bearer token is required (the card says so in `securitySchemes`); another app's card is a 404.",
  tags: ['a2a'],
  params: z.object({ app_id: AppId, workflow_name: WorkflowName }),
  responses: { 200: { description: 'the Agent Card (JSON)' }, 404: { description: 'no such workflow (or not your app)' } },
} as const satisfies RouteSpec;

const appCard = {
  method: 'get',
  path: '/api/a2a/{app_id}/.well-known/agent-card.json',
  access: 'user',
  summary: "An app's A2A Agent Card: one skill per workflow",
  description:
    "The app's agents in one card: a skill per workflow (the list of `GET /api/workflows`); each skill's own card and endpoint is `/api/a2a/{app_id}/{workflow_name}` (`supportedInterfaces` names the first workflow's). Another app's card is a 404.",
  tags: ['a2a'],
  params: z.object({ app_id: AppId }),
  responses: { 200: { description: 'the Agent Card (JSON)' }, 404: { description: 'no workflows (or not your app)' } },
} as const satisfies RouteSpec;

const rpc = {
  method: 'post',
  path: A2A_PATH,
  access: 'user',
  summary: 'A2A JSON-RPC: SendMessage, SendStreamingMessage, GetTask, CancelTask, SubscribeToTask',
  description:
    "A2A 1.0's JSON-RPC binding over Tessera chats: a task is a chat turn (its `contextId` is the chat id; a message without one starts a chat), the reply comes as artifact updates read from the chat's timeline, a UI tool awaiting an answer is `TASK_STATE_INPUT_REQUIRED` and the next message with the task's `taskId` answers it, CancelTask stops the chat. SubscribeToTask replays the task from its first event, on any instance: nothing is lost after a cut. Another user's task or context is `TaskNotFound`. Push notifications and ListTasks are not offered.",
  tags: ['a2a'],
  params: z.object({ app_id: AppId, workflow_name: WorkflowName }),
  body: z
    .object({
      jsonrpc: z.literal('2.0'),
      id: z.union([z.string().max(200), z.number(), z.null()]).optional(),
      method: z.string().max(100).describe('SendMessage, SendStreamingMessage, GetTask, CancelTask or SubscribeToTask'),
      params: z.record(z.string(), z.unknown()).optional(),
    })
    .loose(),
  responses: {
    200: { description: 'a JSON-RPC response, or for the streaming methods a text/event-stream of JSON-RPC responses (StreamResponse)' },
    400: { description: 'not a JSON-RPC request (the field is named)' },
    404: { description: 'no such workflow (or not your app)' },
  },
} as const satisfies RouteSpec;

export const a2aRoutes: RouteSpec[] = [appCard, card, rpc];

const bearer = {
  securitySchemes: {
    bearer: {
      scheme: {
        $case: 'httpAuthSecurityScheme' as const,
        value: { scheme: 'bearer', bearerFormat: 'JWT', description: "The platform's bearer token (the same as for every Tessera route)" },
      },
    },
  },
  securityRequirements: [{ schemes: { bearer: { list: [] } } }],
};

function skillOf(w: LoadedWorkflow): AgentSkill {
  return {
    id: w.name,
    name: w.name,
    description: w.description || `The ${w.name} workflow`,
    tags: ['workflow', ...w.agents.map((a) => a.name)],
    examples: [],
    inputModes: ['text/plain'],
    outputModes: ['text/plain'],
    securityRequirements: [],
  };
}

function cardOf(base: string, appId: string, name: string, description: string, skills: AgentSkill[], endpoint: string): AgentCard {
  return {
    name,
    description,
    supportedInterfaces: [{ url: `${base}/api/a2a/${encodeURIComponent(appId)}/${encodeURIComponent(endpoint)}`, protocolBinding: 'JSONRPC', tenant: '', protocolVersion: A2A_PROTOCOL_VERSION }],
    provider: undefined,
    version: '0.1.0',
    capabilities: { streaming: true, pushNotifications: false, extensions: [], extendedAgentCard: false },
    ...bearer,
    defaultInputModes: ['text/plain'],
    defaultOutputModes: ['text/plain'],
    skills,
    signatures: [],
  };
}

/** Where the caller reached us: the gateway's public scheme and host (X-Forwarded-*, trusted by the kit). */
const baseOf = (req: Request) => `${req.protocol}://${req.get('x-forwarded-host') ?? req.get('host')}`;

export function a2aRoutesOf(routes: RuntimeRoutes, s: RuntimeServices): void {
  const workflowCard = (req: Request, appId: string, workflowName: string): AgentCard => {
    const principal = req.principal as Principal;
    assertOwner(principal, principal.sub, appId);
    const w = s.workflows.get(workflowName);
    if (!w) throw new NotFound(`no workflow named "${workflowName}"`);
    return cardOf(baseOf(req), appId, w.name, w.description || `The ${w.name} workflow of ${appId}`, [skillOf(w)], w.name);
  };

  routes.route(appCard, ({ params }, req, res) => {
    const principal = req.principal as Principal;
    assertOwner(principal, principal.sub, params.app_id);
    const all = [...s.workflows.values()];
    if (!all.length) throw new NotFound('no workflows');
    res.json(AgentCard.toJSON(cardOf(baseOf(req), params.app_id, params.app_id, `The workflows of ${params.app_id}, one skill each`, all.map(skillOf), all[0].name)));
  });

  routes.route(card, ({ params }, req, res) => {
    res.json(AgentCard.toJSON(workflowCard(req, params.app_id, params.workflow_name)));
  });

  routes.route(rpc, async ({ params }, req, res) => {
    const agentCard = workflowCard(req, params.app_id, params.workflow_name);
    const principal = req.principal as Principal;
    const gone = closeSignal(res);
    const handler = new ChatTaskHandler(s, principal, params.app_id, params.workflow_name, agentCard, gone);
    const transport = new JsonRpcTransportHandler(handler);
    const user: User = { isAuthenticated: true, userName: principal.sub };
    const context = defaultServerCallContextBuilder({ extensions: undefined, user, headers: req.headers, requestedVersion: req.header('a2a-version') || undefined });
    const id = (req.body as { id?: unknown }).id ?? null;
    const failure = (e: unknown) => ({ jsonrpc: '2.0', id, error: JsonRpcTransportHandler.mapToJSONRPCError(e) });
    let out: Awaited<ReturnType<JsonRpcTransportHandler['handle']>>;
    try {
      validateVersion(context.requestedVersion, agentCard, 'JSONRPC');
      out = await transport.handle(req.body, context);
    } catch (e) {
      res.status(200).json(failure(e));
      return;
    }
    if (!(Symbol.asyncIterator in Object(out))) {
      res.status(200).json(out);
      return;
    }
    const iterator = (out as AsyncGenerator<unknown>)[Symbol.asyncIterator]();
    let first: IteratorResult<unknown>;
    try {
      first = await iterator.next(); // refusals (no such task) are a plain JSON-RPC error, before any stream
    } catch (e) {
      res.status(200).json(failure(e));
      return;
    }
    for (const [k, v] of Object.entries(SSE_HEADERS)) res.setHeader(k, v);
    res.setHeader('X-Accel-Buffering', 'no');
    res.flushHeaders();
    let closed = false;
    res.on('close', () => {
      closed = true;
      void iterator.return(undefined);
    });
    const release = sseKeepAlive(res, s.config.SSE_KEEP_ALIVE_MS);
    try {
      for (let r = first; !r.done && !closed; r = await iterator.next()) res.write(formatSSEEvent(r.value as never));
    } catch (e) {
      if (!closed) res.write(formatSSEErrorEvent(failure(e) as never));
    } finally {
      release();
      res.end();
    }
  });
}

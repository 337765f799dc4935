import { randomUUID } from 'node:crypto';
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { isInitializeRequest } from '@modelcontextprotocol/sdk/types.js';
import { AppId, type RouteSpec } from '@tessera/contracts';
import { assertOwner, BadRequest, HttpError, NotFound, Unavailable, type Principal } from '@tessera/kit';
import type { Request, RequestHandler, Response } from 'express';
import { z } from 'zod';
import type { RuntimeRoutes, RuntimeServices } from '../services';
import { SessionEventStore } from './events';
import { mcpServerFor } from './tools';

export const MCP_PATH = '/api/mcp/{app_id}';
/** RFC 9728 §3.1: the resource's path after the well-known name. */
export const MCP_METADATA_PATH = `/.well-known/oauth-protected-resource${MCP_PATH}`;
/** A session nobody used for this long is closed. */
const IDLE_MS = 30 * 60_000;
const MAX_SESSIONS = 1_000;

const params = z.object({ app_id: AppId });
const common = { path: MCP_PATH, access: 'user' as const, tags: ['mcp'], params };

const description =
  "MCP Streamable HTTP (revision 2025-11-25) over Tessera chats: each workflow is a tool; `tools/call` with `{message, chat_id?}` runs one turn of a chat of the token's user in the path's app and returns the reply " +
  '(progress notifications carry the streamed text when the request has a progressToken; `notifications/cancelled` stops the turn). ' +
  'Sessions (`Mcp-Session-Id`) live in the runtime instance that initialized them; a cut SSE stream resumes with GET and `Last-Event-ID`. ' +
  'Without a token: 401 with `WWW-Authenticate: Bearer resource_metadata=…` (RFC 9728). An Origin outside CORS_ORIGINS is a 403.';

const post = {
  ...common,
  method: 'post',
  summary: 'MCP: a JSON-RPC message from the client (initialize, tools/list, tools/call, notifications)',
  description,
  body: z
    .looseObject({
      jsonrpc: z.literal('2.0'),
      method: z.string().max(256).optional().describe('A request or notification: initialize, tools/list, tools/call, notifications/cancelled, …'),
      id: z.union([z.string().max(256), z.number()]).optional(),
    })
    .describe('One JSON-RPC message (the SDK checks the rest); send Accept: application/json, text/event-stream'),
  responses: {
    200: { description: 'the answer: application/json or a text/event-stream of JSON-RPC messages' },
    202: { description: 'a notification or response accepted' },
    400: { description: 'not a JSON-RPC message, or no session id where one is needed' },
    403: { description: 'Origin not allowed, or a token without this app' },
    404: { description: 'no such session (or not yours): initialize again' },
  },
} as const satisfies RouteSpec;

const get = {
  ...common,
  method: 'get',
  summary: 'MCP: the session’s SSE stream for server messages; with Last-Event-ID, resumes a cut stream',
  responses: {
    200: { description: 'text/event-stream of JSON-RPC messages' },
    400: { description: 'no session id, or a Last-Event-ID this session did not send' },
    404: { description: 'no such session (or not yours)' },
  },
} as const satisfies RouteSpec;

const del = {
  ...common,
  method: 'delete',
  summary: 'MCP: ends the session',
  responses: { 200: { description: 'session ended' }, 404: { description: 'no such session (or not yours)' } },
} as const satisfies RouteSpec;

const metadata = {
  method: 'get',
  path: MCP_METADATA_PATH,
  access: 'public',
  summary: 'OAuth 2.0 protected-resource metadata (RFC 9728) of the MCP endpoint',
  tags: ['mcp'],
  params,
  responses: {
    200: {
      description: 'the resource, the authorization servers whose tokens it takes, and how to send them',
      schema: z.object({ resource: z.string(), authorization_servers: z.array(z.string()).optional(), bearer_methods_supported: z.array(z.string()), resource_name: z.string() }),
    },
  },
} as const satisfies RouteSpec;

export const mcpRoutes: RouteSpec[] = [post, get, del, metadata];

interface Session {
  transport: StreamableHTTPServerTransport;
  server: McpServer;
  sub: string;
  appId: string;
  idle: NodeJS.Timeout;
}

/** The public base URL the request came to (the gateway's, through it). */
const baseOf = (req: Request) => `${req.protocol}://${req.host}`;
const resourceOf = (req: Request, appId: string) => `${baseOf(req)}${MCP_PATH.replace('{app_id}', encodeURIComponent(appId))}`;

/**
 * The 401 an OAuth resource server gives (MCP authorization, RFC 9728 §5.1): the challenge names
 * the protected-resource metadata. Goes before the routes; the routes' own guard checks the token.
 */
export function mcpChallenge(authn: RequestHandler): RequestHandler {
  return (req, res, next) => {
    // The path's app segment as sent (still percent-encoded): only one that can be an app id is named back.
    const m = /^\/api\/mcp\/([A-Za-z0-9._~%-]{1,200})\/?$/.exec(req.path);
    if (!m) return next();
    void authn(req, res, (err?: unknown) => {
      if (!(err instanceof HttpError) || err.status !== 401) return next(err as Error | undefined);
      const description = err.message.replace(/[^\x20-\x7e]|["\\]/g, '');
      const metadata = `${baseOf(req)}${MCP_METADATA_PATH.replace('{app_id}', m[1])}`;
      next(new HttpError(401, err.code, err.message, err.details, {
        // RFC 6750 §3: no error code when the request sent no token at all.
        'WWW-Authenticate': req.headers.authorization ? `Bearer resource_metadata="${metadata}", error="invalid_token", error_description="${description}"` : `Bearer resource_metadata="${metadata}"`,
      }));
    });
  };
}

export function mcpRoutesOf(routes: RuntimeRoutes, s: RuntimeServices): void {
  const sessions = new Map<string, Session>();

  /** The caller's session named by the request, if any; another user's or app's is no session at all. */
  function sessionOf(req: Request, principal: Principal, appId: string): Session | null | undefined {
    const id = req.header('mcp-session-id');
    if (id === undefined) return undefined;
    const found = sessions.get(id);
    if (!found || found.sub !== principal.sub || found.appId !== appId) return null;
    found.idle.refresh();
    return found;
  }

  async function handle(req: Request, res: Response, appId: string): Promise<void> {
    const principal = req.principal as Principal;
    assertOwner(principal, principal.sub, appId);
    const session = sessionOf(req, principal, appId);
    // The SDK client starts a new session on a 404.
    if (session === null) throw new NotFound('MCP session not found (ended, expired, held by another runtime instance, or not yours): initialize a new one');
    if (session) return session.transport.handleRequest(req, res, req.body);
    if (req.method !== 'POST' || !isInitializeRequest(req.body))
      throw new BadRequest('no Mcp-Session-Id header: the first request of an MCP session is a POSTed initialize');
    if (sessions.size >= MAX_SESSIONS) throw new Unavailable('too many MCP sessions on this instance; try again later');

    const server = mcpServerFor(s, principal, appId);
    const transport = new StreamableHTTPServerTransport({
      sessionIdGenerator: randomUUID,
      eventStore: new SessionEventStore(),
      enableDnsRebindingProtection: true,
      allowedOrigins: s.config.CORS_ORIGINS,
      onsessioninitialized: (id) => {
        const idle = setTimeout(() => void transport.close(), IDLE_MS);
        idle.unref();
        sessions.set(id, { transport, server, sub: principal.sub, appId, idle });
      },
      onsessionclosed: (id) => {
        const ended = sessions.get(id);
        if (ended) clearTimeout(ended.idle);
        sessions.delete(id);
      },
    });
    transport.onclose = () => {
      const id = transport.sessionId;
      if (id === undefined) return;
      const ended = sessions.get(id);
      if (ended) clearTimeout(ended.idle);
      sessions.delete(id);
    };
    await server.connect(transport);
    await transport.handleRequest(req, res, req.body);
  }

  routes.route(post, ({ params: p }, req, res) => handle(req, res, p.app_id));
  routes.route(get, ({ params: p }, req, res) => handle(req, res, p.app_id));
  routes.route(del, ({ params: p }, req, res) => handle(req, res, p.app_id));
  routes.route(metadata, ({ params: p }, req, res) => {
    res.json({
      resource: resourceOf(req, p.app_id),
      ...(s.config.JWT_ISSUER && { authorization_servers: [s.config.JWT_ISSUER] }),
      bearer_methods_supported: ['header'],
      resource_name: `Tessera workflows of app ${p.app_id} (MCP)`,
    });
  });
}

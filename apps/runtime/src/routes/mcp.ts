import { once } from 'node:events';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import {
  CancelledNotificationSchema,
  isInitializeRequest,
  isJSONRPCRequest,
  LATEST_PROTOCOL_VERSION,
  SUPPORTED_PROTOCOL_VERSIONS,
  type InitializeRequest,
  type RequestId,
} from '@modelcontextprotocol/sdk/types.js';
import { AppId, ErrorCode, type RouteSpec } from '@tessera/contracts';
import { assertOwner, BadRequest, closeSignal, Forbidden, HttpError, NotFound, Unavailable, type Principal } from '@tessera/kit';
import type { Request, RequestHandler, Response } from 'express';
import { z } from 'zod';
import { McpCalls } from '../mcp/calls';
import { eventsKeyOf, followStream, parseEventId, PostStreamLog, streamExists } from '../mcp/events';
import { MCP_IDLE_MS, MCP_SESSIONS_PER_USER, McpSessions } from '../mcp/sessions';
import { mcpServerFor, type CallScope } from '../mcp/tools';
import type { RuntimeRoutes, RuntimeServices } from '../services';

export const MCP_PATH = '/api/mcp/{app_id}';
/** RFC 9728 §3.1: the resource's path after the well-known name. */
export const MCP_METADATA_PATH = `/.well-known/oauth-protected-resource${MCP_PATH}`;
/** How long a client waits before it reconnects to a stream the server closed (SSE `retry`). */
const RETRY_MS = 1_000;
/** Resumed streams one instance follows at once (each holds a Redis connection while it waits). */
const MAX_RESUMING = 200;

const params = z.object({ app_id: AppId });
const common = { path: MCP_PATH, access: 'user' as const, tags: ['mcp'], params };

const description =
  "MCP Streamable HTTP (revision 2025-11-25) over Tessera chats: each workflow is a tool; `tools/call` with `{message, chat_id?}` runs one turn of a chat of the token's user in the path's app and returns the reply " +
  '(progress notifications carry the streamed text when the request has a progressToken; `notifications/cancelled` stops the turn). ' +
  `A session (\`Mcp-Session-Id\`, kept in Redis, ended after ${MCP_IDLE_MS / 60_000} idle minutes, at most ${MCP_SESSIONS_PER_USER} per user) is served by any runtime instance; a cut SSE stream resumes on any instance with GET and \`Last-Event-ID\`. ` +
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
  const sessions = new McpSessions(s.redis, s.config.BULL_PREFIX);
  const calls = new McpCalls(s.redis, s.feed, s.config.BULL_PREFIX);
  const origins = s.config.CORS_ORIGINS;
  let resuming = 0;

  async function handle(req: Request, res: Response, appId: string): Promise<void> {
    const principal = req.principal as Principal;
    assertOwner(principal, principal.sub, appId);
    // The transport checks this too; the requests answered here (DELETE, a resume) need it as well.
    const origin = req.header('origin');
    if (origin !== undefined && origins.length > 0 && !origins.includes(origin)) throw new Forbidden(`Origin not allowed: ${origin.slice(0, 200)}`);
    const sessionId = req.header('mcp-session-id');
    const initialize = req.method === 'POST' && isInitializeRequest(req.body);
    if (sessionId === undefined) {
      if (!initialize) throw new BadRequest('no Mcp-Session-Id header: the first request of an MCP session is a POSTed initialize');
      return start(req, res, principal, appId, req.body as InitializeRequest);
    }
    if (initialize) throw new BadRequest('initialize starts a new session: send it without an Mcp-Session-Id header');
    // The transport checks this too; the requests answered here (DELETE, a resume) need it as well.
    const version = req.header('mcp-protocol-version');
    if (version !== undefined && !SUPPORTED_PROTOCOL_VERSIONS.includes(version))
      throw new BadRequest(`unsupported MCP-Protocol-Version "${version.slice(0, 40)}" (supported: ${SUPPORTED_PROTOCOL_VERSIONS.join(', ')})`);
    // Another user's or app's session is no session at all. The SDK client starts a new session on a 404.
    if (!(await sessions.use(sessionId, principal.sub, appId))) throw new NotFound('MCP session not found (ended, expired, or not yours): initialize a new one');
    if (req.method === 'DELETE') {
      await sessions.end(sessionId, principal.sub);
      res.status(200).end();
      return;
    }
    const lastEventId = req.header('last-event-id');
    if (req.method === 'GET' && lastEventId !== undefined) return resume(req, res, sessionId, lastEventId);
    return serve(req, res, principal, appId, sessionId);
  }

  /** initialize: the session's record first (any instance may get the next request), dropped again if the SDK refused the request. */
  async function start(req: Request, res: Response, principal: Principal, appId: string, init: InitializeRequest): Promise<void> {
    const asked = init.params.protocolVersion;
    const sessionId = await sessions.create({
      sub: principal.sub,
      app_id: appId,
      protocol_version: SUPPORTED_PROTOCOL_VERSIONS.includes(asked) ? asked : LATEST_PROTOCOL_VERSION,
      client_capabilities: init.params.capabilities,
      client_info: init.params.clientInfo,
    });
    try {
      await serve(req, res, principal, appId, sessionId);
    } finally {
      if (res.statusCode !== 200) await sessions.end(sessionId, principal.sub);
    }
  }

  /**
   * One request of a session, on whichever instance it reached: a stateless SDK transport and
   * server of its own (what the session agreed is in Redis), its SSE stream logged for a resume.
   */
  async function serve(req: Request, res: Response, principal: Principal, appId: string, sessionId: string): Promise<void> {
    const messages: unknown[] = req.method === 'POST' ? [req.body] : [];
    for (const m of messages) {
      const cancelled = CancelledNotificationSchema.safeParse(m);
      const requestId = cancelled.success ? cancelled.data.params.requestId : undefined;
      if (requestId !== undefined) await calls.cancel(sessionId, requestId, principal.sub, cancelled.data?.params.reason?.slice(0, 500));
    }
    const requestIds = messages.filter(isJSONRPCRequest).map((m) => m.id);
    const log = requestIds.length > 0 ? new PostStreamLog(s.redis, eventsKeyOf(s.config.BULL_PREFIX, sessionId), requestIds) : undefined;
    const transport = new StreamableHTTPServerTransport({
      sessionIdGenerator: undefined,
      eventStore: log,
      retryInterval: RETRY_MS,
      enableDnsRebindingProtection: true,
      allowedOrigins: origins,
    });
    /** Cancels a call of this request in its own server (which then sends no answer), and ends its logged stream. */
    const dropAnswer = (requestId: RequestId, reason: string) => {
      transport.onmessage?.({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId, reason } });
      log?.noAnswer(requestId).catch((e: Error) => s.logger.warn('MCP stream log failed', { error: e.message }));
    };
    const scope: CallScope = {
      begin: (requestId, chat) => calls.begin(sessionId, requestId, chat, (reason) => dropAnswer(requestId, reason)),
      cancelledElsewhere: (requestId) => calls.cancelled(sessionId, requestId),
      dropAnswer: (requestId) => dropAnswer(requestId, 'cancelled by the MCP client'),
      end: (requestId) => calls.end(sessionId, requestId),
    };
    await mcpServerFor(s, principal, appId, scope).connect(transport);
    res.setHeader('mcp-session-id', sessionId);
    await transport.handleRequest(req, res, req.body);
  }

  /**
   * GET with Last-Event-ID: the cut stream's log after that event, then the log as it grows until
   * the stream's last answer, whichever instance runs the call (it logs every message it sends).
   */
  async function resume(req: Request, res: Response, sessionId: string, lastEventId: string): Promise<void> {
    if (!req.header('accept')?.includes('text/event-stream')) throw new HttpError(406, ErrorCode.BadRequest, 'a resumed MCP stream is text/event-stream: send Accept: text/event-stream');
    const keyPrefix = eventsKeyOf(s.config.BULL_PREFIX, sessionId);
    const at = parseEventId(lastEventId);
    if (!at || !(await streamExists(s.redis, keyPrefix, at.streamId))) throw new BadRequest('Last-Event-ID names no event of this session (or its stream expired)');
    if (resuming >= MAX_RESUMING) throw new Unavailable('too many resumed MCP streams on this instance; try again later');
    resuming++;
    const closed = closeSignal(res);
    const reader = s.blockingConnection('runtime-mcp-resume');
    try {
      res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache, no-transform', Connection: 'keep-alive', 'X-Accel-Buffering': 'no', 'mcp-session-id': sessionId });
      res.flushHeaders();
      for await (const e of followStream(reader, keyPrefix, at.streamId, at.entry, closed)) {
        const frame = e === 'idle' ? ': keepalive\n\n' : e.message ? `event: message\nid: ${at.streamId}_${e.id}\ndata: ${JSON.stringify(e.message)}\n\n` : null;
        if (frame && !res.write(frame)) await Promise.race([once(res, 'drain'), once(res, 'close')]);
      }
    } catch (err) {
      s.logger.warn('resumed MCP stream failed', { error: (err as Error).message });
    } finally {
      resuming--;
      reader.disconnect();
      res.end();
    }
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

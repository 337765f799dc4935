import type { Request } from 'express';
import type { z } from 'zod';
import { BrokerRecentReply, BrokerSessionsReply, CreateSessionBody, CreateSessionReply, UserId, type RouteSpec } from '@tessera/contracts';
import { canUseApp, Forbidden, Unauthorized, type Auth, type DeclaredRoutes, type Principal } from '@tessera/kit';
import { buildBackendContext } from '../domain/backend-context';
import type { ContextSource } from '../upstream/context-source';
import type { CallContext, RuntimeClient } from '../upstream/runtime-client';

const startSession = {
  method: 'post',
  path: '/api/mozaiks/session',
  summary: 'Start (or reuse, by client_request_id) a chat for the signed-in user; backend-only context is added here',
  description:
    "Document 000: the user is the token's subject, never a field of the body, and the app is the broker's. The broker adds the backend-only context (tier, permissions: from the token's claims and the host application's context source) and creates the chat on the runtime; the client opens `websocket_url` as it is. The same `client_request_id` returns the same chat (`reused: true`).",
  tags: ['broker'],
  access: 'user',
  body: CreateSessionBody,
  examples: {
    start: { summary: 'Start a chat of a workflow', value: { workflow_name: 'assistant', client_request_id: 'req-7c1e', context: { ui_locale: 'en-GB' } } },
  },
  responses: {
    200: { description: 'the chat and the WebSocket URL to open (with ?access_token=)', schema: CreateSessionReply },
    403: { description: 'the token does not allow this app' },
    503: { description: 'AI service unavailable' },
  },
} as const satisfies RouteSpec;
const listSessions = { method: 'get', path: '/api/mozaiks/sessions', summary: "The signed-in user's chats", tags: ['broker'], access: 'user', responses: { 200: { description: 'chats', schema: BrokerSessionsReply } } } as const satisfies RouteSpec;
const recentSession = {
  method: 'get',
  path: '/api/mozaiks/sessions/recent',
  summary: 'The most recently updated in-progress chat, to offer "resume" (found: false when none)',
  tags: ['broker'],
  access: 'user',
  responses: { 200: { description: 'recent chat', schema: BrokerRecentReply } },
} as const satisfies RouteSpec;

/** The broker's API, in the order of its OpenAPI document. Every route is a signed-in user's, in the configured app. */
export const sessionRoutes: RouteSpec[] = [startSession, listSessions, recentSession];

export interface SessionsDeps {
  auth: Auth;
  runtime: RuntimeClient;
  contextSource: ContextSource | null;
  appId: string;
  publicWsUrl: string;
}

/**
 * Document 000's broker: the user is the token's subject, never a field of the body; the app is
 * the configured one, and the token must allow it.
 */
export function sessionsRoutes(routes: DeclaredRoutes<'user'>, d: SessionsDeps): void {

  const caller = (req: Request, app = d.appId): { principal: Principal; call: CallContext } => {
    const principal = req.principal;
    if (!principal) throw new Unauthorized();
    if (!canUseApp(principal, app)) throw new Forbidden(`token does not allow app "${app}"`);
    // The subject becomes the runtime's user id, in its paths too: one no path can hold is refused here.
    const sub = UserId.safeParse(principal.sub);
    if (!sub.success) throw new Forbidden(`token subject cannot be a user id: ${sub.error.issues[0].message}`);
    return { principal, call: { token: d.auth.tokenFrom(req), requestId: req.id } };
  };

  routes.route(startSession, async ({ body }, req, res) => {
    // Tessera: a token of several apps may name the one to start in; the broker's own is the default.
    const app = body.app_id ?? d.appId;
    const { principal, call } = caller(req, app);
    const sourced = d.contextSource ? await d.contextSource.forUser(principal.sub, app, req.id) : {};
    const initialContext = buildBackendContext({ defaults: sourced.defaults, claims: principal.claims, user: sourced.user });
    const started = await d.runtime.startChat(
      {
        app_id: app,
        user_id: principal.sub,
        workflow_name: body.workflow_name,
        initial_context: initialContext,
        client_request_id: body.client_request_id,
        ...(body.context && { ui_context: body.context }),
      },
      call,
    );
    const reply: z.infer<typeof CreateSessionReply> = {
      chat_id: started.chat_id,
      websocket_url: publicSocketUrl(d.publicWsUrl, started.websocket_url),
      workflow_name: body.workflow_name,
      reused: started.reused,
    };
    res.json(reply);
  });

  routes.route(listSessions, async (_input, req, res) => {
    const { principal, call } = caller(req);
    res.json(await d.runtime.sessions(d.appId, principal.sub, call));
  });

  routes.route(recentSession, async (_input, req, res) => {
    const { principal, call } = caller(req);
    res.json(await d.runtime.recent(d.appId, principal.sub, call));
  });
}

/** The runtime answers with the path form (`/ws/{workflow}/{app}/{chat}/{user}`); clients connect through the gateway. */
export function publicSocketUrl(publicWsUrl: string, runtimeUrl: string): string {
  if (runtimeUrl.startsWith('/')) return publicWsUrl + runtimeUrl;
  const u = new URL(runtimeUrl);
  return publicWsUrl + u.pathname + u.search;
}

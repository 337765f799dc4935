import { timingSafeEqual } from 'node:crypto';
import type { RequestHandler } from 'express';
import { canUseApp, openAccess, SERVICE_KEY_HEADER, readyWhen, serviceApp, serviceDocument, serviceSocketHub, SocketRefusal, Unauthorized, type ServiceApp, type SocketEndpoint } from '@tessera/kit';
import { missionEndpoint } from './mission/endpoint';
import { a2aRoutes, a2aRoutesOf } from './routes/a2a';
import { blueprintRoutes, blueprintsRoutes } from './routes/active-chats';
import { budgetRoutes, budgetsRoutes } from './routes/budgets';
import { aguiRoutes, aguiRoutesOf } from './routes/agui';
import { chatRoutes, chatsRoutes } from './routes/chats';
import { inputRoutes, inputsRoutes } from './routes/input';
import { mcpChallenge, mcpRoutes, mcpRoutesOf } from './routes/mcp';
import { missionRoutes, missionsRoutes, operatorOnly } from './routes/missions';
import { sessionRoutes, sessionsRoutes } from './routes/sessions';
import { workflowRoutes, workflowsRoutes } from './routes/workflows';
import type { RuntimeServices } from './services';
import { ChatSocket } from './ws/chat-socket';

/** The runtime's API document's title and description (its routes are the ones declared). */
const api = {
  title: 'Tessera runtime',
  description: 'Agent runtime: workflows, chats, the client contract of document 003 (HTTP + WebSocket /ws/{workflow_name}/{app_id}/{chat_id}/{user_id}).',
  readySummary: 'Redis and PostgreSQL reachable',
};

/** The runtime's API document as served, for the tests that read it without a running runtime. */
export const openapi = serviceDocument(api, [
  ...workflowRoutes,
  ...blueprintRoutes,
  ...chatRoutes,
  ...sessionRoutes,
  ...inputRoutes,
  ...missionRoutes,
  ...budgetRoutes,
  ...aguiRoutes,
  ...a2aRoutes,
  ...mcpRoutes,
]);

/** The runtime's HTTP app and WebSocket endpoints, built from its services (tests call this through server.ts). */
export function createRuntimeApp(s: RuntimeServices, opts: { isShuttingDown?: () => boolean } = {}): ServiceApp {
  const { auth } = s;
  const hub = serviceSocketHub({ config: s.config, logger: s.logger, metrics: s.metrics, kind: 'chat', isShuttingDown: opts.isShuttingDown });
  const authn = auth.middleware('http');

  const socketDeps = { ...s, hub };
  /** Document 003's chat socket: the token and the path must name the chat's own user and app. */
  const chatSocket: SocketEndpoint = {
    path: /^\/ws\/([^/]+)\/([^/]+)\/([^/]+)\/([^/]+)\/?$/,
    async open({ req, params: [workflowName, appId, chatId, userId], ws }) {
      // Refusals close with 1008 and a reason a client can show; nothing of the chat is sent.
      const principal = await auth.authenticate(req, 'ws').catch((e: Error) => {
        throw new SocketRefusal(e.message);
      });
      if (!principal.anonymous && (principal.sub !== userId || !canUseApp(principal, appId))) throw new SocketRefusal('not your chat');
      const chat = await s.chats.get(chatId);
      if (!chat || chat.appId !== appId || chat.userId !== userId) throw new SocketRefusal('not your chat');
      if (!s.workflows.has(workflowName)) throw new SocketRefusal(`no workflow named "${workflowName}"`);
      const session = new ChatSocket(socketDeps, ws, chat);
      await session.open();
      return session;
    },
  };
  /** Document 002's tutor socket: another wire format over the same chats (src/mission). */
  const missionSocket = missionEndpoint(socketDeps, auth);

  return serviceApp({
    service: 'runtime',
    api,
    services: s,
    health: {
      ready: {
        redis: readyWhen.redis(s.redis),
        database: readyWhen.postgres(s.db.pool),
      },
    },
    isShuttingDown: opts.isShuttingDown,
    guards: {
      public: openAccess,
      // A user's own chats: the token, then the handler checks the subject and app (assertOwner, ownedChat).
      user: authn,
      owner: authn,
      operator: [authn, operatorOnly(s.config.OPERATOR_CLAIM, s.config.OPERATOR_ROLE)],
      service: serviceKeyOnly(s.config.SERVICE_KEY),
    },
    routes: (routes) => {
      workflowsRoutes(routes, s);
      blueprintsRoutes(routes, s);
      chatsRoutes(routes, s);
      sessionsRoutes(routes, s);
      inputsRoutes(routes, s);
      missionsRoutes(routes, { missions: s.missions, workflows: s.workflows });
      budgetsRoutes(routes, s);
      aguiRoutesOf(routes, s);
      a2aRoutesOf(routes, s);
      mcpRoutesOf(routes, s);
    },
    // The MCP endpoint's 401 names its protected-resource metadata (an OAuth resource server's challenge).
    beforeRoutes: [mcpChallenge(authn)],
    sockets: { attach: (server) => hub.attach(server, [chatSocket, missionSocket]), close: () => hub.close() },
  });
}

/** Another Tessera service, by the service key (the gateway strips it from clients). */
function serviceKeyOnly(serviceKey: string): RequestHandler {
  const key = Buffer.from(serviceKey);
  return (req, _res, next) => {
    const given = Buffer.from(req.header(SERVICE_KEY_HEADER) ?? '');
    next(given.length === key.length && timingSafeEqual(given, key) ? undefined : new Unauthorized('the service key is required'));
  };
}

import { timingSafeEqual } from 'node:crypto';
import type { Server } from 'node:http';
import type { RequestHandler } from 'express';
import { buildOpenApi, HealthReply } from '@tessera/contracts';
import {
  authSettings,
  canUseApp,
  createAuth,
  createHttpApp,
  declareRoutes,
  finalizeHttpApp,
  healthRouter,
  openAccess,
  SERVICE_KEY_HEADER,
  serviceSocketHub,
  SocketRefusal,
  Unauthorized,
  type Auth,
  type SocketEndpoint,
} from '@tessera/kit';
import { a2aRoutes, a2aRoutesOf } from './a2a/routes';
import { aguiRoutes, aguiRoutesOf } from './agui/routes';
import { mcpChallenge, mcpRoutes, mcpRoutesOf } from './mcp/routes';
import { blueprintRoutes, blueprintsRoutes } from './blueprints/active-chats';
import { missionEndpoint } from './mission/endpoint';
import { missionRoutes, missionsRoutes, operatorOnly } from './mission/routes';
import { chatRoutes, chatsRoutes } from './routes/chats';
import { inputRoutes, inputsRoutes } from './routes/input';
import { sessionRoutes, sessionsRoutes } from './routes/sessions';
import { workflowRoutes, workflowsRoutes } from './routes/workflows';
import type { RuntimeServices } from './services';
import { ChatSocket } from './ws/chat-socket';

export const openapi = buildOpenApi({
  title: 'Tessera runtime',
  version: '0.1.0',
  description: 'Agent runtime: workflows, chats, the client contract of document 003 (HTTP + WebSocket /ws/{workflow_name}/{app_id}/{chat_id}/{user_id}).',
  routes: [
    { method: 'get', path: '/health', summary: 'Liveness', access: 'public', responses: { 200: { description: 'alive', schema: HealthReply } } },
    { method: 'get', path: '/ready', summary: 'Redis and PostgreSQL reachable', access: 'public', responses: { 200: { description: 'ready', schema: HealthReply } } },
    ...workflowRoutes,
    ...chatRoutes,
    ...sessionRoutes,
    ...inputRoutes,
    ...blueprintRoutes,
    ...missionRoutes,
    ...aguiRoutes,
    ...a2aRoutes,
    ...mcpRoutes,
  ],
});

/** The runtime's HTTP app and WebSocket endpoint, built from its services (tests call this). */
export function createRuntimeApp(s: RuntimeServices, opts: { isShuttingDown?: () => boolean } = {}) {
  const auth: Auth = createAuth(authSettings(s.config));
  const hub = serviceSocketHub({ config: s.config, logger: s.logger, metrics: s.metrics, kind: 'chat', isShuttingDown: opts.isShuttingDown });
  const app = createHttpApp({ logger: s.logger, metrics: s.metrics, corsOrigins: s.config.CORS_ORIGINS, bodyLimit: s.config.BODY_LIMIT });
  app.use(
    healthRouter({
      service: 'runtime',
      ready: {
        redis: async () => void (await s.redis.ping()),
        database: async () => void (await s.db.pool.query('SELECT 1')),
      },
      isShuttingDown: opts.isShuttingDown,
    }),
  );
  app.use(s.metrics.router());
  app.get('/openapi.json', (_req, res) => res.json(openapi));
  const authn = auth.middleware('http');
  const routes = declareRoutes({
    public: openAccess,
    // A user's own chats: the token, then the handler checks the subject and app (assertOwner, ownedChat).
    user: authn,
    owner: authn,
    operator: [authn, operatorOnly(s.config.OPERATOR_CLAIM, s.config.OPERATOR_ROLE)],
    service: serviceKeyOnly(s.config.SERVICE_KEY),
  });
  workflowsRoutes(routes, s);
  blueprintsRoutes(routes, s);
  chatsRoutes(routes, s);
  sessionsRoutes(routes, s);
  inputsRoutes(routes, s);
  missionsRoutes(routes, { missions: s.missions, workflows: s.workflows });
  aguiRoutesOf(routes, s);
  a2aRoutesOf(routes, s);
  mcpRoutesOf(routes, s);
  // The MCP endpoint's 401 names its protected-resource metadata (an OAuth resource server's challenge).
  app.use(mcpChallenge(authn));
  app.use(routes.router);
  finalizeHttpApp(app, s.logger, openapi);

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

  return {
    app,
    hub,
    attach(server: Server) {
      hub.attach(server, [chatSocket, missionSocket]);
    },
  };
}

/** Another Tessera service, by the service key (the gateway strips it from clients). */
function serviceKeyOnly(serviceKey: string): RequestHandler {
  const key = Buffer.from(serviceKey);
  return (req, _res, next) => {
    const given = Buffer.from(req.header(SERVICE_KEY_HEADER) ?? '');
    next(given.length === key.length && timingSafeEqual(given, key) ? undefined : new Unauthorized('the service key is required'));
  };
}

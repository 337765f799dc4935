import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { buildOpenApi, CloseCode, HealthReply } from '@tessera/contracts';
import { canUseApp, createAuth, authSettings, createHttpApp, finalizeHttpApp, healthRouter, SocketHub, type Auth } from '@tessera/kit';
import { chatRoutes, chatsRouter } from './routes/chats';
import { inputRouter, inputRoutes } from './routes/input';
import { sessionRoutes, sessionsRouter } from './routes/sessions';
import { workflowRoutes, workflowsRouter } from './routes/workflows';
import type { RuntimeServices } from './services';
import { ChatSocket } from './ws/chat-socket';

export const openapi = buildOpenApi({
  title: 'Tessera runtime',
  version: '0.1.0',
  description: 'Agent runtime: workflows, chats, the client contract of document 003 (HTTP + WebSocket /ws/{workflow_name}/{app_id}/{chat_id}/{user_id}).',
  routes: [
    { method: 'get', path: '/health', summary: 'Liveness', auth: false, responses: { 200: { description: 'alive', schema: HealthReply } } },
    { method: 'get', path: '/ready', summary: 'Redis and PostgreSQL reachable', auth: false, responses: { 200: { description: 'ready', schema: HealthReply } } },
    ...workflowRoutes,
    ...chatRoutes,
    ...sessionRoutes,
    ...inputRoutes,
  ],
});

const WS_PATH = /^\/ws\/([^/]+)\/([^/]+)\/([^/]+)\/([^/]+)\/?$/;

/** The runtime's HTTP app and WebSocket endpoint, built from its services (tests call this). */
export function createRuntimeApp(s: RuntimeServices, opts: { isShuttingDown?: () => boolean } = {}) {
  const auth: Auth = createAuth(authSettings(s.config));
  const hub = new SocketHub({
    logger: s.logger,
    maxPayload: s.config.WS_MAX_PAYLOAD,
    heartbeatMs: s.config.WS_HEARTBEAT_MS,
    onCountChange: (n) => s.metrics.openSockets.set({ kind: 'chat' }, n),
  });
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
  app.use(workflowsRouter(s));
  app.use(auth.middleware({ sources: ['header', 'cookie'] }));
  app.use(chatsRouter(s));
  app.use(sessionsRouter(s));
  app.use(inputRouter(s));
  finalizeHttpApp(app, s.logger);

  async function onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer) {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    const m = WS_PATH.exec(path);
    if (!m) {
      socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Type: application/json\r\n\r\n{"error":{"code":"NOT_FOUND","message":"no WebSocket endpoint here"}}');
      return;
    }
    const [workflowName, appId, chatId, userId] = m.slice(1).map(decodeURIComponent);
    hub.wss.handleUpgrade(req, socket, head, (ws) => {
      // A client may send right after the handshake, before it is authorised: keep those messages.
      const early: [Buffer, boolean][] = [];
      const collect = (d: Buffer, isBinary: boolean) => early.length < 100 && early.push([d, isBinary]);
      ws.on('message', collect);
      void (async () => {
        // Refusals close with 1008 and a reason a client can show; nothing of the chat is sent.
        const refuse = (reason: string) => ws.close(CloseCode.PolicyViolation, reason);
        let principal;
        try {
          principal = await auth.authenticate(req, { sources: ['query', 'header', 'cookie'] });
        } catch (e) {
          return refuse((e as Error).message);
        }
        if (!principal.anonymous && (principal.sub !== userId || !canUseApp(principal, appId))) return refuse('not your chat');
        const chat = await s.chats.get(chatId).catch(() => null);
        if (!chat || chat.appId !== appId || chat.userId !== userId) return refuse('not your chat');
        if (!s.workflows.has(workflowName)) return refuse(`no workflow named "${workflowName}"`);
        const session = new ChatSocket(
          { hub, feed: s.feed, timeline: s.timeline, chats: s.chats, toolCalls: s.toolCalls, chatInputs: s.chatInputs, starter: s.starter, workflows: s.workflows, logger: s.logger, metrics: s.metrics },
          ws,
          chat,
        );
        ws.off('message', collect);
        await session.open(early);
      })().catch((err: Error) => {
        s.logger.error('socket open failed', { error: err.message });
        ws.close(CloseCode.InternalError, 'could not open the chat; try again');
      });
    });
  }

  return {
    app,
    hub,
    attach(server: Server) {
      server.on('upgrade', (req, socket, head) => void onUpgrade(req, socket, head));
    },
  };
}

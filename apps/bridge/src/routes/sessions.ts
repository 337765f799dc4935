import type { Request } from 'express';
import { bridge } from '@tessera/contracts';
import { Conflict, GatewayTimeoutError, ServiceUnavailable } from './errors';
import { envelope } from '../bus/session-bus';
import { clampTimeout } from '../domain/requests';
import { displayScadaUrl, sessionTokenOf } from '../domain/tokens';
import type { BridgeServices } from '../services';
import type { SessionRecord } from '../store/sessions';
import type { BridgeRoutes } from './guards';

const tags = ['bridge'];
const withToken = { 401: { description: 'no credential: a platform token, the service key or the session token' }, 404: { description: "no such session, or not the caller's" } };

/** `BACKEND_BRIDGE_PUBLIC_URL` names the bridge's `/api` as clients reach it (`…/api/bridge` behind the gateway). */
/**
 * The session socket's URL, carrying the session's own token: it works as handed out (document
 * 004's clients open it and nothing else), through the gateway too, which lets these upgrades
 * through for the bridge to check.
 */
function websocketUrl(s: BridgeServices, req: Request, rec: SessionRecord): string {
  const base = s.config.BACKEND_BRIDGE_PUBLIC_URL?.replace(/\/+$/, '') ?? `${req.protocol}://${req.get('host') ?? 'localhost'}/api`;
  return `${base.replace(/^http/, 'ws')}/session/${encodeURIComponent(rec.id)}/ws?sessionToken=${encodeURIComponent(sessionTokenOf(s.config.tokenSecret, rec.id, rec.nonce))}`;
}

function bootstrapReply(s: BridgeServices, req: Request, rec: SessionRecord, isNew: boolean): bridge.BootstrapReply {
  return {
    sessionId: rec.id,
    isNew,
    scadaUrl: rec.scadaUrl,
    opencodeUrl: rec.opencodeUrl,
    opencodeAuth: { username: 'opencode', password: rec.password },
    opencodeSessionId: rec.opencodeSessionId,
    websocketUrl: websocketUrl(s, req, rec),
    sessionToken: sessionTokenOf(s.config.tokenSecret, rec.id, rec.nonce),
    appId: rec.appId,
    userId: rec.userId,
    model: rec.model,
    sessionInfo: rec.info,
  };
}

async function putInfo(s: BridgeServices, rec: SessionRecord, body: bridge.SessionInfoBody): Promise<bridge.SessionInfo> {
  const info: bridge.SessionInfo = { ...body, updatedAt: new Date().toISOString() };
  if (!(await s.store.setInfo(rec.id, info))) throw new Conflict('the session closed meanwhile');
  await s.bus.publish({ kind: 'envelope', sessionId: rec.id, wire: envelope('session.info.updated', rec.id, info) });
  return info;
}

/**
 * Document 004's session API. Bootstrap is a signed-in user's (or the service key's, naming the
 * app and user); the servers list an operator's; every `/api/session/{sessionId}/*` route the
 * session owner's (its app's operators, the service key and the session's own token too).
 */
export function sessionRoutes(routes: BridgeRoutes, s: BridgeServices): void {
  routes.route(
    {
      method: 'post',
      path: '/api/session/bootstrap',
      access: 'user',
      summary:
        "Start or reuse the caller's agent server for a (scadaUrl, accessToken) pair; returns its URL and password, the session socket and the session token. Needs a platform token (the session is the token's app and user) or the service key naming appId and userId",
      tags,
      body: bridge.BootstrapBody,
      responses: {
        200: { description: 'the session (isNew: false when reused)', schema: bridge.BootstrapReply },
        400: { description: 'invalid body, or the app is not named where the token allows several' },
        401: { description: 'neither a platform token nor the service key' },
        403: { description: "the token may not use appId, or userId is not the token's subject" },
        429: { description: 'OPENCODE_MAX_SERVERS_PER_USER or OPENCODE_MAX_SERVERS_PER_APP reached (the message names it)' },
        503: { description: 'OPENCODE_MAX_SERVERS reached, no free port, or the server did not start' },
      },
    },
    async ({ body }, req, res) => {
      // The guard asked who calls before the body was read: no credential is a 401 whatever the body holds.
      const owner = s.access.ownerOf(req.bootstrapper!, body);
      const { record, isNew } = await s.sessions.bootstrap(owner, body);
      let rec = record;
      if (!isNew) {
        s.store.touch(rec.id, { use: true });
        if (body.sessionInfo) rec = { ...rec, info: await putInfo(s, rec, body.sessionInfo) };
      }
      res.json(bootstrapReply(s, req, rec, isNew));
    }
  );

  routes.route(
    {
      method: 'get',
      path: '/api/session/servers',
      access: 'operator',
      summary: "Agent servers of the operator's apps, every instance (no secrets; SCADA URLs without their query)",
      tags,
      responses: { 200: { description: 'servers', schema: bridge.ServersReply }, 401: { description: 'no operator token or service key' }, 403: { description: 'not an operator' } },
    },
    async (_input, req, res) => {
      const apps = req.operatorApps!;
      const all = (await s.store.all()).filter((rec) => apps === '*' || apps.includes(rec.appId));
      const counts = await Promise.all(all.map((rec) => s.store.subscriberCount(rec.id)));
      const reply: bridge.ServersReply = {
        servers: all.map((rec, i) => ({
          sessionId: rec.id,
          appId: rec.appId,
          userId: rec.userId,
          scadaUrl: displayScadaUrl(rec.scadaUrl),
          opencodeUrl: rec.opencodeUrl,
          port: rec.port,
          pid: rec.pid,
          instance: rec.instance,
          model: rec.model,
          startedAt: rec.startedAt,
          lastActivityAt: new Date(rec.lastActivity).toISOString(),
          subscribers: counts[i],
        })),
      };
      res.json(reply);
    },
  );

  routes.route(
    { method: 'get', path: '/api/session/{sessionId}/info', access: 'owner', summary: 'Session context (used by MCP tools)', tags, params: bridge.SessionParams, responses: { 200: { description: 'info', schema: bridge.SessionInfoReply }, ...withToken } },
    (_input, req, res) => {
      const rec = req.bridgeSession!;
      res.json({ sessionId: rec.id, ...rec.info });
    },
  );

  routes.route(
    {
      method: 'put',
      path: '/api/session/{sessionId}/info',
      access: 'owner',
      summary: 'Replace the session context; broadcasts session.info.updated',
      tags,
      params: bridge.SessionParams,
      body: bridge.SessionInfoBody,
      responses: { 200: { description: 'info', schema: bridge.SessionInfoReply }, ...withToken },
    },
    async ({ body }, req, res) => {
      const rec = req.bridgeSession!;
      const info = await putInfo(s, rec, body);
      res.json({ sessionId: rec.id, ...info });
    }
  );

  routes.route(
    { method: 'delete', path: '/api/session/{sessionId}', access: 'owner', summary: "Close the session: its agent server stops, its sockets get session.closed", tags, params: bridge.SessionParams, responses: { 204: { description: 'closed' }, ...withToken } },
    async (_input, req, res) => {
      await s.sessions.close(req.bridgeSession!.id, 'closed');
      res.status(204).end();
    },
  );

  routes.route(
    {
      method: 'post',
      path: '/api/session/{sessionId}/events',
      access: 'owner',
      summary: "Publish an event to the session's sockets (every instance)",
      tags,
      params: bridge.SessionParams,
      body: bridge.PublishBody,
      responses: { 200: { description: 'published', schema: bridge.PublishReply }, ...withToken },
    },
    async ({ body }, req, res) => {
      const rec = req.bridgeSession!;
      const deliveredTo = await s.store.subscriberCount(rec.id);
      await s.bus.publish({ kind: 'envelope', sessionId: rec.id, wire: envelope('session.event', rec.id, { type: body.type, payload: body.payload ?? null }) });
      res.json({ sessionId: rec.id, deliveredTo });
    }
  );

  routes.route(
    {
      method: 'post',
      path: '/api/session/{sessionId}/events/request',
      access: 'owner',
      summary: 'Publish a hub.request and wait for its response (timeoutMs clamped to 1 s..180 s); with longPollMs, 202 pending after that long',
      tags,
      params: bridge.SessionParams,
      body: bridge.RequestBody,
      responses: {
        200: { description: 'responded', schema: bridge.RequestReply },
        202: { description: 'still pending after longPollMs', schema: bridge.PendingReply },
        409: { description: 'the session closed (request cancelled)' },
        503: { description: 'no socket subscribed to the session' },
        504: { description: 'no response before the timeout' },
        ...withToken,
      },
    },
    async ({ body }, req, res) => {
      const rec = req.bridgeSession!;
      if ((await s.store.subscriberCount(rec.id)) === 0) throw new ServiceUnavailable('no socket is subscribed to this session: nobody could answer');
      const { requestId, expiresAt } = await s.requests.open(rec.id, body);
      const waitUntil = body.longPollMs !== undefined ? Math.min(expiresAt, Date.now() + body.longPollMs) : expiresAt;
      const st = await s.requests.wait(requestId, waitUntil);
      if (st.status === 'resolved') return void res.json({ sessionId: rec.id, requestId, response: st.response ?? null, respondedAt: st.respondedAt! });
      if (st.status === 'pending') return void res.status(202).json({ status: 'pending', sessionId: rec.id, requestId, expiresAt: st.expiresAt });
      if (st.status === 'timeout') throw new GatewayTimeoutError(`no response within ${clampTimeout(body.timeoutMs)} ms`, { requestId });
      throw new Conflict('the session closed before the request was answered', { requestId, status: st.status });
    }
  );

  routes.route(
    {
      method: 'get',
      path: '/api/session/{sessionId}/events/request/{requestId}/status',
      access: 'owner',
      summary: "A request's state (pending, resolved with its response, timeout, cancelled)",
      tags,
      params: bridge.RequestParams,
      responses: { 200: { description: 'state', schema: bridge.RequestStatusReply }, ...withToken },
    },
    async ({ params: { requestId } }, req, res) => {
      res.json(await s.requests.status(requestId, req.bridgeSession!.id));
    },
  );

  routes.route(
    {
      method: 'post',
      path: '/api/session/{sessionId}/events/request/{requestId}/response',
      access: 'owner',
      summary: 'Resolve a pending request (any instance)',
      tags,
      params: bridge.RequestParams,
      body: bridge.ResponseBody,
      responses: { 200: { description: 'resolved', schema: bridge.ResponseReply }, 409: { description: 'already answered, timed out or cancelled' }, ...withToken },
    },
    // No body at all is `{ response: undefined }`, as it always was.
    async ({ params: { requestId }, body }, req, res) => {
      const rec = req.bridgeSession!;
      await s.requests.respond(rec.id, requestId, body.response);
      res.json({ sessionId: rec.id, requestId, resolved: true });
    },
  );
}

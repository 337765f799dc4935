import type { WebSocket } from 'ws';
import { bridge } from '@tessera/contracts';
import { HttpError, SocketRefusal, type SocketEndpoint, type SocketHub } from '@tessera/kit';
import { envelope, type SessionBus } from '../bus/session-bus';
import type { BridgeServices } from '../services';

/**
 * This instance's session sockets. Every envelope comes through the bus (whichever instance
 * published it) and is written as received; `session.closed` is written, then the socket closes.
 */
export class SessionSockets {
  private readonly bySession = new Map<string, Set<WebSocket>>();

  constructor(
    private readonly hub: SocketHub,
    bus: SessionBus,
  ) {
    bus.on((m) => {
      if (m.kind !== 'envelope' && m.kind !== 'closed') return;
      const set = this.bySession.get(m.sessionId);
      if (!set) return;
      for (const ws of set) {
        this.hub.send(ws, m.wire);
        if (m.kind === 'closed') ws.close(bridge.SessionCloseCode.SessionClosed, `session closed: ${m.reason}`);
      }
      if (m.kind === 'closed') this.bySession.delete(m.sessionId);
    });
  }

  add(sessionId: string, ws: WebSocket): void {
    let set = this.bySession.get(sessionId);
    if (!set) this.bySession.set(sessionId, (set = new Set()));
    set.add(ws);
  }

  /** False when the socket was not (or no longer) registered, e.g. the session closed first. */
  remove(sessionId: string, ws: WebSocket): boolean {
    const set = this.bySession.get(sessionId);
    if (!set?.delete(ws)) return false;
    if (set.size === 0) this.bySession.delete(sessionId);
    return true;
  }
}

/** `GET /api/session/{sessionId}/ws`: 4401 with no credential (or a bad one), 4404 for a session that is not there or not the caller's. */
export function sessionEndpoint(s: BridgeServices, hub: SocketHub, sockets: SessionSockets): SocketEndpoint {
  return {
    path: /^\/api\/session\/([^/]+)\/ws$/,
    async open({ req, params, ws, closed }) {
      const [sessionId] = params;
      let granted;
      try {
        granted = await s.access.session(req, sessionId, (id) => s.store.get(id), 'ws');
      } catch (e) {
        if (e instanceof HttpError && e.status === 404) throw new SocketRefusal('unknown session', bridge.SessionCloseCode.UnknownSession);
        if (e instanceof HttpError && e.status < 500) throw new SocketRefusal(`unauthorized: ${e.message}`, bridge.SessionCloseCode.Unauthorized);
        throw e;
      }
      const { rec, owner } = granted;
      if (closed.aborted) return { onMessage: () => undefined };
      // One tick, no await between them: the count goes to Redis before the client can read the
      // snapshot (so a request it triggers finds a subscriber), and no bus envelope can reach the
      // socket ahead of its snapshot.
      const counted = s.store.addSubscriber(sessionId, s.config.instanceId, 1);
      sockets.add(sessionId, ws);
      hub.send(ws, envelope('session.snapshot', sessionId, { sessionInfo: rec.info, opencodeUrl: rec.opencodeUrl, opencodeSessionId: rec.opencodeSessionId, model: rec.model, scadaUrl: rec.scadaUrl }));
      await counted.catch((e: unknown) => {
        sockets.remove(sessionId, ws);
        throw e;
      });
      s.store.touch(sessionId, { use: owner });
      return {
        async onMessage(data, isBinary) {
          s.store.touch(sessionId, { use: owner });
          let m: bridge.SessionClientMessage;
          try {
            m = bridge.SessionClientMessage.parse(JSON.parse(isBinary ? '' : String(data)));
          } catch {
            return void hub.send(ws, envelope('error', sessionId, { code: 'BAD_MESSAGE', message: 'expected {"type":"ping"} or {"type":"hub.response","requestId","response"}' }));
          }
          if (m.type === 'ping') return void hub.send(ws, envelope('pong', sessionId, null));
          try {
            await s.requests.respond(sessionId, m.requestId, m.response);
          } catch (e) {
            hub.send(ws, envelope('error', sessionId, { code: (e as { code?: string }).code ?? 'INTERNAL', message: (e as Error).message, requestId: m.requestId }));
          }
        },
        onRateLimited: () => hub.send(ws, envelope('error', sessionId, { code: 'RATE_LIMITED', message: 'too many messages; slow down' })),
        async onClose() {
          if (sockets.remove(sessionId, ws)) await s.store.addSubscriber(sessionId, s.config.instanceId, -1).catch(() => undefined);
        },
      };
    },
  };
}

import { observability } from '@tessera/contracts';
import { HttpError, SocketRefusal, type SocketEndpoint, type SocketHub } from '@tessera/kit';
import type { ObservabilityServices } from '../services';
import { LiveFeed } from './live-feed';
import { LiveSocket } from './live-socket';

/**
 * `WS /ws`: the operator's live view. The token (the kit's socket token places) must carry the
 * operator role; what the socket shows is limited to the token's apps. `?events=subscribed` (a
 * Tessera addition) opens it narrowed: no `event` until a subscribe, where a socket that never
 * subscribes gets every event of its apps (document 001's dashboard feed).
 */
export function liveEndpoint(s: ObservabilityServices, hub: SocketHub): SocketEndpoint {
  const feed = new LiveFeed(s.subscriber);
  const deps = { hub, feed, sessions: s.sessions, events: s.events, logger: s.logger, behindBytes: s.config.WS_BEHIND_BYTES };
  return {
    path: /^\/ws\/?$/,
    async open({ req, ws }) {
      const events = new URL(req.url ?? '/', 'http://socket').searchParams.get('events');
      const query = observability.LiveQuery.safeParse({ events: events ?? undefined });
      if (!query.success) throw new SocketRefusal(`invalid events "${(events ?? '').slice(0, 32)}": expected all or subscribed`);
      let scope;
      try {
        scope = s.access.operatorScope(await s.auth.authenticate(req, 'ws'));
      } catch (e) {
        if (e instanceof HttpError) throw new SocketRefusal(e.message);
        throw e;
      }
      const socket = new LiveSocket(deps, ws, scope, { narrowed: query.data.events === 'subscribed' });
      await socket.open();
      return socket;
    },
  };
}

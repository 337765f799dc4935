import { HttpError, SocketRefusal, type SocketEndpoint, type SocketHub } from '@tessera/kit';
import type { ObservabilityServices } from '../services';
import { LiveFeed } from './live-feed';
import { LiveSocket } from './live-socket';

/**
 * `WS /ws`: the operator's live view. The token (the kit's socket token places) must carry the
 * operator role; what the socket shows is limited to the token's apps.
 */
export function liveEndpoint(s: ObservabilityServices, hub: SocketHub): SocketEndpoint {
  const feed = new LiveFeed(s.subscriber);
  const deps = { hub, feed, sessions: s.sessions, events: s.events, logger: s.logger, behindBytes: s.config.WS_BEHIND_BYTES };
  return {
    path: /^\/ws\/?$/,
    async open({ req, ws }) {
      let scope;
      try {
        scope = s.access.operatorScope(await s.auth.authenticate(req, 'ws'));
      } catch (e) {
        if (e instanceof HttpError) throw new SocketRefusal(e.message);
        throw e;
      }
      const socket = new LiveSocket(deps, ws, scope);
      await socket.open();
      return socket;
    },
  };
}

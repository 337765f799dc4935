import { SocketRefusal, type SocketEndpoint, type SocketHub } from '@tessera/kit';
import type { ObservabilityServices } from '../services';

/** Placeholder until the live socket lands (another engineer's file). */
export function liveEndpoint(s: ObservabilityServices, hub: SocketHub): SocketEndpoint {
  void s;
  void hub;
  return {
    path: /^\/ws\/?$/,
    open() {
      return Promise.reject(new SocketRefusal('live socket not ready'));
    },
  };
}

import { bridge } from '@tessera/contracts';
import { readyWhen, serviceApp, serviceSocketHub, type ServiceApp } from '@tessera/kit';
import { bridgeGuards } from './routes/guards';
import { sessionRoutes } from './routes/sessions';
import type { BridgeServices } from './services';
import { sessionEndpoint, SessionSockets } from './ws/session-sockets';

/** The bridge's HTTP app and session socket, built from its services (tests start it through server.ts). */
export function createBridgeApp(s: BridgeServices, opts: { isShuttingDown?: () => boolean } = {}): ServiceApp {
  const hub = serviceSocketHub({ config: s.config, logger: s.logger, metrics: s.metrics, kind: 'session', isShuttingDown: opts.isShuttingDown });
  const sockets = new SessionSockets(hub, s.bus);
  return serviceApp({
    service: 'bridge',
    api: {
      title: 'Tessera bridge',
      description:
        'Backend bridge (document 004): one OpenCode agent server per (scadaUrl, access token), reused; session context; a session-scoped WebSocket (GET /api/session/{sessionId}/ws with the session token: session.snapshot, session.info.updated, session.event, session.closed; 4401 unauthorized, 4404 unknown session); request/response events across instances.',
      healthSummary: 'Liveness and capacity of this instance',
      healthSchema: bridge.BridgeHealth,
      readySummary: 'Redis reachable',
    },
    services: s,
    health: {
      ready: { redis: readyWhen.redis(s.redis) },
      // This instance's agent servers: none free is degraded (the gateway sends new sessions elsewhere), shutting down is down.
      livenessDetails: () => {
        const cap = s.pool.capacity;
        return {
          status: opts.isShuttingDown?.() ? 'down' : cap.available > 0 ? 'ok' : 'degraded',
          instance: s.config.instanceId,
          capacity: { ...cap, ports: { base: s.config.OPENCODE_BASE_PORT, max: s.config.OPENCODE_MAX_PORT }, sockets: hub.size },
        };
      },
    },
    isShuttingDown: opts.isShuttingDown,
    guards: bridgeGuards(s),
    routes: (routes) => sessionRoutes(routes, s),
    sockets: { attach: (server) => hub.attach(server, [sessionEndpoint(s, hub, sockets)]), close: () => hub.close() },
  });
}

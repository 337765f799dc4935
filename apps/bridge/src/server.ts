import { channelOf, serveApp, type Logger, type RunningService } from '@tessera/kit';
import { createSandbox } from './agents/sandbox';
import { createBridgeApp } from './app';
import type { BridgeConfig } from './config';
import { createBridgeServices, type BridgeServices } from './services';

export type RunningBridge = RunningService<BridgeServices>;

/**
 * The bridge as deployed: what a dead predecessor left is reaped before anything is served, then
 * the bus, operators' stops, the cleanup pass and HTTP with the session socket. main.ts and the
 * integration tests both start it here, so the tests run what production runs.
 */
export async function startBridgeServer(config: BridgeConfig, logger: Logger): Promise<RunningBridge> {
  // A sandbox that cannot confine agent servers stops the start: never fall back to none.
  const sandbox = await createSandbox(config, logger);
  const s = createBridgeServices(config, logger, sandbox);
  try {
    await s.reaper.heartbeat();
    await s.sessions.sweep();
    await s.bus.start();
    // Operators' stops (observability's), as the runtime receives them.
    await s.subscriber.subscribe(channelOf('sessionControl'), {
      onMessage: (m) => {
        if (m.action !== 'stop') return;
        const { session_id: id, app_id: appId, reason } = m;
        void s.store.get(id).then((rec) => {
          // Ours, and of the app the stop names: another app's session of the same id is not this one.
          if (rec?.instance !== config.instanceId || rec.appId !== appId) return;
          logger.info('session stopped by an operator', { session_id: id, reason });
          return s.sessions.close(id, 'stopped');
        }).catch((e) => logger.warn('stop not applied', { session_id: id, error: (e as Error).message }));
      },
    });
  } catch (e) {
    await s.close();
    throw e;
  }
  s.reaper.startHeartbeat();
  s.sessions.startSweeping();
  const { shutdown, http, server, port, url } = await serveApp(config, logger, s, createBridgeApp);
  s.sessions.launcher.callbackUrl = config.BACKEND_BRIDGE_INTERNAL_URL?.replace(/\/+$/, '') ?? url;
  // Drains in order: HTTP, every agent server of this instance (sessions closed), sockets, Redis.
  shutdown
    .addServer('http', server)
    .add('agent servers', () => s.sessions.shutdown())
    .add('websockets', () => http.closeSockets())
    .add('alive key', () => s.reaper.stop())
    .add('services', () => s.close());
  const ready = {
    message: 'bridge listening',
    fields: { port, instance: config.instanceId, max_servers: config.OPENCODE_MAX_SERVERS, sandbox: s.sandbox.describe(), ports: `${config.OPENCODE_BASE_PORT}-${config.OPENCODE_MAX_PORT}` },
  };
  // SIGHUP too: a closed terminal must not leave agent servers behind.
  return { s, url, port, shutdown, ready, signals: ['SIGTERM', 'SIGINT', 'SIGHUP'] };
}

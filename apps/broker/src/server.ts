import { GracefulShutdown, listen, type Logger, type RunningProcess } from '@tessera/kit';
import { createBrokerApp } from './app';
import type { BrokerConfig } from './config';
import { createBrokerServices, type BrokerServices } from './services';

export interface RunningBroker extends RunningProcess {
  s: BrokerServices;
  url: string;
  port: number;
  /** Drains in order: HTTP (in-flight requests finish), then the runtime's connections and Redis. */
  shutdown: GracefulShutdown;
}

/** The session broker as deployed; main.ts and the integration tests both start it here. */
export async function startBrokerServer(config: BrokerConfig, logger: Logger): Promise<RunningBroker> {
  const shutdown = new GracefulShutdown(logger, config.SHUTDOWN_TIMEOUT_MS);
  const s = createBrokerServices(config, logger);
  const http = createBrokerApp(s, { isShuttingDown: () => shutdown.shuttingDown });
  const { server, port, url } = await listen(http.app, config.PORT, config.HOST);
  shutdown.addServer('http', server).add('services', () => s.close());
  const ready = { message: 'broker listening', fields: { port, runtime: config.RUNTIME_URL, app_id: config.APP_ID, public_ws_url: config.PUBLIC_WS_URL } };
  return { s, url, port, shutdown, ready };
}

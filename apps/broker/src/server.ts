import { serveApp, type Logger, type RunningService } from '@tessera/kit';
import { createBrokerApp } from './app';
import type { BrokerConfig } from './config';
import { createBrokerServices, type BrokerServices } from './services';

export type RunningBroker = RunningService<BrokerServices>;

/**
 * The session broker as deployed; main.ts and the integration tests both start it here. Drains in
 * order: HTTP (in-flight requests finish), then the runtime's connections and Redis.
 */
export async function startBrokerServer(config: BrokerConfig, logger: Logger): Promise<RunningBroker> {
  const s = createBrokerServices(config, logger);
  const { shutdown, server, port, url } = await serveApp(config, logger, s, createBrokerApp);
  shutdown.addServer('http', server).add('services', () => s.close());
  const ready = { message: 'broker listening', fields: { port, runtime: config.RUNTIME_URL, app_id: config.APP_ID, public_ws_url: config.PUBLIC_WS_URL } };
  return { s, url, port, shutdown, ready };
}

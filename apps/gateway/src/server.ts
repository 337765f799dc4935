import { GracefulShutdown, listen, type Logger, type RunningProcess } from '@tessera/kit';
import { createGatewayApp } from './app';
import type { GatewayConfig } from './config';
import { createGatewayServices, type GatewayServices } from './services';

export interface RunningGateway extends RunningProcess {
  s: GatewayServices;
  url: string;
  port: number;
  /** Stops the gateway: relayed WebSockets closed with 1001, in-flight requests drained, pools and Redis released. */
  shutdown: GracefulShutdown;
}

/**
 * The gateway as deployed; main.ts and the integration tests both start it here. The shutdown
 * order: first the relayed WebSockets (1001 to each client, while the server still answers), then
 * the server (in-flight proxied requests finish), then the pools and Redis.
 */
export async function startGatewayServer(config: GatewayConfig, logger: Logger): Promise<RunningGateway> {
  const shutdown = new GracefulShutdown(logger, config.SHUTDOWN_TIMEOUT_MS);
  const s = createGatewayServices(config, logger);
  const http = createGatewayApp(s, { isShuttingDown: () => shutdown.shuttingDown });
  const { server, port, url } = await listen(http.app, config.PORT, config.HOST);
  http.attach(server);
  shutdown
    .add('proxied websockets', () => http.closeSockets())
    .addServer('http', server)
    .add('services', () => s.close());
  return { s, url, port, shutdown, ready: { message: 'gateway listening', fields: { port } } };
}

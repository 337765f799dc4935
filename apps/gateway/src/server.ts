import { serveApp, type Logger, type RunningService } from '@tessera/kit';
import { createGatewayApp } from './app';
import type { GatewayConfig } from './config';
import { createGatewayServices, type GatewayServices } from './services';

export type RunningGateway = RunningService<GatewayServices>;

/**
 * The gateway as deployed; main.ts and the integration tests both start it here. The shutdown
 * order: first the relayed WebSockets (1001 to each client, while the server still answers), then
 * the server (in-flight proxied requests finish), then the pools and Redis.
 */
export async function startGatewayServer(config: GatewayConfig, logger: Logger): Promise<RunningGateway> {
  const s = createGatewayServices(config, logger);
  const { shutdown, http, server, port, url } = await serveApp(config, logger, s, createGatewayApp);
  shutdown
    .add('proxied websockets', () => http.closeSockets())
    .addServer('http', server)
    .add('services', () => s.close());
  return { s, url, port, shutdown, ready: { message: 'gateway listening', fields: { port } } };
}

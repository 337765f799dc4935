import { createLogger, createRedis, GracefulShutdown, listen } from '@tessera/kit';
import { loadGatewayConfig } from './config';
import { createGatewayApp } from './app';

async function main() {
  const config = loadGatewayConfig();
  const logger = createLogger('gateway', config.LOG_LEVEL);
  const shutdown = new GracefulShutdown(logger, config.SHUTDOWN_TIMEOUT_MS);
  const redis = createRedis(config.REDIS_URL, logger, 'gateway');
  const { app } = createGatewayApp({ config, logger, redis, isShuttingDown: () => shutdown.shuttingDown });
  const { server, port } = await listen(app, config.PORT, config.HOST);
  shutdown.addServer('http', server).add('redis', () => redis.quit()).listen();
  logger.info('gateway listening', { port });
}

main().catch((err) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});

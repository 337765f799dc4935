import { createLogger, createRedis } from '@tessera/kit';
import { loadGatewayConfig } from './config';
import { startGateway } from './app';

async function main() {
  const config = loadGatewayConfig();
  const logger = createLogger('gateway', config.LOG_LEVEL);
  // Rate limiting must not wait on a Redis that is away: a command fails fast and the limiter lets the request through.
  const redis = createRedis(config.REDIS_URL, logger, 'gateway', { maxRetriesPerRequest: 1, enableOfflineQueue: false, enableAutoPipelining: true });
  const gw = await startGateway({ config, logger, redis }, config.PORT, config.HOST);
  gw.shutdown.add('redis', () => redis.quit()).listen();
  logger.info('gateway listening', { port: gw.port });
}

main().catch((err) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});

import { createLogger, createRedis } from '@tessera/kit';
import { loadBrokerConfig } from './config';
import { startBroker } from './app';

async function main() {
  const config = loadBrokerConfig();
  const logger = createLogger('broker', config.LOG_LEVEL);
  const redis = createRedis(config.REDIS_URL, logger, 'broker');
  const broker = await startBroker({ config, logger, redis }, config.PORT, config.HOST);
  broker.shutdown.add('redis', () => redis.quit()).listen();
  logger.info('broker listening', { port: broker.port, runtime: config.RUNTIME_URL, app_id: config.APP_ID, public_ws_url: config.PUBLIC_WS_URL });
}

main().catch((err) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});

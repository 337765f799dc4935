import { createLogger } from '@tessera/kit';
import { loadObservabilityConfig } from './config';
import { startObservabilityServer } from './server';

async function main() {
  const config = loadObservabilityConfig();
  const logger = createLogger('observability', config.LOG_LEVEL);
  const o = await startObservabilityServer(config, logger);
  o.shutdown.listen();
  logger.info('observability listening', { port: o.port, ingest_worker: config.INGEST_WORKER, retention_days: config.RETENTION_DAYS });
}

main().catch((err) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});

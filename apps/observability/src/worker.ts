import { createLogger, GracefulShutdown } from '@tessera/kit';
import { loadObservabilityConfig } from './config';
import { startIngestWorker } from './ingest/queue-worker';
import { createObservabilityServices } from './services';

/** Process entry of a queue consumer without HTTP (`node dist/apps/observability/worker.js`), to scale ingest apart. */
async function main() {
  const config = loadObservabilityConfig();
  const logger = createLogger('observability-worker', config.LOG_LEVEL);
  const shutdown = new GracefulShutdown(logger, config.SHUTDOWN_TIMEOUT_MS);
  const s = createObservabilityServices(config, logger, 'worker');
  const w = await startIngestWorker(s);
  shutdown
    .add('ingest worker', () => w.close())
    .add('services', () => s.close())
    .listen();
  logger.info('observability worker ready', { concurrency: config.INGEST_CONCURRENCY });
}

main().catch((err) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});

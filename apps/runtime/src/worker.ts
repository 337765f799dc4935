import { createLogger, GracefulShutdown } from '@tessera/kit';
import { loadRuntimeConfig } from './config';
import { createRuntimeServices } from './services';
import { startTurnWorker } from './turns/turn-worker';

/** Process entry of the turn worker (`node dist/apps/runtime/worker.js`). */
async function main() {
  const config = loadRuntimeConfig();
  const logger = createLogger('runtime-worker', config.LOG_LEVEL);
  const shutdown = new GracefulShutdown(logger, config.SHUTDOWN_TIMEOUT_MS);
  const s = createRuntimeServices(config, logger, 'worker');
  const w = await startTurnWorker(s);
  shutdown
    .add('worker', () => w.close())
    .add('services', () => s.close())
    .listen();
  logger.info('runtime worker ready', { concurrency: config.WORKER_CONCURRENCY, workflows: [...s.workflows.keys()] });
}

main().catch((err) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});

import { createLogger } from '@tessera/kit';
import { loadRuntimeConfig } from './config';
import { startRuntimeServer } from './server';

async function main() {
  const config = loadRuntimeConfig();
  const logger = createLogger('runtime', config.LOG_LEVEL);
  const rt = await startRuntimeServer(config, logger, { worker: config.EMBEDDED_WORKER });
  rt.shutdown.listen();
  logger.info('runtime listening', { port: rt.port, workflows: [...rt.s.workflows.keys()], embedded_worker: config.EMBEDDED_WORKER });
}

main().catch((err) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});

import { createLogger } from '@tessera/kit';
import { loadBridgeConfig } from './config';
import { startBridgeServer } from './server';

async function main() {
  const config = loadBridgeConfig();
  const logger = createLogger('bridge', config.LOG_LEVEL);
  const b = await startBridgeServer(config, logger);
  // SIGHUP too: a closed terminal must not leave agent servers behind.
  b.shutdown.listen(['SIGTERM', 'SIGINT', 'SIGHUP']);
  logger.info('bridge listening', { port: b.port, instance: config.instanceId, max_servers: config.OPENCODE_MAX_SERVERS, sandbox: b.s.sandbox.describe(), ports: `${config.OPENCODE_BASE_PORT}-${config.OPENCODE_MAX_PORT}` });
}

main().catch((err) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});

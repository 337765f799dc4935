import { createLogger } from '@tessera/kit';
import { loadAgentManagerConfig } from './config';
import { startAgentManagerServer } from './server';

async function main() {
  const config = loadAgentManagerConfig();
  const logger = createLogger('agent-manager', config.LOG_LEVEL);
  const am = await startAgentManagerServer(config, logger);
  am.shutdown.listen();
  logger.info('agent manager listening', { port: am.port, project_dir: config.AGENT_MANAGER_PROJECT_DIR, default_app: config.DEFAULT_APP_ID, apps: (await am.s.stores.apps()).length });
}

main().catch((err) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});

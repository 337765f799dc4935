import { serveApp, type Logger, type RunningService } from '@tessera/kit';
import { createAgentManagerApp } from './app';
import type { AgentManagerConfig } from './config';
import { createAgentManagerServices, type AgentManagerServices } from './services';
import { migrateToApps } from './store/migrate';
import { AgentWatcher } from './watch/agent-watcher';

/** Drains in order: HTTP, the file watcher (looks in progress finish), Redis. */
export interface RunningAgentManager extends RunningService<AgentManagerServices> {
  watcher: AgentWatcher;
}

/**
 * The agent manager as deployed: agents of before apps moved into DEFAULT_APP_ID, every app's folder looked over (hand edits made while
 * no instance ran are recorded), the file watcher, HTTP. main.ts and the integration tests both
 * start it here, so the tests run what production runs.
 */
export async function startAgentManagerServer(config: AgentManagerConfig, logger: Logger): Promise<RunningAgentManager> {
  const s = createAgentManagerServices(config, logger);
  try {
    // The folders of before apps become the default app's, before anything looks at them.
    await migrateToApps(s.layout, config.DEFAULT_APP_ID, config.LOCK_STALE_MS, logger);
    await s.stores.of(config.DEFAULT_APP_ID).init();
  } catch (e) {
    await s.close();
    throw new Error(`cannot use AGENT_MANAGER_PROJECT_DIR (${config.AGENT_MANAGER_PROJECT_DIR}): ${(e as Error).message}`);
  }
  const watcher = new AgentWatcher(s.layout, s.stores, logger, { pollMs: config.WATCH_POLL_MS, reconcileIntervalMs: config.RECONCILE_INTERVAL_MS });
  await watcher.start();
  const { shutdown, server, port, url } = await serveApp(config, logger, s, createAgentManagerApp);
  shutdown
    .addServer('http', server)
    .add('file watcher', () => watcher.close())
    .add('services', () => s.close());
  const ready = { message: 'agent manager listening', fields: { port, project_dir: config.AGENT_MANAGER_PROJECT_DIR, default_app: config.DEFAULT_APP_ID, apps: (await s.stores.apps()).length } };
  return { s, url, port, watcher, shutdown, ready };
}

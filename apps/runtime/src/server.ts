import { GracefulShutdown, serveApp, type Logger, type RunningProcess, type RunningService } from '@tessera/kit';
import { createRuntimeApp } from './app';
import type { RuntimeConfig } from './config';
import { createRuntimeServices, type RuntimeServices } from './services';
import { stopIdleChat } from './turns/stop';
import { startTurnWorker } from './turns/turn-worker';

/** Drains in order: HTTP, sockets (1001), the worker's turns (handed back), connections. */
export interface RunningRuntime extends RunningService<RuntimeServices> {
  worker: Awaited<ReturnType<typeof startTurnWorker>> | null;
}

/**
 * The runtime's API process as deployed: services, HTTP and chat sockets on one server, stops of
 * idle chats, and with `worker` (default EMBEDDED_WORKER) the turn worker in the same process. main.ts and the integration
 * tests both start it here, so the tests run what production runs.
 */
export async function startRuntimeServer(config: RuntimeConfig, logger: Logger, opts: { worker: boolean } = { worker: config.EMBEDDED_WORKER }): Promise<RunningRuntime> {
  const s = createRuntimeServices(config, logger, 'api');
  const { shutdown, http, server, port, url } = await serveApp(config, logger, s, createRuntimeApp);
  await s.feed.onControl((m) => {
    if (m.action !== 'stop') return;
    // A stop names its session's app: the same id in another app is another app's session, not this chat.
    void s.chats
      .get(m.session_id)
      .then((chat) => chat?.appId === m.app_id && stopIdleChat(s, m.session_id, m.reason))
      .catch((e: Error) => logger.warn('stop failed', { chat_id: m.session_id, error: e.message }));
  });
  const worker = opts.worker ? await startTurnWorker(s) : null;
  shutdown
    .addServer('http', server)
    .add('websockets', () => http.closeSockets())
    .add('worker', () => worker?.close())
    .add('services', () => s.close());
  const ready = { message: 'runtime listening', fields: { port, workflows: [...s.workflows.keys()], embedded_worker: opts.worker } };
  return { s, url, port, worker, shutdown, ready };
}

/** The turn worker as its own process (worker.ts): its turns are handed back on shutdown, then the connections close. */
export async function startRuntimeWorker(config: RuntimeConfig, logger: Logger): Promise<RunningProcess> {
  const shutdown = new GracefulShutdown(logger, config.SHUTDOWN_TIMEOUT_MS);
  const s = createRuntimeServices(config, logger, 'worker');
  const w = await startTurnWorker(s);
  shutdown.add('worker', () => w.close()).add('services', () => s.close());
  return { shutdown, ready: { message: 'runtime worker ready', fields: { concurrency: config.WORKER_CONCURRENCY, workflows: [...s.workflows.keys()] } } };
}

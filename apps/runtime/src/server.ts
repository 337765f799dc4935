import { GracefulShutdown, listen, type Logger } from '@tessera/kit';
import { createRuntimeApp } from './app';
import type { RuntimeConfig } from './config';
import { createRuntimeServices, type RuntimeServices } from './services';
import { stopIdleChat } from './turns/stop';
import { startTurnWorker } from './turns/turn-worker';

export interface RunningRuntime {
  s: RuntimeServices;
  url: string;
  port: number;
  worker: Awaited<ReturnType<typeof startTurnWorker>> | null;
  /** Drains in order: HTTP, sockets (1001), the worker's turns (handed back), connections. */
  shutdown: GracefulShutdown;
}

/**
 * The runtime's API process as deployed: services, HTTP and chat sockets on one server, stops of
 * idle chats, and with `worker` the turn worker in the same process. main.ts and the integration
 * tests both start it here, so the tests run what production runs.
 */
export async function startRuntimeServer(config: RuntimeConfig, logger: Logger, opts: { worker: boolean }): Promise<RunningRuntime> {
  const shutdown = new GracefulShutdown(logger, config.SHUTDOWN_TIMEOUT_MS);
  const s = createRuntimeServices(config, logger, 'api');
  const { app, hub, attach } = createRuntimeApp(s, { isShuttingDown: () => shutdown.shuttingDown });
  const { server, port, url } = await listen(app, config.PORT, config.HOST);
  attach(server);
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
    .add('websockets', () => hub.close())
    .add('worker', () => worker?.close())
    .add('services', () => s.close());
  return { s, url, port, worker, shutdown };
}

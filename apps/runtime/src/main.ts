import { createLogger, GracefulShutdown, listen } from '@tessera/kit';
import { createRuntimeApp } from './app';
import { loadRuntimeConfig } from './config';
import { createRuntimeServices } from './services';
import { stopIdleChat } from './turns/stop';
import { startTurnWorker } from './turns/turn-worker';

async function main() {
  const config = loadRuntimeConfig();
  const logger = createLogger('runtime', config.LOG_LEVEL);
  const shutdown = new GracefulShutdown(logger, config.SHUTDOWN_TIMEOUT_MS);
  const s = createRuntimeServices(config, logger, 'api');
  const { app, hub, attach } = createRuntimeApp(s, { isShuttingDown: () => shutdown.shuttingDown });
  const { server, port } = await listen(app, config.PORT, config.HOST);
  attach(server);
  await s.feed.onControl((m) => {
    if (m.action === 'stop') void stopIdleChat(s, m.session_id, m.reason).catch((e: Error) => logger.warn('stop failed', { chat_id: m.session_id, error: e.message }));
  });
  const worker = config.EMBEDDED_WORKER ? await startTurnWorker(s) : null;
  shutdown
    .addServer('http', server)
    .add('websockets', () => hub.close())
    .add('worker', () => worker?.close())
    .add('services', () => s.close())
    .listen();
  logger.info('runtime listening', { port, workflows: [...s.workflows.keys()], embedded_worker: config.EMBEDDED_WORKER });
}

main().catch((err) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});

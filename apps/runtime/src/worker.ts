import { Queue } from '@tessera/contracts';
import { bullConnection, createLogger, createTypedWorker, GracefulShutdown } from '@tessera/kit';
import { loadRuntimeConfig } from './config';
import { createRuntimeServices, type RuntimeServices } from './services';
import { TurnRunner } from './turns/turn-runner';

/**
 * The turn worker: a separate process entry of the runtime, so that sockets and workers scale
 * apart. BullMQ's stalled-job check gives a dead worker's turn to another within seconds.
 */
export async function startTurnWorker(s: RuntimeServices) {
  const runner = new TurnRunner({
    chats: s.chats,
    inputs: s.inputs,
    toolCalls: s.toolCalls,
    timeline: s.timeline,
    feed: s.feed,
    lease: s.lease,
    workflows: s.workflows,
    providers: s.providers,
    logger: s.logger,
    observe: s.observe,
  });
  await s.feed.onControl((m) => {
    if (m.action === 'stop') runner.stop(m.session_id, m.reason ?? 'stopped by request');
  });
  const worker = createTypedWorker(Queue.RuntimeTurns, bullConnection(s.config.REDIS_URL), s.logger, (data, job, token) => runner.process(data, job, token), {
    prefix: s.config.BULL_PREFIX,
    concurrency: s.config.WORKER_CONCURRENCY,
    lockDuration: 5_000,
    stalledInterval: 2_000,
    maxStalledCount: 5,
  });
  await worker.waitUntilReady();
  return {
    runner,
    worker,
    async close() {
      runner.abortAll();
      await worker.close();
    },
  };
}

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

if (require.main === module) {
  main().catch((err) => {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  });
}

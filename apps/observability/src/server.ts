import { GracefulShutdown, serveApp, type Logger, type RunningProcess, type RunningService } from '@tessera/kit';
import { createObservabilityApp } from './app';
import type { ObservabilityConfig } from './config';
import { startIngestWorker } from './ingest/queue-worker';
import { IdleSessions } from './ingest/idle-sessions';
import { Retention } from './ingest/retention';
import { createObservabilityServices, type ObservabilityServices } from './services';

/** Drains in order: HTTP, live sockets (1001), the queue worker's batches, the sweeps, connections. */
export interface RunningObservability extends RunningService<ObservabilityServices> {
  worker: Awaited<ReturnType<typeof startIngestWorker>> | null;
  retention: Retention;
  idle: IdleSessions;
}

/**
 * The observability service as deployed: HTTP and the live socket on one server, the consumer
 * of the runtime's event queue (INGEST_WORKER) and retention. main.ts and the integration tests
 * both start it here, so the tests run what production runs.
 */
export async function startObservabilityServer(config: ObservabilityConfig, logger: Logger): Promise<RunningObservability> {
  const s = createObservabilityServices(config, logger, 'api');
  const { shutdown, http, server, port, url } = await serveApp(config, logger, s, createObservabilityApp);
  const worker = config.INGEST_WORKER ? await startIngestWorker(s) : null;
  const retention = new Retention(s).start();
  const idle = new IdleSessions(s).start();
  shutdown
    .addServer('http', server)
    .add('websockets', () => http.closeSockets())
    .add('ingest worker', () => worker?.close())
    .add('retention', () => retention.close())
    .add('idle sessions', () => idle.close())
    .add('services', () => s.close());
  const ready = { message: 'observability listening', fields: { port, ingest_worker: config.INGEST_WORKER, retention_days: config.RETENTION_DAYS } };
  return { s, url, port, worker, retention, idle, shutdown, ready };
}

/** The queue consumer without HTTP (worker.ts), to scale ingest apart: its batches drain, then the connections close. */
export async function startObservabilityWorker(config: ObservabilityConfig, logger: Logger): Promise<RunningProcess> {
  const shutdown = new GracefulShutdown(logger, config.SHUTDOWN_TIMEOUT_MS);
  const s = createObservabilityServices(config, logger, 'worker');
  const w = await startIngestWorker(s).catch(async (e: unknown) => {
    await s.close();
    throw e;
  });
  shutdown.add('ingest worker', () => w.close()).add('services', () => s.close());
  return { shutdown, ready: { message: 'observability worker ready', fields: { concurrency: config.INGEST_CONCURRENCY } } };
}

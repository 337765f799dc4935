import { GracefulShutdown, listen, type Logger, type RunningProcess } from '@tessera/kit';
import { createDocumentApp } from './app';
import type { DocumentServerConfig } from './config';
import { createDocumentServices, type DocumentServices } from './services';

export interface RunningDocumentServer extends RunningProcess {
  s: DocumentServices;
  url: string;
  port: number;
  /** Drains in order: HTTP (uploads and downloads in flight), then the database and blob store. */
  shutdown: GracefulShutdown;
}

/** The document server as deployed; main.ts and the integration tests both start it here. */
export async function startDocumentServer(config: DocumentServerConfig, logger: Logger): Promise<RunningDocumentServer> {
  const shutdown = new GracefulShutdown(logger, config.SHUTDOWN_TIMEOUT_MS);
  const s = await createDocumentServices(config, logger);
  const http = createDocumentApp(s, { isShuttingDown: () => shutdown.shuttingDown });
  const { server, port, url } = await listen(http.app, config.PORT, config.HOST);
  // An upload of hundreds of megabytes over a slow link takes longer than node's 5-minute default.
  server.requestTimeout = 0;
  shutdown.addServer('http', server).add('services', () => s.close());
  const ready = { message: 'document server listening', fields: { port, blob_store: config.BLOB_STORE, max_bytes: config.DOCUMENT_MAX_BYTES } };
  return { s, url, port, shutdown, ready };
}

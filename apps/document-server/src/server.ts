import { serveApp, type Logger, type RunningService } from '@tessera/kit';
import { createDocumentApp } from './app';
import type { DocumentServerConfig } from './config';
import { createDocumentServices, type DocumentServices } from './services';

export type RunningDocumentServer = RunningService<DocumentServices>;

/**
 * The document server as deployed; main.ts and the integration tests both start it here. Drains in
 * order: HTTP (uploads and downloads in flight), then the database and blob store.
 */
export async function startDocumentServer(config: DocumentServerConfig, logger: Logger): Promise<RunningDocumentServer> {
  const s = await createDocumentServices(config, logger);
  const { shutdown, server, port, url } = await serveApp(config, logger, s, createDocumentApp);
  // An upload of hundreds of megabytes over a slow link takes longer than node's 5-minute default.
  server.requestTimeout = 0;
  shutdown.addServer('http', server).add('services', () => s.close());
  const ready = { message: 'document server listening', fields: { port, blob_store: config.BLOB_STORE, max_bytes: config.DOCUMENT_MAX_BYTES } };
  return { s, url, port, shutdown, ready };
}

import { createLogger } from '@tessera/kit';
import { loadDocumentServerConfig } from './config';
import { startDocumentServer } from './server';

async function main() {
  const config = loadDocumentServerConfig();
  const logger = createLogger('document-server', config.LOG_LEVEL);
  const d = await startDocumentServer(config, logger);
  d.shutdown.listen();
  logger.info('document server listening', { port: d.port, blob_store: config.BLOB_STORE, max_bytes: config.DOCUMENT_MAX_BYTES });
}

main().catch((err) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});

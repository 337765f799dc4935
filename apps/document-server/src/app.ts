import { readyWhen, serviceApp, type ServiceApp } from '@tessera/kit';
import { routeGuards } from './domain/access';
import { documentRoutes } from './routes/documents';
import { uploadRoutes } from './routes/upload';
import type { DocumentServices } from './services';

/** The document server's HTTP app, built from its services (tests call this through server.ts). */
export function createDocumentApp(s: DocumentServices, opts: { isShuttingDown?: () => boolean } = {}): ServiceApp {
  return serviceApp({
    service: 'document-server',
    api: {
      title: 'Tessera document server',
      description:
        "Documents of an app (document 001 §3, §4.2): uploads streamed into a content-addressed blob store (a directory or S3), tags and a description, filtered pages, ranged downloads. A bearer token reaches its apps' documents (an operator's: all of them; anyone else's: their own uploads); Tessera services use the service key.",
      readySummary: 'PostgreSQL and the blob store reachable',
    },
    services: s,
    health: {
      ready: {
        database: readyWhen.postgres(s.db.pool),
        blobs: () => s.blobs.check(),
      },
    },
    isShuttingDown: opts.isShuttingDown,
    guards: routeGuards(s.scopeOf),
    routes: (routes) => {
      uploadRoutes(routes, s);
      documentRoutes(routes, s);
    },
  });
}

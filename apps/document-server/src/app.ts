import { buildOpenApi, HealthReply, type RouteSpec } from '@tessera/contracts';
import { createHttpApp, declareRoutes, finalizeHttpApp, healthRouter } from '@tessera/kit';
import { routeGuards } from './domain/access';
import { documentRoutes } from './routes/documents';
import { uploadRoutes } from './routes/upload';
import type { DocumentServices } from './services';

/** The API document, with the routes as declared (routes/). */
function document(routes: RouteSpec[]) {
  return buildOpenApi({
    title: 'Tessera document server',
    version: '0.1.0',
    description:
      "Documents of an app (document 001 §3, §4.2): uploads streamed into a content-addressed blob store (a directory or S3), tags and a description, filtered pages, ranged downloads. A bearer token reaches its apps' documents (an operator's: all of them; anyone else's: their own uploads); Tessera services use the service key.",
    routes: [
      { method: 'get', path: '/health', summary: 'Liveness', access: 'public', responses: { 200: { description: 'alive', schema: HealthReply } } },
      { method: 'get', path: '/ready', summary: 'PostgreSQL and the blob store reachable', access: 'public', responses: { 200: { description: 'ready', schema: HealthReply } } },
      ...routes,
    ],
  });
}

/** The document server's HTTP app, built from its services (tests call this through server.ts). */
export function createDocumentApp(s: DocumentServices, opts: { isShuttingDown?: () => boolean } = {}) {
  const app = createHttpApp({ logger: s.logger, metrics: s.metrics, corsOrigins: s.config.CORS_ORIGINS, bodyLimit: s.config.BODY_LIMIT });
  app.use(
    healthRouter({
      service: 'document-server',
      ready: {
        database: async () => void (await s.db.pool.query('SELECT 1')),
        blobs: () => s.blobs.check(),
      },
      isShuttingDown: opts.isShuttingDown,
    }),
  );
  app.use(s.metrics.router());
  const routes = declareRoutes(routeGuards(s.scopeOf));
  uploadRoutes(routes, s);
  documentRoutes(routes, s);
  const openapi = document(routes.specs);
  app.get('/openapi.json', (_req, res) => res.json(openapi));
  app.use(routes.router);
  finalizeHttpApp(app, s.logger, openapi);
  return app;
}

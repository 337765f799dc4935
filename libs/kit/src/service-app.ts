import type { Server } from 'node:http';
import type { Express, RequestHandler, Router } from 'express';
import type { z } from 'zod';
import { buildOpenApi, HealthReply, type Access, type RouteSpec } from '@tessera/contracts';
import { healthRouter, type HealthOptions } from './health';
import { directLane } from './direct';
import { createHttpApp, finalizeHttpApp } from './http';
import type { Logger } from './logger';
import type { Metrics } from './metrics';
import { declareRoutes, type DeclaredRoutes, type Guards } from './routes';

/** A service's API document: its title and description; the routes come from what it declares. */
export interface ServiceApi {
  title: string;
  description?: string;
  /** What `/ready` checks, in a few words ("Redis and PostgreSQL reachable"). */
  readySummary: string;
  /** What `/health` tells beyond liveness, and its body when the service adds to it (the bridge's capacity). */
  healthSummary?: string;
  healthSchema?: z.ZodType;
  /** The body of `/ready` when the service adds to it (the gateway's services). */
  readySchema?: z.ZodType;
  /** Tags of `/health` and `/ready` in the document. */
  tags?: string[];
  /** Routes the service answers outside `declareRoutes` (the gateway's own documents and metrics). */
  extraRoutes?: RouteSpec[];
}

/** `/health` and `/ready` as every service's document lists them. */
export function healthSpecs(api: Pick<ServiceApi, 'readySummary' | 'healthSummary' | 'healthSchema' | 'readySchema' | 'tags'>): RouteSpec[] {
  return [
    { method: 'get', path: '/health', summary: api.healthSummary ?? 'Liveness', tags: api.tags, access: 'public', responses: { 200: { description: 'alive', schema: api.healthSchema ?? HealthReply } } },
    {
      method: 'get',
      path: '/ready',
      summary: `Readiness: ${api.readySummary}`,
      tags: api.tags,
      access: 'public',
      responses: { 200: { description: 'ready (possibly degraded)', schema: api.readySchema ?? HealthReply }, 503: { description: 'not ready', schema: api.readySchema ?? HealthReply } },
    },
  ];
}

/** A service's OpenAPI document: health first, then its routes in the order declared. */
export function serviceDocument(api: ServiceApi, routes: RouteSpec[]): Record<string, unknown> {
  return buildOpenApi({ title: api.title, version: '0.1.0', description: api.description, routes: [...healthSpecs(api), ...(api.extraRoutes ?? []), ...routes] });
}

/** What every `create<App>App` returns: the express app, its document, and its sockets' life. */
export interface ServiceApp {
  app: Express;
  /** The document served at `/openapi.json`. */
  openapi: Record<string, unknown>;
  /** Serves the app's WebSockets on the server it listens with (nothing for an app without sockets). */
  attach(server: Server): void;
  /** Closes the app's WebSockets with 1001 (a step of the shutdown order server.ts declares). */
  closeSockets(): Promise<void>;
}

export interface ServiceAppOptions<A extends Access> {
  /** The name `/health` answers with. */
  service: string;
  api: ServiceApi;
  /** What every service's services.ts holds: its logger, metrics, and the config's CORS origins and body limit. */
  services: { logger: Logger; metrics: Metrics; config: { CORS_ORIGINS: string[]; BODY_LIMIT?: string } };
  /** JSON body limit, when not the config's BODY_LIMIT (default 1mb). */
  bodyLimit?: string;
  health: Omit<HealthOptions, 'service' | 'isShuttingDown'>;
  isShuttingDown?: () => boolean;
  /** The access rules the service offers, and its routes, each declared once with one of them. */
  guards: Guards<A>;
  routes: (routes: DeclaredRoutes<A>) => void;
  /** Middleware in front of the declared routes (the runtime's MCP challenge). */
  beforeRoutes?: RequestHandler[];
  /** The app's sockets: attached to the server, closed by the shutdown. */
  sockets?: { attach(server: Server): void; close(): Promise<unknown> | unknown };
  /**
   * The gateway only: the express app to build on (it streams bodies: no JSON parser), what it
   * serves at `/openapi.json` (every service's document merged), and its routers outside the
   * declared routes (the console, the AsyncAPI document). Its document is not checked against them.
   */
  edge?: { base: Express; openapi: Router; undeclared: Router[] };
}

/**
 * The one HTTP app every service is: request ids, security headers, CORS, access log, JSON body
 * (createHttpApp), `/health` and `/ready`, `/metrics`, the service's OpenAPI document at
 * `/openapi.json`, the routes it declares (each with its access rule), then 404 and the one error
 * shape (finalizeHttpApp, which refuses to start an app answering a route its document lacks).
 */
export function serviceApp<A extends Access>(o: ServiceAppOptions<A>): ServiceApp {
  const { logger, metrics, config } = o.services;
  const app = o.edge?.base ?? createHttpApp({ logger, metrics, corsOrigins: config.CORS_ORIGINS, bodyLimit: o.bodyLimit ?? config.BODY_LIMIT });
  if (o.edge) app.use(metrics.httpMiddleware());
  const routes = declareRoutes(o.guards);
  o.routes(routes);
  const openapi = serviceDocument(o.api, routes.specs);
  app.use(healthRouter({ ...o.health, service: o.service, isShuttingDown: o.isShuttingDown }));
  app.use(metrics.router());
  if (o.edge) app.use(o.edge.openapi);
  else app.get('/openapi.json', (_req, res) => void res.json(openapi));
  for (const mw of o.beforeRoutes ?? []) app.use(mw);
  app.use(routes.router);
  for (const r of o.edge?.undeclared ?? []) app.use(r);
  finalizeHttpApp(app, logger, o.edge ? undefined : openapi);
  // The routes declared `direct` run what runs before them in express too (beforeRoutes).
  const direct = routes.direct.map((r) => ({ ...r, chain: [...(o.beforeRoutes ?? []), ...r.chain] }));
  return {
    app,
    openapi,
    attach: (server) => {
      // The server was made with the app as its request handler: the direct lane goes in its place
      // and hands it every request that is not a plain one to a direct route.
      if (direct.length && !o.edge) server.off('request', app).on('request', directLane(app, { routes: direct, logger, metrics, bodyLimit: o.bodyLimit ?? config.BODY_LIMIT ?? '1mb' }));
      o.sockets?.attach(server);
    },
    closeSockets: async () => void (await o.sockets?.close()),
  };
}

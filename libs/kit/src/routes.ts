import { Router, type Request, type RequestHandler, type Response } from 'express';
import type { z } from 'zod';
import { ErrorCode, type Access, type RouteSpec } from '@tessera/contracts';
import { BadRequest, parseOr400 } from './errors';

/**
 * How one service enforces each access rule it offers (`Access` in the contracts says what each
 * means). A rule the service does not offer cannot be declared on its routes: the type refuses it.
 */
export type Guards<A extends Access> = Record<A, RequestHandler | RequestHandler[]>;

type Parsed<T> = T extends z.ZodType ? z.output<T> : undefined;

/** A route's input, parsed with its contract schemas (a mismatch is a 400 naming the field). */
export interface RouteInput<S extends RouteSpec> {
  params: Parsed<S['params']>;
  query: Parsed<S['query']>;
  /** The JSON body; `undefined` when the spec has none or the body is not JSON (multipart). */
  body: S['bodyMediaType'] extends string ? undefined : Parsed<S['body']>;
}

export type RouteHandler<S extends RouteSpec> = (input: RouteInput<S>, req: Request, res: Response) => unknown;

export interface DeclaredRoutes<A extends Access> {
  /** Mount it on the app. */
  readonly router: Router;
  /** What was declared, in order: the service's OpenAPI routes. */
  readonly specs: RouteSpec[];
  /** The routes declared `direct`, for the kit's direct lane (direct.ts). */
  readonly direct: DeclaredDirect[];
  /**
   * Declares a route once: its OpenAPI entry, its access rule (the guard runs first), its input
   * parsed with the contract schemas, then the handler. Extra middleware (a multipart parser)
   * goes in `before`, after the guard. `direct`: served on node's objects before express when the
   * request is a plain one (direct.ts): for a route a protocol calls once per run.
   */
  route<S extends RouteSpec & { access: A }>(spec: S, handle: RouteHandler<S>, opts?: { before?: RequestHandler[]; direct?: boolean }): void;
}

/** A route declared `direct`: what the direct lane (direct.ts) needs to serve it as express would. */
export interface DeclaredDirect {
  method: string;
  /** The path as express declares it (`/api/agui/:app_id/:workflow_name`). */
  path: string;
  /** Whether the route reads a JSON body. */
  json: boolean;
  /** The guard(s), any `before`, then the route's runner: the handlers express calls. */
  chain: RequestHandler[];
}

/** `/agents/{name}` → `/agents/:name`. */
export function expressPath(openApiPath: string): string {
  return openApiPath.replace(/\{([A-Za-z_][A-Za-z0-9_]*)\}/g, ':$1');
}

/**
 * A service's routes, each declared once with its access rule (`routes.route(spec, handler)`).
 * Apps register no route by hand: the lint rule in eslint.config.mjs refuses `r.get(...)` and its
 * kin in `apps/*\/src`.
 */
export function declareRoutes<A extends Access>(guards: Guards<A>): DeclaredRoutes<A> {
  const router = Router();
  const specs: RouteSpec[] = [];
  const direct: DeclaredDirect[] = [];
  return {
    router,
    specs,
    direct,
    route(spec, handle, opts = {}) {
      const guard = guards[spec.access as A];
      if (!guard) throw new Error(`route ${spec.method.toUpperCase()} ${spec.path}: this service offers no "${spec.access}" access`);
      specs.push(spec);
      const run: RequestHandler = async (req, res) => {
        // No JSON arrived (no body, or another content type): an all-optional schema must not read it as `{}`.
        if (spec.body && !spec.bodyMediaType && req.body === undefined) {
          throw new BadRequest('invalid body: a JSON body is required (Content-Type: application/json)', { issues: [{ path: 'body', message: 'required' }] }, ErrorCode.ValidationFailed);
        }
        // The input is not a local of this frame: a streaming handler (AG-UI's, whose body is the
        // whole thread) can let it go while it streams.
        await handle(
          {
            params: spec.params ? parseOr400(spec.params, req.params, 'path') : undefined,
            query: spec.query ? parseOr400(spec.query, req.query, 'query') : undefined,
            body: spec.body && !spec.bodyMediaType ? parseOr400(spec.body, req.body, 'body') : undefined,
          } as RouteInput<typeof spec>,
          req,
          res,
        );
      };
      const chain = [...[guard].flat(), ...(opts.before ?? []), run];
      router[spec.method](expressPath(spec.path), ...chain);
      if (opts.direct) direct.push({ method: spec.method, path: expressPath(spec.path), json: !!spec.body && !spec.bodyMediaType, chain });
    },
  };
}

/** Every caller may reach a public route. */
export const openAccess: RequestHandler = (_req, _res, next) => next();

/** What every service answers for its operators and the gateway only (never forwarded: the gateway's INTERNAL_PATHS). */
const INTERNAL_ROUTES = ['get /metrics', 'get /openapi.json'];

interface Layer {
  route?: { path: unknown; methods: Record<string, boolean> };
  handle?: { stack?: Layer[] };
}

/**
 * Refuses to start an app that answers a route its API document does not declare with an access
 * rule (`x-tessera-access`): a route registered by hand, past `declareRoutes`, fails every test
 * that starts the app. Routers must be mounted at the root (they are: each holds whole paths).
 */
export function assertRoutesDeclared(app: { router: { stack: Layer[] } }, doc: Record<string, unknown>): void {
  const declared = new Set(INTERNAL_ROUTES);
  for (const [path, item] of Object.entries((doc.paths ?? {}) as Record<string, Record<string, { 'x-tessera-access'?: string }>>)) {
    for (const [method, op] of Object.entries(item)) if (op['x-tessera-access']) declared.add(`${method} ${expressPath(path)}`);
  }
  const undeclared: string[] = [];
  const walk = (stack: Layer[]) => {
    for (const layer of stack) {
      if (layer.route) {
        for (const method of Object.keys(layer.route.methods)) {
          const key = `${method} ${String(layer.route.path)}`;
          if (method !== '_all' && !declared.has(key)) undeclared.push(key);
        }
      } else if (layer.handle?.stack) walk(layer.handle.stack);
    }
  };
  walk(app.router.stack);
  if (undeclared.length) throw new Error(`routes without a declared access rule (declare them with declareRoutes): ${undeclared.join(', ')}`);
}

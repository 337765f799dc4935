import { z } from 'zod';
import { ErrorBody } from './common/errors';

/**
 * Routes described with their contract schemas, turned into an OpenAPI 3.1 document with zod 4's
 * `toJSONSchema` (JSON Schema 2020-12 is OpenAPI 3.1's schema dialect).
 */
export type HttpMethod = 'get' | 'post' | 'put' | 'patch' | 'delete';

/**
 * Who may call a route. Every rule acts within one app: a caller of another app sees what it would
 * see for a name that does not exist, and the service key never widens a caller's scope.
 * - `public`: anyone, no credential (liveness, the API document).
 * - `user`: any signed-in user of the app; what it names or lists is the user's own or the app's shared.
 * - `owner`: the owner of the named resource, an operator of its app, or a credential the resource
 *   itself handed out; anyone else gets the 404 of a missing name.
 * - `operator`: a token whose role claim holds the operator role, for its app(s).
 * - `service`: another Tessera service (the service key); the gateway never forwards such a route.
 * - `ingest`: an app's agents posting telemetry: an ingest key of the app (or the service key).
 */
export const ACCESS_RULES = ['public', 'user', 'owner', 'operator', 'service', 'ingest'] as const;
export type Access = (typeof ACCESS_RULES)[number];

export interface RouteSpec {
  method: HttpMethod;
  /** OpenAPI path template, e.g. `/api/chats/{app_id}/{workflow_name}/start`. */
  path: string;
  summary: string;
  tags?: string[];
  /** Who may call it (written into the document as `x-tessera-access`). */
  access: Access;
  params?: z.ZodObject;
  query?: z.ZodObject;
  body?: z.ZodType;
  /** Media type of the body when not JSON, e.g. multipart/form-data. */
  bodyMediaType?: string;
  responses: Record<number, { description: string; schema?: z.ZodType }>;
}

type JsonSchema = Record<string, unknown>;

/**
 * Named schemas (`.meta({ id })`) come out of zod as `$defs` with `#/$defs/X` references; in an
 * OpenAPI document they belong in `components.schemas`, where references resolve from the root.
 */
function hoist(json: JsonSchema, components: Record<string, unknown>): JsonSchema {
  const defs = (json.$defs ?? {}) as Record<string, JsonSchema>;
  delete json.$defs;
  const rewrite = (node: unknown): unknown => {
    if (Array.isArray(node)) return node.map(rewrite);
    if (node && typeof node === 'object') {
      const out: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(node)) out[k] = k === '$ref' && typeof v === 'string' ? v.replace('#/$defs/', '#/components/schemas/') : rewrite(v);
      return out;
    }
    return node;
  };
  for (const [name, def] of Object.entries(defs)) components[name] ??= rewrite(def);
  return rewrite(json) as JsonSchema;
}

function toSchema(schema: z.ZodType, io: 'input' | 'output', components: Record<string, unknown>): JsonSchema {
  const json = z.toJSONSchema(schema, { io, unrepresentable: 'any', target: 'draft-2020-12' }) as JsonSchema;
  delete json.$schema;
  return hoist(json, components);
}

function parameters(where: 'path' | 'query', components: Record<string, unknown>, obj?: z.ZodObject): JsonSchema[] {
  if (!obj) return [];
  const json = toSchema(obj, 'input', components) as { properties?: Record<string, JsonSchema>; required?: string[] };
  return Object.entries(json.properties ?? {}).map(([name, schema]) => ({
    name,
    in: where,
    required: where === 'path' || (json.required ?? []).includes(name),
    schema,
  }));
}

export function buildOpenApi(opts: { title: string; version: string; description?: string; routes: RouteSpec[] }): JsonSchema {
  const paths: Record<string, Record<string, unknown>> = {};
  const schemas: Record<string, unknown> = {};
  for (const r of opts.routes) {
    const responses: Record<string, unknown> = {};
    for (const [status, res] of Object.entries(r.responses)) {
      responses[status] = res.schema
        ? { description: res.description, content: { 'application/json': { schema: toSchema(res.schema, 'output', schemas) } } }
        : { description: res.description };
    }
    responses.default ??= { description: 'Error', content: { 'application/json': { schema: toSchema(ErrorBody, 'output', schemas) } } };
    (paths[r.path] ??= {})[r.method] = {
      summary: r.summary,
      tags: r.tags,
      security: r.access === 'public' ? [] : [{ bearer: [] }],
      'x-tessera-access': r.access,
      parameters: [...parameters('path', schemas, r.params), ...parameters('query', schemas, r.query)],
      ...(r.body && {
        requestBody: {
          required: true,
          content: { [r.bodyMediaType ?? 'application/json']: { schema: toSchema(r.body, 'input', schemas) } },
        },
      }),
      responses,
    };
  }
  return {
    openapi: '3.1.0',
    info: { title: opts.title, version: opts.version, description: opts.description },
    components: { schemas, securitySchemes: { bearer: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' } } },
    paths,
  };
}

/** Merge several services' documents into one (the gateway's `/openapi.json`). */
export function mergeOpenApi(title: string, version: string, docs: { prefix?: string; doc: JsonSchema }[]): JsonSchema {
  const paths: Record<string, unknown> = {};
  const schemas: Record<string, unknown> = {};
  for (const { prefix = '', doc } of docs) {
    for (const [p, item] of Object.entries((doc.paths ?? {}) as Record<string, unknown>)) paths[prefix + p] = item;
    // Services share their named schemas through the contracts, so one name is one schema.
    const own = ((doc.components as Record<string, unknown> | undefined)?.schemas ?? {}) as Record<string, unknown>;
    for (const [name, schema] of Object.entries(own)) schemas[name] ??= schema;
  }
  return {
    openapi: '3.1.0',
    info: { title, version },
    components: { schemas, securitySchemes: { bearer: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' } } },
    paths,
  };
}

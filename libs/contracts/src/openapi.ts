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
  /** What the route does beyond its summary, from its specification document (CommonMark). */
  description?: string;
  tags?: string[];
  /** Who may call it (written into the document as `x-tessera-access`). */
  access: Access;
  params?: z.ZodObject;
  query?: z.ZodObject;
  body?: z.ZodType;
  /** Media type of the body when not JSON, e.g. multipart/form-data. */
  bodyMediaType?: string;
  responses: Record<number, { description: string; schema?: z.ZodType }>;
  /** Request bodies a client may send, by name; each one parses with `body` (a unit test holds every service to it). */
  examples?: Record<string, { summary: string; value: unknown }>;
}

/**
 * The tags of every service's routes, described once: the merged document lists the ones in use.
 * Names are shared across services, so a tag means one thing wherever it appears.
 */
export const API_TAGS: Record<string, string> = {
  gateway: "The gateway's own endpoints: its liveness, the readiness of every service behind it, metrics, this document and `/asyncapi.json` (the WebSocket protocols).",
  workflows: 'Workflow discovery (document 003): the workflows a client may start, and how each one is reached.',
  chats:
    "Chats on the runtime (document 003): start one (idempotent by `client_request_id`), read its meta, stop it, list a user's chats. The chat itself runs on the WebSocket `/ws/{workflow_name}/{app_id}/{chat_id}/{user_id}` (see `/asyncapi.json`).",
  input: "The chat socket's HTTP fallbacks (document 003): a user's input, a UI tool call's answer, an attachment upload.",
  broker: "The session broker (document 000): start a chat for the signed-in user with backend-only context, list the user's chats, find the one to resume.",
  'mission-ally':
    "Mission Ally (document 002): an app's missions and their enrollments, managed by the app's operators. Learners talk to the tutor on the WebSocket `/api/v1/mission-ally/ws` (see `/asyncapi.json`).",
  sessions:
    "A user's chats on the runtime (`/api/sessions/…`, document 003), and observability's agent sessions of an app with their events (`/api/observability/…`, document 001 §1): patch metadata, stop a running session, delete one; live on the WebSocket `/api/observability/ws` (see `/asyncapi.json`).",
  usage:
    "Tokens and cost of an app's model calls (observability), rolled up per app, user, workflow, agent, model and hour: each call priced once as it is stored (`@pydantic/genai-prices`, `PRICE_OVERRIDES`); an unknown model's calls are counted as unpriced, never as zero.",
  budgets:
    "Budgets (runtime): what an app, each of its users, or one user may spend on model calls (tokens and USD per UTC day and month) and a user's turns a minute, with what is spent and left; a spent budget ends a turn before its next model call (`BUDGET_EXCEEDED`) and refuses new work with 429 and `Retry-After`. Operators only.",
  ingest: "Telemetry ingest (document 001 §1): an app's agents post events and OTLP traces with one of the app's ingest keys (`x-ingest-key`), not a user token.",
  agents: "Agent blueprints (document 001 §2): create, read, update, delete, status and versions of an app's agents.",
  documents: "The document server (document 001 §3): upload, list, download, metadata, tags with counts, delete an app's documents.",
  bridge:
    "The backend bridge (document 004): bootstrap a session on an agent server, its info, published and request/response events, close it. Live on the WebSocket `/api/bridge/session/{sessionId}/ws` (see `/asyncapi.json`).",
  internal: 'Service-to-service routes (the service key); never reachable through the gateway.',
  agui: 'AG-UI (docs.ag-ui.com): run a workflow as an AG-UI agent over a chat, RunAgentInput in and an SSE stream of AG-UI events out (each with an id; Last-Event-ID continues after it); stop a thread’s run.',
  a2a: 'A2A 1.0 (a2a-protocol.org, JSON-RPC binding, as @a2a-js/sdk implements it): an Agent Card per app and per workflow, and a workflow as an A2A agent over chats: SendMessage, SendStreamingMessage, GetTask, CancelTask, SubscribeToTask (replays the task from its first event).',
  mcp: 'MCP (modelcontextprotocol.io, Streamable HTTP 2025-11-25): each workflow is a tool; a tool call runs one chat turn and returns the reply; progress notifications stream the text; the protected-resource metadata (RFC 9728) a client reads after a 401.',
};

/**
 * How a caller proves who it is, by access rule. The service key (`x-tessera-service-key`) is
 * Tessera's own: it appears in a service's document, never in the gateway's merged one.
 */
export const SECURITY_SCHEMES = {
  bearer: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT', description: "A user's or operator's token: HS256 with the platform's secret, or verified against a JWKS (issuer, audience)." },
  ingestKey: { type: 'apiKey', in: 'header', name: 'x-ingest-key', description: "One of an app's ingest keys (observability's INGEST_KEYS): it names the app the telemetry is for." },
  serviceKey: { type: 'apiKey', in: 'header', name: 'x-tessera-service-key', description: 'Internal: the key Tessera services call each other with.' },
} as const;
type SchemeName = keyof typeof SECURITY_SCHEMES;

const SECURITY_OF: Record<Access, Partial<Record<SchemeName, []>>[]> = {
  public: [],
  user: [{ bearer: [] }],
  owner: [{ bearer: [] }],
  operator: [{ bearer: [] }],
  ingest: [{ ingestKey: [] }, { serviceKey: [] }],
  service: [{ serviceKey: [] }],
};

/**
 * A route's `operationId`, from its method and path: `post /api/chats/{app_id}/{workflow_name}/start`
 * → `postApiChatsByAppIdByWorkflowNameStart`. Paths are unique per method, so ids are too, but
 * for two paths that differ only in punctuation (`mergeOpenApi` numbers those).
 */
export function operationIdOf(method: HttpMethod, path: string): string {
  const words = (s: string) =>
    s
      .split(/[^A-Za-z0-9]+/)
      .filter(Boolean)
      .map((w) => w[0].toUpperCase() + w.slice(1))
      .join('');
  const parts = path
    .split('/')
    .filter(Boolean)
    .map((seg) => (/^\{.+\}$/.test(seg) ? 'By' + words(seg.slice(1, -1)) : words(seg)));
  return method + parts.join('');
}

/** The top-level `tags` list for the tags in use, in order of first use, described from API_TAGS. */
function tagList(used: Iterable<string>, described: Record<string, string | undefined> = {}): { name: string; description?: string }[] {
  return [...new Set(used)].map((name) => ({ name, ...((API_TAGS[name] ?? described[name]) && { description: API_TAGS[name] ?? described[name] }) }));
}

type Operation = Record<string, unknown> & { tags?: string[]; security?: Record<string, unknown>[] };
type PathItem = Partial<Record<HttpMethod, Operation>>;

function schemesUsedBy(paths: Record<string, PathItem>): Partial<typeof SECURITY_SCHEMES> {
  const used: Partial<Record<SchemeName, unknown>> = { bearer: SECURITY_SCHEMES.bearer };
  for (const item of Object.values(paths)) {
    for (const op of Object.values(item)) for (const req of op?.security ?? []) for (const name of Object.keys(req)) used[name as SchemeName] = SECURITY_SCHEMES[name as SchemeName];
  }
  return used as Partial<typeof SECURITY_SCHEMES>;
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
    for (const [name, example] of Object.entries(r.examples ?? {})) {
      const parsed = r.body?.safeParse(example.value);
      if (!parsed?.success) {
        const why = parsed ? parsed.error.issues.map((i) => `${i.path.join('.') || '(body)'}: ${i.message}`).join('; ') : 'the route has no body';
        throw new Error(`${r.method.toUpperCase()} ${r.path}: example "${name}" does not match its body: ${why}`);
      }
    }
    const responses: Record<string, unknown> = {};
    for (const [status, res] of Object.entries(r.responses)) {
      responses[status] = res.schema
        ? { description: res.description, content: { 'application/json': { schema: toSchema(res.schema, 'output', schemas) } } }
        : { description: res.description };
    }
    responses.default ??= { description: 'Error', content: { 'application/json': { schema: toSchema(ErrorBody, 'output', schemas) } } };
    (paths[r.path] ??= {})[r.method] = {
      operationId: operationIdOf(r.method, r.path),
      summary: r.summary,
      ...(r.description && { description: r.description }),
      tags: r.tags,
      security: SECURITY_OF[r.access].map((req) => ({ ...req })),
      'x-tessera-access': r.access,
      parameters: [...parameters('path', schemas, r.params), ...parameters('query', schemas, r.query)],
      ...(r.body && {
        requestBody: {
          required: true,
          content: {
            [r.bodyMediaType ?? 'application/json']: {
              schema: toSchema(r.body, 'input', schemas),
              ...(r.examples && { examples: r.examples }),
            },
          },
        },
      }),
      responses,
    };
  }
  return {
    openapi: '3.1.0',
    info: { title: opts.title, version: opts.version, description: opts.description },
    tags: tagList(opts.routes.flatMap((r) => r.tags ?? [])),
    components: { schemas, securitySchemes: schemesUsedBy(paths as Record<string, PathItem>) },
    paths,
  };
}

const INTERNAL_SCHEMES = new Set<string>(['serviceKey']);

/**
 * Merge several services' documents into one (the gateway's `/openapi.json`), as clients see it:
 * routes for services alone (`service`) and the service key are left out, each operation's id is
 * made from its path in the merged document (and numbered if two would still meet), and the tags
 * in use are listed with their descriptions.
 */
export function mergeOpenApi(
  title: string,
  version: string,
  docs: { prefix?: string; doc: JsonSchema }[],
  opts: { description?: string; servers?: { url: string; description?: string }[] } = {},
): JsonSchema {
  const paths: Record<string, PathItem> = {};
  const schemas: Record<string, unknown> = {};
  const ids = new Set<string>();
  const used: string[] = [];
  const described: Record<string, string | undefined> = {};
  for (const { prefix = '', doc } of docs) {
    for (const [p, item] of Object.entries((doc.paths ?? {}) as Record<string, PathItem>)) {
      const path = prefix + p;
      for (const [method, op] of Object.entries(item) as [HttpMethod, Operation][]) {
        if (op['x-tessera-access'] === 'service') continue;
        let id = operationIdOf(method, path);
        for (let n = 2; ids.has(id); n++) id = `${operationIdOf(method, path)}${n}`;
        ids.add(id);
        const security = op.security?.filter((req) => !Object.keys(req).some((name) => INTERNAL_SCHEMES.has(name)));
        (paths[path] ??= {})[method] = { ...op, operationId: id, ...(security && { security }) };
        used.push(...(op.tags ?? []));
      }
    }
    for (const t of (doc.tags ?? []) as { name: string; description?: string }[]) described[t.name] ??= t.description;
    // Services share their named schemas through the contracts, so one name is one schema.
    const own = ((doc.components as Record<string, unknown> | undefined)?.schemas ?? {}) as Record<string, unknown>;
    for (const [name, schema] of Object.entries(own)) schemas[name] ??= schema;
  }
  return {
    openapi: '3.1.0',
    info: { title, version, ...(opts.description && { description: opts.description }) },
    servers: opts.servers ?? [{ url: '/' }],
    tags: tagList(used, described),
    components: { schemas, securitySchemes: schemesUsedBy(paths) },
    paths,
  };
}

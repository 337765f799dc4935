/**
 * Which service answers a public path, and under which path. Every client request goes through
 * this table; nothing is routed by guesswork.
 *
 * | public path                         | service (config)                  | path at the service    |
 * | ----------------------------------- | --------------------------------- | ---------------------- |
 * | /api/mozaiks/*                      | broker (BROKER_URL)               | same                   |
 * | /api/workflows, /api/workflows/*    | runtime (RUNTIME_URL)             | same                   |
 * | /api/chats/*                        | runtime                           | same                   |
 * | /api/chat/*    (upload: big body)   | runtime                           | same                   |
 * | /api/sessions/*                     | runtime                           | same                   |
 * | /api/tool-call/*                    | runtime                           | same                   |
 * | /chat/*                             | runtime                           | same                   |
 * | /ws/*                  (WebSocket)  | runtime                           | same                   |
 * | /api/v1/mission-ally/ws (WebSocket) | runtime                           | same                   |
 * | /api/observability/*   (+WebSocket) | observability (OBSERVABILITY_URL) | /*                     |
 * | /api/agents, /api/agents/*          | agent manager (AGENTS_URL)        | /agents, /agents/*     |
 * | /api/documents, /api/documents/*    | document server (DOCUMENTS_URL)   | /documents, /documents/* |
 * | /api/bridge/*          (+WebSocket) | bridge (BRIDGE_URL)               | /api/*                 |
 *
 * The runtime keeps the paths of document 003 (clients of the runtime work unchanged through the
 * gateway). Every other service gets a prefix of its own, `/api/<service>`, which the gateway
 * replaces with the service's own root so that each service serves its document's paths:
 * `/api/agents/{name}` → agent manager `/agents/{name}` (document 001 §2), `/api/documents/tags` →
 * `/documents/tags` (§3), `/api/observability/sessions` → `/sessions` and `/api/observability/ws`
 * → `/ws` (§1), `/api/bridge/session/bootstrap` → `/api/session/bootstrap` (document 004).
 * Each service's /health, /ready, /metrics, /openapi.json and /asyncapi.json stay internal
 * (INTERNAL_PATHS): the gateway answers its own /health, /ready, /metrics, a merged /openapi.json
 * and /asyncapi.json (the socket protocols).
 * A service may run as several instances (a comma-separated `*_URL`): see proxy/upstreams.ts.
 */
import { bridge } from '@tessera/contracts';

export type ServiceName = 'runtime' | 'broker' | 'observability' | 'agents' | 'documents' | 'bridge';
export const SERVICE_NAMES: ServiceName[] = ['runtime', 'broker', 'observability', 'agents', 'documents', 'bridge'];

export interface Route {
  /** Public path prefix, matched on whole segments. */
  prefix: string;
  service: ServiceName;
  /** Replaces `prefix` on the way to the service. */
  upstreamPrefix: string;
  /** Accepts WebSocket upgrades. */
  websocket: boolean;
  /**
   * Paths at the service this route never forwards, whatever follows the prefix: INTERNAL_PATHS
   * unless the route says otherwise (a route that should expose one of them lists the others).
   */
  internal?: readonly string[];
}

/**
 * What every service keeps to itself, as paths at the service (after the prefix is replaced):
 * the kit's probes and metrics (`/health`, `/ready`, `/metrics`, public on the service because
 * only the platform reaches it), its own API documents (`/openapi.json`, `/asyncapi.json`), and anything under `/internal` or
 * `/api/internal` (the runtime's `/api/internal/blueprints/…` is for the agent manager). Each
 * entry covers its whole subtree. A path is compared the way a service's router would read it:
 * percent-decoded, case-insensitively (express routes ignore case), trailing slashes ignored.
 *
 * Why a deny-list of internal paths and not an allow-list of each service's public paths (its
 * OpenAPI document, which the gateway fetches for the merged one):
 * - Routing would depend on a document fetched at run time: a service whose document is late,
 *   stale or from one instance of several would have its API refused (or its new paths) although
 *   the service is up. Routing stays a static table that a test pins down.
 * - The documents do not list everything that is public, nor the way it is matched: WebSocket
 *   paths (`/ws`, the bridge's session socket), HEAD, trailing slashes, templated segments,
 *   case-insensitive matching. Replaying each service's router in the gateway would refuse
 *   valid calls and still be a second copy of every router to keep in step.
 * - Every public path checks its caller at the service (token, ownership); what must not reach
 *   the edge is the small, fixed set of endpoints that are unauthenticated on purpose. They come
 *   from the kit and the OpenAPI builder, the same in every service; a new one goes here.
 * Only a prefix that maps onto a service's root (`/api/observability` → `/`) or onto a root that
 * holds an internal subtree (`/api/bridge` → `/api`) can reach these; every other route's
 * upstream path starts with its own prefix. The check is made for every route all the same.
 */
export const INTERNAL_PATHS: readonly string[] = ['/health', '/ready', '/metrics', '/openapi.json', '/asyncapi.json', '/internal', '/api/internal'];

export const ROUTES: readonly Route[] = [
  { prefix: '/api/mozaiks', service: 'broker', upstreamPrefix: '/api/mozaiks', websocket: false },
  { prefix: '/api/workflows', service: 'runtime', upstreamPrefix: '/api/workflows', websocket: false },
  { prefix: '/api/chats', service: 'runtime', upstreamPrefix: '/api/chats', websocket: false },
  { prefix: '/api/chat', service: 'runtime', upstreamPrefix: '/api/chat', websocket: false },
  { prefix: '/api/sessions', service: 'runtime', upstreamPrefix: '/api/sessions', websocket: false },
  { prefix: '/api/tool-call', service: 'runtime', upstreamPrefix: '/api/tool-call', websocket: false },
  { prefix: '/chat', service: 'runtime', upstreamPrefix: '/chat', websocket: false },
  { prefix: '/ws', service: 'runtime', upstreamPrefix: '/ws', websocket: true },
  { prefix: '/api/v1/mission-ally/ws', service: 'runtime', upstreamPrefix: '/api/v1/mission-ally/ws', websocket: true },
  { prefix: '/api/v1/mission-ally/missions', service: 'runtime', upstreamPrefix: '/api/v1/mission-ally/missions', websocket: false },
  { prefix: '/api/budgets', service: 'runtime', upstreamPrefix: '/api/budgets', websocket: false },
  { prefix: '/api/agui', service: 'runtime', upstreamPrefix: '/api/agui', websocket: false },
  { prefix: '/api/a2a', service: 'runtime', upstreamPrefix: '/api/a2a', websocket: false },
  { prefix: '/api/mcp', service: 'runtime', upstreamPrefix: '/api/mcp', websocket: false },
  { prefix: '/.well-known/oauth-protected-resource/api/mcp', service: 'runtime', upstreamPrefix: '/.well-known/oauth-protected-resource/api/mcp', websocket: false },
  { prefix: '/api/observability', service: 'observability', upstreamPrefix: '', websocket: true },
  { prefix: '/api/agents', service: 'agents', upstreamPrefix: '/agents', websocket: false },
  { prefix: '/api/documents', service: 'documents', upstreamPrefix: '/documents', websocket: false },
  { prefix: '/api/bridge', service: 'bridge', upstreamPrefix: '/api', websocket: true },
];

/** Multipart uploads: these (method, path) pairs get UPLOAD_BODY_LIMIT instead of BODY_LIMIT. */
const UPLOADS: readonly { method: string; path: string }[] = [{ method: 'POST', path: '/api/chat/upload' }];

export interface RouteMatch {
  route: Route;
  /** Path and query string to request from the service. */
  upstreamPath: string;
  /** The public path without the query string. */
  path: string;
}

/** `no_route` also for a service's internal path: answered exactly as a path no route serves. */
export type MatchResult = { ok: true; match: RouteMatch } | { ok: false; reason: 'no_route' | 'bad_path' };

/**
 * Dot segments and encoded separators are refused: a path must mean the same to the gateway
 * (which decides on auth and routing by it) and to the service behind it.
 */
const UNSAFE_PATH = /(^|\/)\.{1,2}(\/|$)|%2e|%2f|%5c|\\|\/\//i;

export function matchRoute(url: string, routes: readonly Route[] = ROUTES): MatchResult {
  const q = url.indexOf('?');
  const path = q < 0 ? url : url.slice(0, q);
  const search = q < 0 ? '' : url.slice(q);
  if (!path.startsWith('/') || UNSAFE_PATH.test(path)) return { ok: false, reason: 'bad_path' };
  for (const route of routes) {
    if (path === route.prefix || path.startsWith(route.prefix + '/')) {
      const rest = path.slice(route.prefix.length);
      const upstream = route.upstreamPrefix + rest || '/';
      if (isInternal(upstream, route.internal ?? INTERNAL_PATHS)) return { ok: false, reason: 'no_route' };
      return { ok: true, match: { route, path, upstreamPath: upstream + search } };
    }
  }
  return { ok: false, reason: 'no_route' };
}

/** Whether `path` (at the service, no query string) is one of `internal` or under it; see INTERNAL_PATHS. */
export function isInternal(path: string, internal: readonly string[] = INTERNAL_PATHS): boolean {
  if (!internal.length) return false;
  const read = path
    .split('/')
    .map((segment) => {
      try {
        return decodeURIComponent(segment);
      } catch {
        return segment; // Malformed escapes: the service cannot read them as a name either.
      }
    })
    .join('/')
    .toLowerCase()
    .replace(/\/+$/, '');
  return internal.some((p) => read === p || read.startsWith(p + '/'));
}

/** The public path of a service's own path (for the merged OpenAPI document); null when not reachable. */
export function publicPath(service: ServiceName, upstreamPath: string, routes: readonly Route[] = ROUTES): string | null {
  for (const route of routes) {
    if (route.service !== service) continue;
    const up = route.upstreamPrefix;
    if (up === '' || upstreamPath === up || upstreamPath.startsWith(up + '/')) {
      const candidate = route.prefix + upstreamPath.slice(up.length);
      // The candidate must route back to this very route (a more specific route may shadow it).
      const m = matchRoute(candidate.replace(/[{}]/g, ''), routes);
      if (m.ok && m.match.route === route) return candidate;
    }
  }
  return null;
}

/**
 * Observability's ingest: outside agents and OpenTelemetry exporters post events with an ingest
 * key (`x-ingest-key`), not a user token, and the service checks it. Bodies are batches and OTLP
 * exports, larger than ordinary requests (OBSERVABILITY_BODY_LIMIT). Every read of observability needs a token.
 */
const INGEST: readonly { method: string; path: string }[] = [
  { method: 'POST', path: '/api/observability/events' },
  { method: 'POST', path: '/api/observability/v1/traces' },
];

/**
 * Routes that pass without a token (still rate limited, by address): observability's ingest (the service authenticates it), and workflow discovery when configured
 * (a sign-in screen may list the workflows). The gateway's own /health, /ready, /metrics and
 * /openapi.json are answered before routing and are public too, and so is CORS preflight: the
 * gateway answers every OPTIONS itself (app.ts) and never forwards one, so it is not listed here.
 */
export function isPublic(method: string, path: string, opts: { publicWorkflows: boolean }): boolean {
  if (isIngest(method, path)) return true;
  // MCP: the runtime checks the token as an OAuth resource server, its 401 naming the endpoint's
  // protected-resource metadata (RFC 9728), which is public.
  if (MCP_ENDPOINT.test(path)) return true;
  if ((method === 'GET' || method === 'HEAD') && MCP_METADATA.test(path)) return true;
  if (opts.publicWorkflows && (method === 'GET' || method === 'HEAD')) return path === '/api/workflows' || path.startsWith('/api/workflows/');
  return false;
}

const MCP_ENDPOINT = /^\/api\/mcp\/[^/]+\/?$/;
const MCP_METADATA = /^\/\.well-known\/oauth-protected-resource\/api\/mcp\/[^/]+\/?$/;

/**
 * Sockets whose protocol says how a refused token is told: document 002's Mission Ally sends
 * `{"type":"error"}` then closes with 1008, which a frontend written from it shows; the bridge's
 * session socket takes the session's own token (in the `websocketUrl` bootstrap hands out) and
 * closes with 4401 / 4404. The gateway lets such an upgrade through without a platform token
 * (rate limited by address); the service reads the same places and refuses in its protocol.
 */
export function authenticatesInProtocol(path: string): boolean {
  return path === '/api/v1/mission-ally/ws' || path === '/api/v1/mission-ally/ws/' || BRIDGE_SESSION_SOCKET.test(path);
}

/** The bridge's session socket: its `websocketUrl` carries the session's own token, which the bridge checks (4401 / 4404). */
const BRIDGE_SESSION_SOCKET = /^\/api\/bridge\/session\/[^/]+\/ws$/;

/**
 * Requests whose answer comes later than UPSTREAM_TIMEOUT_MS by design, with how long the service
 * may take: the bridge's request/response event waits for a person's answer for as long as its
 * `timeoutMs` (document 004: up to 180 s), then answers 504 itself; a shorter budget here would cut
 * it off with the gateway's 504 and lose the answer. Matched as the bridge's router reads a path
 * (any case, a trailing slash).
 */
const LONG_WAITS: readonly { method: string; path: RegExp; ms: number }[] = [
  { method: 'POST', path: /^\/api\/bridge\/session\/[^/]+\/events\/request\/?$/i, ms: bridge.REQUEST_TIMEOUT.max + 10_000 },
];

/** How long the service may take to answer this request: `defaultMs`, or longer for a LONG_WAITS route. */
export function responseBudgetOf(method: string, path: string, defaultMs: number): number {
  const long = LONG_WAITS.find((w) => w.method === method && w.path.test(path));
  return long ? Math.max(defaultMs, long.ms) : defaultMs;
}

export function isUpload(method: string, path: string): boolean {
  return UPLOADS.some((u) => u.method === method && u.path === path);
}

/** The document server's upload streams files of hundreds of megabytes: DOCUMENTS_BODY_LIMIT. */
export function isDocumentUpload(method: string, path: string): boolean {
  return method === 'POST' && (path === '/api/documents' || path === '/api/documents/');
}

export function isIngest(method: string, path: string): boolean {
  return INGEST.some((u) => u.method === method && u.path === path);
}

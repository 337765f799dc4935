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
 * Each service's /health and /openapi.json stay internal: the gateway answers its own.
 * A service may run as several instances (a comma-separated `*_URL`): see proxy/upstreams.ts.
 */
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
}

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
      return { ok: true, match: { route, path, upstreamPath: upstream + search } };
    }
  }
  return { ok: false, reason: 'no_route' };
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
 * Routes that pass without a token (still rate limited, by address): CORS preflight,
 * observability's ingest (the service authenticates it), and workflow discovery when configured
 * (a sign-in screen may list the workflows). The gateway's own /health, /ready, /metrics and
 * /openapi.json are answered before routing and are public too.
 */
export function isPublic(method: string, path: string, opts: { publicWorkflows: boolean }): boolean {
  if (method === 'OPTIONS') return true;
  if (isIngest(method, path)) return true;
  if (opts.publicWorkflows && (method === 'GET' || method === 'HEAD')) return path === '/api/workflows' || path.startsWith('/api/workflows/');
  return false;
}

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

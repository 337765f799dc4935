import bytes from 'bytes';
import { z } from 'zod';
import { BaseEnv, checkBaseEnv, env, loadConfig } from '@tessera/kit';

/**
 * The gateway's environment. Besides BaseEnv (auth, CORS, BODY_LIMIT, REDIS_URL, ...):
 *
 *   PORT                        8080
 *   RUNTIME_URL                 http://127.0.0.1:8000   runtime: workflows, chats, sessions, /ws, mission ally
 *   BROKER_URL                  http://127.0.0.1:8001   session broker: /api/mozaiks/*
 *   OBSERVABILITY_URL           http://127.0.0.1:8765   /api/observability/*
 *   AGENTS_URL                  http://127.0.0.1:8767   agent manager: /api/agents/*
 *   DOCUMENTS_URL               http://127.0.0.1:8766   document server: /api/documents/*
 *   BRIDGE_URL                  http://127.0.0.1:3000   backend bridge: /api/bridge/*
 *                               A service URL set to `off` means "not deployed": its routes answer 503 at once
 *                               and /ready leaves it out. Several instances of a service: their base URLs
 *                               separated by commas (`http://obs-1:8765,http://obs-2:8765`); requests and
 *                               upgrades are spread over them, and one that refuses the connection is skipped.
 *   UPLOAD_BODY_LIMIT           25mb    body limit of upload routes (BODY_LIMIT applies to the rest)
 *   DOCUMENTS_BODY_LIMIT        512mb   body limit of the document server's upload (POST /api/documents)
 *   OBSERVABILITY_BODY_LIMIT    8mb     body limit of observability's ingest (POST /events, OTLP POST /v1/traces)
 *   RATE_LIMIT_PER_MIN          600     requests per client per window (0 disables), counted in Redis
 *   RATE_LIMIT_WINDOW_MS        60000   window length (fixed windows; a client's first request starts one)
 *   RATE_LIMIT_PREFIX           tessera:gateway:rl   Redis key prefix of the counters (one key per client)
 *   UPSTREAM_CONNECT_TIMEOUT_MS 2000    a service that does not accept the connection within this is 503
 *   UPSTREAM_TIMEOUT_MS         60000   a service that sends no response headers within this is 504
 *                                       (longer for routes that wait by design: routing.ts LONG_WAITS)
 *   HEALTH_TIMEOUT_MS           1500    per-service budget of /ready and of each /openapi.json fetch
 *   OPENAPI_CACHE_MS            10000   how long the merged /openapi.json is reused
 *   TRUST_PROXY_HOPS            0       load balancers in front of the gateway whose X-Forwarded-For is trusted;
 *                                       0 = the gateway is the edge: the peer address is the client
 *   PUBLIC_WORKFLOWS            true    GET /api/workflows… passes without a token (discovery before sign-in)
 *   CONSOLE_DIST                apps/console/dist   the operator console's build, served at /console (relative to the working directory)
 *   PUBLIC_URL                  (unset)  the gateway's URL as clients reach it, e.g. https://api.example.com: the server of
 *                                        /openapi.json and /asyncapi.json (unset: `/` in the one, the request's host in the other)
 */
/** `off`, or one or more http(s) base URLs separated by commas (the instances of one service). */
const serviceUrl = (def: string) =>
  z
    .string()
    .default(def)
    .refine((s) => s === 'off' || serviceInstances(s).length > 0, { message: 'must be `off` or http(s) URLs separated by commas' });

/** The instances' base URLs of a service's `*_URL` value; [] for `off` or when one of them is not an http(s) URL. */
export function serviceInstances(value: string): URL[] {
  if (value === 'off') return [];
  const urls: URL[] = [];
  for (const part of value.split(',').map((p) => p.trim())) {
    const url = URL.canParse(part) ? new URL(part) : null;
    if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:') || !url.hostname) return [];
    urls.push(url);
  }
  return urls;
}

const byteSize = (def: string) =>
  z
    .string()
    .default(def)
    .transform((s, ctx) => {
      const n = parseBytes(s);
      if (n === null) {
        ctx.addIssue({ code: 'custom', message: 'must be a size like 512kb, 1mb or 1048576' });
        return z.NEVER;
      }
      return n;
    });

export const GatewayEnv = BaseEnv.extend({
  PORT: env.port(8080),
  RUNTIME_URL: serviceUrl('http://127.0.0.1:8000'),
  BROKER_URL: serviceUrl('http://127.0.0.1:8001'),
  OBSERVABILITY_URL: serviceUrl('http://127.0.0.1:8765'),
  AGENTS_URL: serviceUrl('http://127.0.0.1:8767'),
  DOCUMENTS_URL: serviceUrl('http://127.0.0.1:8766'),
  BRIDGE_URL: serviceUrl('http://127.0.0.1:3000'),
  UPLOAD_BODY_LIMIT: byteSize('25mb'),
  OBSERVABILITY_BODY_LIMIT: byteSize('8mb'),
  DOCUMENTS_BODY_LIMIT: byteSize('512mb'),
  RATE_LIMIT_PER_MIN: env.int(600, 0),
  RATE_LIMIT_WINDOW_MS: env.int(60_000, 1_000),
  RATE_LIMIT_PREFIX: z.string().default('tessera:gateway:rl'),
  UPSTREAM_CONNECT_TIMEOUT_MS: env.int(2_000, 50),
  UPSTREAM_TIMEOUT_MS: env.int(60_000, 100),
  HEALTH_TIMEOUT_MS: env.int(1_500, 50),
  OPENAPI_CACHE_MS: env.int(10_000, 0),
  TRUST_PROXY_HOPS: env.int(0, 0),
  PUBLIC_WORKFLOWS: env.bool(true),
  CONSOLE_DIST: z.string().min(1).default('apps/console/dist'),
  PUBLIC_URL: z
    .string()
    .default('')
    .refine((s) => s === '' || (URL.canParse(s) && /^https?:$/.test(new URL(s).protocol) && !new URL(s).search && !new URL(s).hash), { message: 'must be an http(s) URL without query or fragment' }),
})
  .superRefine(checkBaseEnv)
  .superRefine((c, ctx) => {
    if (parseBytes(c.BODY_LIMIT) === null) ctx.addIssue({ code: 'custom', path: ['BODY_LIMIT'], message: 'must be a size like 512kb, 1mb or 1048576' });
  });
export type GatewayConfig = z.infer<typeof GatewayEnv>;

export const loadGatewayConfig = (e?: Record<string, string | undefined>) => loadConfig(GatewayEnv, e);

/**
 * `1mb` → 1048576, read by `bytes` as express's body parser reads it; null when it is not a size
 * (where `bytes` alone would take `12abc` for 12 bytes).
 */
export function parseBytes(s: string): number | null {
  return /^ *\d+(?:\.\d+)? *(?:[kmgtp]?b)? *$/i.test(s) ? bytes.parse(s.trim()) : null;
}

import express, { type Request, type Router } from 'express';
import { LRUCache } from 'lru-cache';
import { asyncApiServers, buildAsyncApi, mergeOpenApi, SOCKETS, type AsyncApiServer, type UnavailableService } from '@tessera/contracts';
import { matchRoute, publicPath, SERVICE_NAMES, type ServiceName } from '../domain/routing';
import { getJson, type Instance, type Upstreams } from '../proxy/upstreams';

type Doc = Record<string, unknown>;

/** A document with each path renamed to its public path; paths the gateway does not route are left out. */
export function toPublicPaths(service: ServiceName, doc: Doc): Doc {
  const paths: Record<string, unknown> = {};
  for (const [p, item] of Object.entries((doc.paths ?? {}) as Record<string, unknown>)) {
    const pub = publicPath(service, p);
    if (pub) paths[pub] = item;
  }
  return { ...doc, paths };
}

async function documentOf(inst: Instance, timeoutMs: number): Promise<Doc> {
  const { status, body } = await getJson(inst, '/openapi.json', timeoutMs);
  if (status !== 200 || !body || typeof body !== 'object') throw new Error(`HTTP ${status}`);
  return body as Doc;
}

/**
 * `/openapi.json`: the API of everything behind the gateway, as clients reach it. Each service's
 * own document is fetched, renamed per the routing table and merged; a service that does not
 * answer is listed in `x-unavailable` instead of failing the whole. Reused for `cacheMs`
 * (a shorter while when a service was missing, so that it appears soon after it starts).
 */
export function openApiRoute(opts: { own: Doc; upstreams: Upstreams; timeoutMs: number; cacheMs: number; publicUrl?: string }): Router {
  // One entry, built once however many ask at once; its TTL is set by what the build found.
  const cache = new LRUCache<'doc', Doc>({
    max: 1,
    ttlResolution: 0,
    fetchMethod: async (_key, _stale, { options }) => {
      const { doc, missing } = await build();
      // lru-cache takes a TTL of 0 for "forever": OPENAPI_CACHE_MS=0 is a millisecond.
      options.ttl = Math.max(1, missing ? Math.min(opts.cacheMs, 2_000) : opts.cacheMs);
      return doc;
    },
  });

  async function build(): Promise<{ doc: Doc; missing: boolean }> {
    const unavailable: UnavailableService[] = [];
    const docs: { doc: Doc }[] = [{ doc: opts.own }];
    const results = await Promise.all(
      SERVICE_NAMES.filter((n) => opts.upstreams[n].deployed).map(async (name) => {
        const pool = opts.upstreams[name];
        try {
          // Every instance serves the same document: the first that answers gives it.
          const doc = await Promise.any(pool.instances.map((inst) => documentOf(inst, opts.timeoutMs)));
          return { name, doc: toPublicPaths(name, doc) };
        } catch (e) {
          const first = ((e as AggregateError).errors?.[0] ?? e) as NodeJS.ErrnoException;
          unavailable.push({ service: name, url: pool.instances.map((i) => i.base.origin).join(','), error: first.code ?? first.message });
          return null;
        }
      }),
    );
    for (const r of results) if (r) docs.push({ doc: r.doc });
    const merged = mergeOpenApi('Tessera API', '0.1.0', docs, {
      description: 'Every Tessera service as reached through the gateway. The WebSocket protocols are in `/asyncapi.json` (AsyncAPI 3).',
      servers: [{ url: opts.publicUrl || '/', description: 'the gateway' }],
    });
    merged['x-unavailable'] = unavailable;
    return { doc: merged, missing: unavailable.length > 0 };
  }

  const r = express.Router();
  r.get('/openapi.json', async (_req, res) => {
    res.json(await cache.fetch('doc'));
  });
  return r;
}

/** A request's `Host` when it is a plain host[:port] (anything else is not written into a document). */
const HOST = /^(?:[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$/;

/**
 * `/asyncapi.json`: the WebSocket protocols of the deployed services (AsyncAPI 3.0), built once from
 * the contracts (libs/contracts/src/sockets.ts) at the addresses the gateway routes. Its server is
 * PUBLIC_URL, or else the host the request named.
 */
export function asyncApiRoute(opts: { upstreams: Upstreams; publicUrl?: string }): Router {
  const sockets = SOCKETS.filter((s) => {
    const m = matchRoute(s.address.replace(/\{[^}]+\}/g, 'x'));
    if (!m.ok || !m.match.route.websocket) throw new Error(`the gateway does not route the socket ${s.id} (${s.address})`);
    return opts.upstreams[m.match.route.service].deployed;
  });
  const doc = buildAsyncApi({
    title: 'Tessera WebSocket protocols',
    version: '0.1.0',
    description: 'The WebSocket protocols of the Tessera services, as reached through the gateway (the HTTP API is in `/openapi.json`). Written for Tessera: `receive` operations are what a client sends, `send` operations what it reads.',
    sockets,
  });
  const configured = opts.publicUrl ? new URL(opts.publicUrl) : null;
  const serverOf = (req: Request): AsyncApiServer | null => {
    const description = 'the gateway';
    if (configured) return { host: configured.host, protocol: configured.protocol === 'https:' ? 'wss' : 'ws', pathname: configured.pathname, description };
    const host = req.headers.host;
    return host && HOST.test(host) ? { host, protocol: 'ws', description } : null;
  };
  const r = express.Router();
  r.get('/asyncapi.json', (req, res) => {
    const server = serverOf(req);
    res.json(server ? { asyncapi: doc.asyncapi, info: doc.info, servers: asyncApiServers(server), ...doc } : doc);
  });
  return r;
}

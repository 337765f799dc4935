import express, { type Router } from 'express';
import { mergeOpenApi, type UnavailableService } from '@tessera/contracts';
import { publicPath, SERVICE_NAMES, type ServiceName } from '../domain/routing';
import { getJson, type Upstreams } from '../proxy/upstreams';

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

/**
 * `/openapi.json`: the API of everything behind the gateway, as clients reach it. Each service's
 * own document is fetched, renamed per the routing table and merged; a service that does not
 * answer is listed in `x-unavailable` instead of failing the whole. Reused for `cacheMs`
 * (a shorter while when a service was missing, so that it appears soon after it starts).
 */
export function openApiRoute(opts: { own: Doc; upstreams: Upstreams; timeoutMs: number; cacheMs: number }): Router {
  let cached: { doc: Doc; until: number } | null = null;
  let inflight: Promise<Doc> | null = null;

  async function build(): Promise<Doc> {
    const unavailable: UnavailableService[] = [];
    const docs: { doc: Doc }[] = [{ doc: opts.own }];
    const results = await Promise.all(
      SERVICE_NAMES.filter((n) => opts.upstreams[n].base).map(async (name) => {
        const up = opts.upstreams[name];
        try {
          const { status, body } = await getJson(up, '/openapi.json', opts.timeoutMs);
          if (status !== 200 || !body || typeof body !== 'object') throw new Error(`HTTP ${status}`);
          return { name, doc: toPublicPaths(name, body as Doc) };
        } catch (e) {
          const err = e as NodeJS.ErrnoException;
          unavailable.push({ service: name, url: up.base!.origin, error: err.code ?? err.message });
          return null;
        }
      }),
    );
    for (const r of results) if (r) docs.push({ doc: r.doc });
    const merged = mergeOpenApi('Tessera API', '0.1.0', docs);
    (merged.info as Doc).description = 'Every Tessera service as reached through the gateway.';
    merged['x-unavailable'] = unavailable;
    const ttl = unavailable.length ? Math.min(opts.cacheMs, 2_000) : opts.cacheMs;
    cached = { doc: merged, until: Date.now() + ttl };
    return merged;
  }

  const r = express.Router();
  r.get('/openapi.json', async (_req, res) => {
    if (cached && cached.until > Date.now()) return void res.json(cached.doc);
    inflight ??= build().finally(() => (inflight = null));
    res.json(await inflight);
  });
  return r;
}

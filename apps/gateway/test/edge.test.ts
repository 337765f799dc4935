/**
 * The gateway owns its edge (issue 17): a prefix forwards a service's public API and nothing of
 * its internals (`/metrics`, `/ready`, `/health`, `/openapi.json`, `/internal…`), and CORS
 * preflight (`OPTIONS`) is answered by the gateway itself, with or without a token or an origin.
 * One stand-in plays every service and records each request and upgrade it gets, so "never
 * forwarded" is what the service saw, not what the gateway says.
 */
import express from 'express';
import fc from 'fast-check';
import { ErrorBody } from '@tessera/contracts';
import { call, rawUpgrade } from '@tessera/kit/testing';
import { ROUTES } from '../src/domain/routing';
import { startStandIn, startTestGateway, token, type StandIn, type TestGateway } from './support';

const RUNS = Number(process.env.FUZZ_RUNS ?? 150);
const ORIGIN = 'http://console.example';
const EVIL = 'http://evil.example';

/**
 * What a service keeps to itself, judged the way an express service routes (case-insensitive,
 * trailing slash optional) and after percent-decoding, so the oracle is stricter than any one
 * service: its root's /metrics, /ready, /health, /openapi.json, and anything under /internal or
 * /api/internal.
 */
function internalAtService(url: string): boolean {
  const path = url.split('?')[0];
  const seg = path.split('/').map((s) => {
    try {
      return decodeURIComponent(s).toLowerCase();
    } catch {
      return s.toLowerCase();
    }
  });
  if (['metrics', 'ready', 'health', 'openapi.json', 'internal'].includes(seg[1])) return true;
  return seg[1] === 'api' && seg[2] === 'internal';
}

/** The stand-in's own document: its internals are listed, as the real services list theirs. */
const SERVICE_DOC = {
  openapi: '3.1.0',
  info: { title: 'stand-in', version: '1' },
  paths: Object.fromEntries(
    ['/health', '/ready', '/metrics', '/openapi.json', '/internal/x', '/api/internal/x', '/sessions', '/agents/{name}', '/api/session/servers'].map((p) => [p, { get: { summary: p } }]),
  ),
};

describe('the gateway owns its edge', () => {
  let svc: StandIn;
  let gw: TestGateway;
  let alice: string;
  const seen: { method: string; path: string }[] = [];

  beforeAll(async () => {
    const app = express();
    app.use((req, res) => {
      seen.push({ method: req.method, path: req.originalUrl });
      // What a real service answers on these: its internals, to whoever asks.
      if (/^\/metrics\/?$/i.test(req.path)) return void res.type('text/plain').send('# HELP secret_total internals\nsecret_total 1\n');
      if (/^\/(health|ready)\/?$/i.test(req.path)) return void res.json({ status: 'ok', internals: true });
      if (req.path === '/openapi.json') return void res.json(SERVICE_DOC);
      res.json({ path: req.originalUrl, method: req.method });
    });
    svc = await startStandIn(app);
    svc.server.prependListener('upgrade', (req) => seen.push({ method: 'UPGRADE', path: req.url ?? '' }));
    gw = await startTestGateway({
      RUNTIME_URL: svc.url,
      BROKER_URL: svc.url,
      OBSERVABILITY_URL: svc.url,
      AGENTS_URL: svc.url,
      DOCUMENTS_URL: svc.url,
      BRIDGE_URL: svc.url,
      CORS_ORIGINS: ORIGIN,
      RATE_LIMIT_PER_MIN: '0',
    });
    alice = await token('alice');
  });

  afterAll(async () => {
    await gw?.stop();
    await svc?.close();
  });

  /** Runs `fn` and returns what the stand-in got meanwhile. */
  async function forwarded(fn: () => Promise<unknown>): Promise<{ method: string; path: string }[]> {
    const before = seen.length;
    await fn();
    return seen.slice(before);
  }

  const notFound = (r: { status: number; json: any }, what: string) => {
    if (r.status !== 404 || r.json?.error?.code !== 'NOT_FOUND') throw new Error(`${what}: ${r.status} ${JSON.stringify(r.json)}`);
  };

  it('still forwards a service’s public API, under its own path', async () => {
    const got = await forwarded(async () => {
      for (const [pub, up] of [
        ['/api/observability/sessions?limit=5', '/sessions?limit=5'],
        ['/api/agents', '/agents'],
        ['/api/agents/health', '/agents/health'], // an agent named "health" is the agent manager's public API
        ['/api/documents/metrics', '/documents/metrics'],
        ['/api/bridge/session/servers', '/api/session/servers'],
        ['/api/chats/meta/a/b/c', '/api/chats/meta/a/b/c'],
      ]) {
        const r = await call(gw.url, 'GET', pub, { token: alice });
        expect(r.status).toBe(200);
        expect(r.json.path).toBe(up);
      }
    });
    expect(got.map((g) => g.path)).toEqual(['/sessions?limit=5', '/agents', '/agents/health', '/documents/metrics', '/api/session/servers', '/api/chats/meta/a/b/c']);
  });

  const INTERNAL = ['metrics', 'ready', 'health', 'openapi.json', 'internal', 'internal/x', 'METRICS', 'Health/', 'metrics/', 'OpenAPI.json', '%6Detrics', '%68ealth', 'metrics?format=json'];

  it('never forwards a service’s internal paths: 404 in the error shape, as for a path no route serves', async () => {
    const unrouted = await call(gw.url, 'GET', '/api/nothing-here', { token: alice });
    expect(unrouted.status).toBe(404);
    expect(ErrorBody.parse(unrouted.json).error.code).toBe('NOT_FOUND');
    const got = await forwarded(async () => {
      for (const rest of INTERNAL) {
        for (const method of ['GET', 'POST', 'HEAD', 'DELETE']) {
          // The observability prefix maps onto the service's root, the bridge's onto its /api.
          for (const path of [`/api/observability/${rest}`, `/api/bridge/internal/${rest}`]) {
            const r = await call(gw.url, method, path, { token: alice });
            if (method === 'HEAD') expect(r.status).toBe(404);
            else notFound(r, `${method} ${path}`);
          }
        }
        const anon = await call(gw.url, 'GET', `/api/observability/${rest}`);
        expect(anon.status).toBeGreaterThanOrEqual(400);
        expect(anon.status).toBeLessThan(500);
      }
      // Ingest passes without a token: not its neighbours.
      notFound(await call(gw.url, 'POST', '/api/observability/metrics', { body: {} }), 'POST metrics without a token');
    });
    expect(got).toEqual([]);
  });

  it('lists no service’s internals in the merged /openapi.json', async () => {
    const r = await call(gw.url, 'GET', '/openapi.json');
    expect(r.status).toBe(200);
    const paths = Object.keys(r.json.paths as object);
    expect(paths).toEqual(expect.arrayContaining(['/api/observability/sessions', '/api/agents/{name}', '/api/bridge/session/servers']));
    const own = ['/health', '/ready', '/metrics', '/openapi.json'];
    expect(paths.filter((p) => !own.includes(p) && /\/(health|ready|metrics|openapi\.json|internal)(\/|$)/.test(p))).toEqual([]);
  });

  it('never tunnels an upgrade to an internal path', async () => {
    const got = await forwarded(async () => {
      for (const path of ['/api/observability/metrics', '/api/observability/health', '/api/observability/internal/ws', '/api/bridge/internal/ws']) {
        const r = await rawUpgrade(gw.url, `${path}?access_token=${alice}`, { origin: ORIGIN });
        expect(r.status).toBe(404);
      }
      // A public socket still opens.
      expect((await rawUpgrade(gw.url, `/api/observability/ws?access_token=${alice}`, { origin: ORIGIN })).status).toBe(101);
    });
    expect(got).toEqual([{ method: 'UPGRADE', path: `/ws?access_token=${alice}` }]);
  });

  const PREFLIGHT_PATHS = ['/api/agents', '/api/documents', '/api/observability/sessions', '/api/bridge/session/servers', '/api/chats/a/b/start', '/api/mozaiks/session', '/api/observability/events'];

  it('answers OPTIONS itself: 204 with its CORS headers for an allowed origin, none for another, never forwarded', async () => {
    const got = await forwarded(async () => {
      for (const path of PREFLIGHT_PATHS) {
        for (const auth of [{}, { token: alice }]) {
          const preflight = { 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization,content-type' };
          const allowed = await call(gw.url, 'OPTIONS', path, { ...auth, headers: { origin: ORIGIN, ...preflight } });
          expect(allowed.status).toBe(204);
          expect(allowed.headers['access-control-allow-origin']).toBe(ORIGIN);
          expect(allowed.headers['access-control-allow-methods']).toContain('POST');

          const foreign = await call(gw.url, 'OPTIONS', path, { ...auth, headers: { origin: EVIL, ...preflight } });
          expect(foreign.status).toBeGreaterThanOrEqual(200);
          expect(foreign.status).toBeLessThan(500);
          expect(foreign.headers['access-control-allow-origin']).toBeUndefined();

          // No origin at all (curl, a script): still the gateway's answer, no CORS headers.
          const bare = await call(gw.url, 'OPTIONS', path, auth);
          expect(bare.status).toBe(204);
          expect(bare.headers['access-control-allow-origin']).toBeUndefined();
          expect(bare.text).toBe('');
        }
      }
    });
    expect(got).toEqual([]);
  });

  // Segments an attacker would try, and random ones.
  const segment = fc.oneof(
    fc.constantFrom('metrics', 'METRICS', 'Metrics', 'health', 'HEALTH', 'ready', 'openapi.json', 'OPENAPI.JSON', 'internal', 'Internal', 'api', 'sessions', 'agents', 'documents', 'session', 'ws'),
    fc.constantFrom('%6Detrics', '%6d%65trics', '%68ealth', '%72eady', 'openapi%2Ejson', '%69nternal', '%61pi', '..', '.', '', '%2e%2e', '%2F', 'a%5Cb', '%', '%zz'),
    fc.stringMatching(/^[A-Za-z0-9._~!$&'()*+,;=:@-]{1,10}$/),
  );
  const pathUnder = fc
    .tuple(fc.constantFrom(...ROUTES.map((r) => r.prefix)), fc.array(segment, { maxLength: 4 }), fc.boolean(), fc.option(fc.stringMatching(/^[A-Za-z0-9=&]{0,8}$/), { nil: undefined }))
    .map(([prefix, segs, slash, query]) => `${prefix}${segs.map((s) => `/${s}`).join('')}${slash ? '/' : ''}${query === undefined ? '' : `?${query}`}`);

  test('property: under any prefix, no internal path is ever forwarded and nothing answers 5xx', async () => {
    await fc.assert(
      fc.asyncProperty(pathUnder, fc.constantFrom('GET', 'POST', 'HEAD', 'DELETE', 'OPTIONS'), fc.boolean(), fc.constantFrom(undefined, ORIGIN, EVIL), async (path, method, withToken, origin) => {
        const got = await forwarded(async () => {
          const r = await call(gw.url, method, path, { ...(withToken && { token: alice }), headers: origin ? { origin } : {} });
          if (r.status >= 500) throw new Error(`${r.status} for ${method} ${path}: ${r.text.slice(0, 200)}`);
          if (r.status >= 400 && method !== 'HEAD' && !ErrorBody.safeParse(r.json).success) throw new Error(`no error shape for ${method} ${path}`);
        });
        for (const g of got) if (internalAtService(g.path)) throw new Error(`${method} ${path} reached the service as ${g.method} ${g.path}`);
        if (method === 'OPTIONS' && got.length) throw new Error(`OPTIONS ${path} was forwarded`);
      }),
      { numRuns: RUNS },
    );
  });
});

import { z } from 'zod';
import type { RouteSpec } from '@tessera/contracts';
import { createLogger, Metrics, openAccess, serviceApp } from '../src';
import { call } from '../src/testing';
import { serve } from './support';

/** serviceApp, the one HTTP app of every service: what a client and an operator see of it. */
const logger = createLogger('service-app-test', 'silent');
const state = { storeDown: false, full: false, upstreamDegraded: false, shuttingDown: false };
const thing = { method: 'get', path: '/things/{id}', summary: 'A thing', access: 'public', params: z.object({ id: z.string().regex(/^[a-z]+$/) }), responses: { 200: { description: 'the thing' } } } as const satisfies RouteSpec;

let url: string;
let close: () => Promise<void>;

beforeAll(async () => {
  const http = serviceApp({
    service: 'kit-service-app-test',
    api: { title: 'A test service', readySummary: 'the store reachable' },
    services: { logger, metrics: new Metrics('kit-service-app-test'), config: { CORS_ORIGINS: [] } },
    health: {
      ready: {
        store: async () => {
          if (state.storeDown) throw new Error('connection refused');
        },
      },
      livenessDetails: () => ({ status: state.full ? 'degraded' : 'ok', capacity: { available: state.full ? 0 : 2 } }),
      readyDetails: async () => ({ status: state.upstreamDegraded ? 'degraded' : 'ok', upstreams: { a: state.upstreamDegraded ? 'degraded' : 'ok' } }),
    },
    isShuttingDown: () => state.shuttingDown,
    guards: { public: openAccess },
    routes: (routes) => routes.route(thing, ({ params }, _req, res) => res.json({ id: params.id })),
  });
  ({ url, close } = await serve(http.app));
});
afterAll(() => close());

it('answers /health with what the service adds, and degraded when it says so', async () => {
  expect((await call(url, 'GET', '/health')).json).toMatchObject({ status: 'ok', service: 'kit-service-app-test', capacity: { available: 2 } });
  state.full = true;
  const r = await call(url, 'GET', '/health');
  state.full = false;
  expect(r.status).toBe(200);
  expect(r.json).toMatchObject({ status: 'degraded', capacity: { available: 0 } });
});

it('answers /ready: 200 (degraded) when the service says so, 503 when a critical check fails or it shuts down', async () => {
  expect((await call(url, 'GET', '/ready')).json).toMatchObject({ status: 'ok', checks: { store: { status: 'ok' } }, upstreams: { a: 'ok' } });
  state.upstreamDegraded = true;
  const degraded = await call(url, 'GET', '/ready');
  expect([degraded.status, degraded.json.status]).toEqual([200, 'degraded']);
  state.storeDown = true;
  const down = await call(url, 'GET', '/ready');
  expect([down.status, down.json.status, down.json.checks.store.error]).toEqual([503, 'down', 'connection refused']);
  state.storeDown = false;
  state.upstreamDegraded = false;
  state.shuttingDown = true;
  const closing = await call(url, 'GET', '/ready');
  state.shuttingDown = false;
  expect([closing.status, closing.json.status]).toEqual([503, 'down']);
});

it('serves its declared routes with their contract, its document, metrics, and the one error shape', async () => {
  expect((await call(url, 'GET', '/things/abc')).json).toEqual({ id: 'abc' });
  const bad = await call(url, 'GET', '/things/ABC');
  expect(bad.status).toBe(400);
  expect(bad.json.error).toMatchObject({ code: 'VALIDATION_FAILED', details: { issues: [{ path: 'path.id' }] } });
  const doc = await call(url, 'GET', '/openapi.json');
  expect(doc.json.info.title).toBe('A test service');
  expect(Object.keys(doc.json.paths)).toEqual(['/health', '/ready', '/things/{id}']);
  expect(doc.json.paths['/ready'].get.summary).toBe('Readiness: the store reachable');
  expect((await call(url, 'GET', '/metrics')).status).toBe(200);
  const missing = await call(url, 'GET', '/nothing');
  expect([missing.status, missing.json.error.code]).toEqual([404, 'NOT_FOUND']);
});

it('refuses to build an app with a route declared under an access rule the service does not offer', () => {
  expect(() =>
    serviceApp({
      service: 'x',
      api: { title: 'x', readySummary: 'x' },
      services: { logger, metrics: new Metrics('kit-service-app-test-2'), config: { CORS_ORIGINS: [] } },
      health: { ready: {} },
      guards: { public: openAccess },
      routes: (routes) => routes.route({ ...thing, access: 'operator' } as never, () => undefined),
    }),
  ).toThrow(/offers no "operator" access/);
});

import type { RequestHandler } from 'express';
import { z } from 'zod';
import { buildOpenApi } from '@tessera/contracts';
import { createHttpApp, declareRoutes, finalizeHttpApp, Forbidden, Unauthorized } from '../src';
import { call } from '../src/testing';
import { capturedLogger, serve } from './support';

const { logger } = capturedLogger('routes-test');

/** A guard per rule: a header names the caller's role. */
const asRole =
  (...roles: string[]): RequestHandler =>
  (req, _res, next) => {
    const role = req.header('x-role');
    if (!role) return next(new Unauthorized('no role'));
    next(roles.includes(role) ? undefined : new Forbidden(`not one of ${roles.join(', ')}`));
  };

function things() {
  const routes = declareRoutes({ public: (_req, _res, next) => next(), user: asRole('user', 'operator'), operator: asRole('operator') });
  routes.route(
    {
      method: 'patch',
      path: '/things/{thing_id}',
      summary: 'Change a thing',
      access: 'operator',
      params: z.object({ thing_id: z.string().regex(/^t\d+$/) }),
      query: z.object({ dry: z.enum(['true', 'false']).default('false') }),
      body: z.object({ size: z.number().int().min(1).max(10) }).strict(),
      responses: { 200: { description: 'changed' } },
    },
    ({ params, query, body }, _req, res) => {
      res.json({ id: params.thing_id, dry: query.dry, size: body.size });
    },
  );
  routes.route(
    { method: 'put', path: '/things/{thing_id}/label', summary: 'Label a thing', access: 'operator', body: z.object({ label: z.string().optional() }).strict(), responses: { 200: { description: 'labelled' } } },
    ({ body }, _req, res) => {
      res.json({ label: body.label ?? null });
    },
  );
  routes.route({ method: 'get', path: '/things', summary: 'List things', access: 'user', responses: { 200: { description: 'things' } } }, (_input, _req, res) => {
    res.json([]);
  });
  return routes;
}

describe('declareRoutes', () => {
  let url: string;
  let close: () => Promise<void>;
  beforeAll(async () => {
    const app = createHttpApp({ logger, corsOrigins: [], bodyLimit: '1kb' });
    const routes = things();
    app.use(routes.router);
    finalizeHttpApp(app, logger, buildOpenApi({ title: 't', version: '1', routes: routes.specs }));
    ({ url, close } = await serve(app));
  });
  afterAll(() => close());

  it('checks the caller before it reads the input: no credential is a 401 even with a bad body', async () => {
    const r = await call(url, 'PATCH', '/things/nope', { body: { size: 99 } });
    expect(r.status).toBe(401);
    expect((await call(url, 'PATCH', '/things/t1', { body: { size: 2 }, headers: { 'x-role': 'user' } })).status).toBe(403);
  });

  it('parses path, query and body with the declared schemas, naming the field that is wrong', async () => {
    const bad = await call(url, 'PATCH', '/things/nope', { body: { size: 2 }, headers: { 'x-role': 'operator' } });
    expect(bad.status).toBe(400);
    expect(bad.json.error.message).toMatch(/path.*thing_id/);
    const big = await call(url, 'PATCH', '/things/t1', { body: { size: 11 }, headers: { 'x-role': 'operator' } });
    expect(big.status).toBe(400);
    expect(big.json.error.message).toMatch(/body.*size/);
    const ok = await call(url, 'PATCH', '/things/t1?dry=true', { body: { size: 3 }, headers: { 'x-role': 'operator' } });
    expect(ok).toMatchObject({ status: 200, json: { id: 't1', dry: 'true', size: 3 } });
  });

  it('refuses a request whose body is not JSON where the route takes one, even when every field is optional', async () => {
    for (const raw of [undefined, 'size=3']) {
      const r = await call(url, 'PUT', '/things/t1/label', { raw, headers: { 'x-role': 'operator', ...(raw && { 'content-type': 'text/plain' }) } });
      expect(r.status).toBe(400);
      expect(r.json.error.message).toMatch(/JSON body is required/);
    }
    expect(await call(url, 'PUT', '/things/t1/label', { body: {}, headers: { 'x-role': 'operator' } })).toMatchObject({ status: 200, json: { label: null } });
  });

  it('writes each declared route into the OpenAPI document with its rule', () => {
    const doc = buildOpenApi({ title: 't', version: '1', routes: things().specs }) as any;
    expect(doc.paths['/things/{thing_id}'].patch['x-tessera-access']).toBe('operator');
    expect(doc.paths['/things'].get['x-tessera-access']).toBe('user');
  });
});

describe('finalizeHttpApp with the API document', () => {
  it('refuses to build an app that answers a route the document does not declare', () => {
    const app = createHttpApp({ logger, corsOrigins: [], bodyLimit: '1kb' });
    const routes = things();
    app.use(routes.router);
    app.get('/sneaky', (_req, res) => res.json({ secret: true }));
    expect(() => finalizeHttpApp(app, logger, buildOpenApi({ title: 't', version: '1', routes: routes.specs }))).toThrow(/get \/sneaky/);
  });
});

import fc from 'fast-check';
import { z } from 'zod';
import type { RouteSpec } from '@tessera/contracts';
import { createAuth, createLogger, Metrics, serviceApp, signToken, type Principal } from '../src';
import { closeServer, serve } from './support';

/**
 * A route declared `direct` (the kit's direct lane, direct.ts): a plain request is served on node's
 * objects before express; anything else (an Origin, a body that is not plain JSON) goes through
 * express. Whichever lane takes it, the client gets the same answer.
 */
const SECRET = 'direct-lane-test-secret-0123456789abcdef';
const logger = createLogger('direct-test', 'silent');
const auth = createAuth({ enabled: true, secret: SECRET });
const run = {
  method: 'post',
  path: '/api/runs/{app_id}/{name}',
  summary: 'A run',
  access: 'user',
  params: z.object({ app_id: z.string().regex(/^[a-z0-9]+$/), name: z.string().min(1).max(16) }),
  body: z.object({ text: z.string().max(50), tags: z.array(z.string()).max(3).optional() }),
  responses: { 200: { description: 'the run' } },
} as const satisfies RouteSpec;
const plain = { method: 'get', path: '/api/plain/{id}', summary: 'Not direct', access: 'user', params: z.object({ id: z.string() }), responses: { 200: { description: 'ok' } } } as const satisfies RouteSpec;

let url: string;
let close: () => Promise<void>;
let token: string;
const before: string[] = [];

beforeAll(async () => {
  const http = serviceApp({
    service: 'kit-direct-test',
    api: { title: 'direct lane', readySummary: 'nothing' },
    services: { logger, metrics: new Metrics('kit-direct-test'), config: { CORS_ORIGINS: ['*'], BODY_LIMIT: '2kb' } },
    health: { ready: {} },
    guards: { user: auth.middleware() },
    beforeRoutes: [(req, _res, next) => (before.push(req.path), next())],
    routes: (routes) => {
      routes.route(
        run,
        async ({ params, body }, req, res) => {
          await new Promise((r) => setImmediate(r));
          // express sets req.route for a route it matched; the direct lane does not.
          res.json({ app: params.app_id, name: params.name, text: body.text, user: (req.principal as Principal).sub, lane: req.route ? 'express' : 'direct' });
        },
        { direct: true },
      );
      routes.route(plain, ({ params }, req, res) => res.json({ id: params.id, lane: req.route ? 'express' : 'direct' }));
    },
  });
  const served = await serve(http.app);
  http.attach(served.server);
  url = served.url;
  close = () => closeServer(served.server);
  token = await signToken(SECRET, { sub: 'u1', apps: ['a1'] });
});
afterAll(() => close());

interface Sent {
  path?: string;
  body?: string;
  headers?: Record<string, string>;
}

async function post({ path = '/api/runs/a1/hello', body, headers = {} }: Sent, origin?: string): Promise<{ status: number; json: Record<string, unknown>; headers: Headers }> {
  const r = await fetch(`${url}${path}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', ...headers, ...(origin && { origin }) },
    body,
  });
  const text = await r.text();
  return { status: r.status, json: text ? (JSON.parse(text) as Record<string, unknown>) : {}, headers: r.headers };
}

/** What the client sees, without what differs by design (the lane) or by request (the request id). */
const seen = ({ status, json }: { status: number; json: Record<string, unknown> }) => ({ status, json: { ...json, lane: undefined } });

it('serves a plain request direct, with the guard, the beforeRoutes, the parsed input and the kit headers; an Origin goes through express', async () => {
  before.length = 0;
  const direct = await post({ body: JSON.stringify({ text: 'hi' }) });
  expect(direct.status).toBe(200);
  expect(direct.json).toEqual({ app: 'a1', name: 'hello', text: 'hi', user: 'u1', lane: 'direct' });
  expect(direct.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
  expect(direct.headers.get('x-content-type-options')).toBe('nosniff');
  expect(before).toEqual(['/api/runs/a1/hello']);
  const viaExpress = await post({ body: JSON.stringify({ text: 'hi' }) }, 'https://app.example');
  expect(viaExpress.json.lane).toBe('express');
  expect(viaExpress.headers.get('access-control-allow-origin')).toBe('https://app.example');
  // The same headers but CORS's and what differs by request.
  const lasting = (h: Headers) => [...h.entries()].filter(([k]) => !/^(date|x-request-id|content-length|vary|access-control-.*)$/.test(k));
  expect(lasting(direct.headers)).toEqual(lasting(viaExpress.headers));
  expect(lasting(direct.headers).length).toBeGreaterThan(8);
  // A route not declared direct, and a compressed or non-JSON body, go through express.
  expect((await fetch(`${url}/api/plain/x`, { headers: { authorization: `Bearer ${token}` } }).then((r) => r.json())) as unknown).toEqual({ id: 'x', lane: 'express' });
  expect((await post({ body: JSON.stringify({ text: 'hi' }), headers: { 'content-type': 'application/json; charset=latin1' } })).status).toBe(415);
});

it('answers every client mistake as express does: status, error code and message', async () => {
  const cases: Sent[] = [
    { body: '{"text": ' },
    { body: '"just a string"' },
    { body: '' },
    { body: JSON.stringify({ text: 'x'.repeat(51) }) },
    { body: JSON.stringify({ text: 'x'.repeat(3000) }) },
    { body: JSON.stringify({ text: 'deep', tags: JSON.parse('['.repeat(200) + ']'.repeat(200)) as unknown }) },
    { path: '/api/runs/A_B/hello', body: JSON.stringify({ text: 'hi' }) },
    { path: '/api/runs/a1/' + 'n'.repeat(17), body: JSON.stringify({ text: 'hi' }) },
    { path: '/api/runs/a1/hel%ZZlo', body: JSON.stringify({ text: 'hi' }) },
    { body: JSON.stringify({ text: 'hi' }), headers: { authorization: 'Bearer nope' } },
    { body: JSON.stringify({ text: 'hi' }), headers: { authorization: '' } },
  ];
  for (const c of cases) {
    const [direct, viaExpress] = [await post(c), await post(c, 'https://app.example')];
    expect(seen(direct)).toEqual(seen(viaExpress));
    expect(direct.status).toBeGreaterThanOrEqual(400);
    expect(direct.status).toBeLessThan(500);
  }
});

it('property: any body, any path segment, the same answer from both lanes', async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.oneof(fc.json(), fc.string(), fc.record({ text: fc.string({ maxLength: 60 }), tags: fc.option(fc.array(fc.string(), { maxLength: 4 }), { nil: undefined }) })),
      fc.stringMatching(/^[A-Za-z0-9%._~-]{1,20}$/),
      async (body, name) => {
        const sent = { path: `/api/runs/a1/${name}`, body: typeof body === 'string' ? body : JSON.stringify(body) };
        const [direct, viaExpress] = [await post(sent), await post(sent, 'https://app.example')];
        expect(seen(direct)).toEqual(seen(viaExpress));
        expect(direct.status).toBeLessThan(500);
      },
    ),
    { numRuns: 150 },
  );
});

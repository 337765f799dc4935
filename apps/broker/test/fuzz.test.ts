/**
 * The broker against the real runtime (child processes): property-based hostile requests on every
 * route of its OpenAPI document (never a 5xx while the runtime is up, always the error shape), and
 * Auth0 subjects (`auth0|abc`) signed into a chat whose socket opens (issue 7, findings 4 and 14).
 */
import express from 'express';
import fc from 'fast-check';
import { ErrorBody } from '@tessera/contracts';
import { call, TestSocket } from '@tessera/kit/testing';
import { openapi } from '../src/app';
import { SECRET, serve, SERVICE_KEY, startTestBroker, token, type TestBroker } from './support';
import { startRuntime, type RuntimeProcesses } from './runtime-process';

const RUNS = Number(process.env.FUZZ_RUNS ?? 150);
let runtime: RuntimeProcesses;
let host: Awaited<ReturnType<typeof serve>>;
let broker: TestBroker;

beforeAll(async () => {
  // The host application's context source; one user's context holds what PostgreSQL cannot store.
  const app = express();
  app.get('/ctx', (req, res) => {
    if (req.query.user_id === 'bad-context') return void res.json({ note: 'a\u0000b' });
    res.json({ account_age_days: 3 });
  });
  [runtime, host] = await Promise.all([startRuntime({ JWT_SECRET: SECRET, SERVICE_KEY }), serve(app)]);
  broker = await startTestBroker({ RUNTIME_URL: runtime.url, CONTEXT_SOURCE_URL: `${host.url}/ctx` });
}, 60_000);

afterAll(async () => {
  await broker?.stop();
  await host?.close();
  await runtime?.stop();
});

describe('Auth0 subjects', () => {
  it.each(['auth0|abc', 'google-oauth2|1234'])('%s starts a session whose socket opens and runs a turn', async (sub) => {
    const tok = await token(sub);
    const r = await call(broker.url, 'POST', '/api/mozaiks/session', { token: tok, body: { workflow_name: 'assistant' } });
    expect(r.status).toBe(200);
    const path = new URL(r.json.websocket_url).pathname;
    expect(path).toBe(`/ws/assistant/demo-app/${r.json.chat_id}/${encodeURIComponent(sub)}`);
    // Clients open it through the gateway; the gateway passes the path as it is, so open it on the runtime.
    const socket = await TestSocket.connect(`${runtime.url.replace('http', 'ws')}${path}?access_token=${tok}`);
    expect((await socket.waitType('chat_meta')).data).toMatchObject({ chat_id: r.json.chat_id, user_id: sub, app_id: 'demo-app' });
    socket.send({ type: 'user.input.submit', text: 'hello' });
    expect((await socket.waitType('chat.run_complete', 20_000)).data.status).toBe('completed');
    await socket.close();
    const list = await call(broker.url, 'GET', '/api/mozaiks/sessions', { token: tok });
    expect(list.json).toEqual([expect.objectContaining({ chat_id: r.json.chat_id, user_id: sub })]);
  });
});

it('client text PostgreSQL cannot store is a 400 naming the field, not a 502 from the runtime', async () => {
  const tok = await token('carol');
  for (const [body, path] of [
    [{ workflow_name: 'assistant', context: { page: 'a\u0000b' } }, 'body.context.page'],
    [{ workflow_name: 'assistant', client_request_id: '\ud800' }, 'body.client_request_id'],
  ] as const) {
    const r = await call(broker.url, 'POST', '/api/mozaiks/session', { token: tok, body });
    expect({ status: r.status, code: r.json.error.code, path: r.json.error.details.issues[0].path }).toEqual({ status: 400, code: 'VALIDATION_FAILED', path });
  }
});

it("a host context the runtime could not store is the context source's failure (503), not the runtime's (502)", async () => {
  const r = await call(broker.url, 'POST', '/api/mozaiks/session', { token: await token('bad-context'), body: { workflow_name: 'assistant' } });
  expect(r.status).toBe(503);
  expect(r.json.error).toEqual({ code: 'SERVICE_UNAVAILABLE', message: 'user context unavailable' });
});

it('a token whose subject no runtime path can hold is a 403 on every route, not a 500', async () => {
  for (const sub of ['\ud800', 'a/b', 'nul\u0000']) {
    const tok = await token(sub);
    for (const [method, path, body] of [
      ['POST', '/api/mozaiks/session', { workflow_name: 'assistant' }],
      ['GET', '/api/mozaiks/sessions', undefined],
      ['GET', '/api/mozaiks/sessions/recent', undefined],
    ] as const) {
      const r = await call(broker.url, method, path, { token: tok, body });
      expect({ sub, path, status: r.status, code: r.json.error.code }).toEqual({ sub, path, status: 403, code: 'FORBIDDEN' });
      expect(r.json.error.message).toMatch(/^token subject cannot be a user id/);
    }
  }
});

/* ------------------------------------------------------------------ property-based */

const HOSTILE_TEXT = ['a\u0000b', '\ud800', 'x\udfff', '', ' ', '../x', '%ZZ', '😀'.repeat(30), 'x'.repeat(40_000)];
const text = fc.oneof(fc.constantFrom(...HOSTILE_TEXT), fc.string(), fc.string({ unit: 'binary', maxLength: 30 }));
const scalar = fc.oneof(text, fc.integer(), fc.double(), fc.constantFrom(1e308, 2 ** 64, true, null));
const deep = (n: number) => `${'{"a":'.repeat(n)}1${'}'.repeat(n)}`;
const json = fc.oneof(
  { weight: 3, arbitrary: scalar },
  { weight: 3, arbitrary: fc.dictionary(text, fc.oneof(scalar, fc.array(text, { maxLength: 3 })), { minKeys: 1, maxKeys: 4 }) },
  { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 4 }) },
);
const PLAUSIBLE: Record<string, unknown> = { workflow_name: 'assistant', client_request_id: 'req-1', context: { page: 'pricing' } };
const CONTENT_TYPES = ['application/json', 'text/plain', 'application/json; charset=utf-16', 'multipart/form-data; boundary=x', 'garbage'];

/** The session body: one field hostile, or any JSON, or a deep field, or bytes under any content type. */
const sessionBody: fc.Arbitrary<{ raw: string | Buffer; type: string }> = fc.oneof(
  { weight: 5, arbitrary: fc.tuple(fc.constantFrom(...Object.keys(PLAUSIBLE)), fc.oneof(text, json)).map(([f, v]) => ({ raw: JSON.stringify({ ...PLAUSIBLE, [f]: v }), type: 'application/json' })) },
  { weight: 1, arbitrary: json.map((v) => ({ raw: JSON.stringify(v) ?? 'null', type: 'application/json' })) },
  { weight: 1, arbitrary: fc.tuple(fc.constantFrom('context', 'workflow_name'), fc.integer({ min: 30, max: 50_000 })).map(([f, n]) => ({ raw: `{"workflow_name":"assistant","${f}":${deep(n)}}`, type: 'application/json' })) },
  { weight: 1, arbitrary: fc.tuple(fc.uint8Array({ maxLength: 200 }), fc.constantFrom(...CONTENT_TYPES)).map(([b, type]) => ({ raw: Buffer.from(b), type })) },
);

/** Tokens of subjects an identity provider might send, some no runtime path can hold. */
const SUBJECTS = ['fuzz', 'auth0|fuzz', 'a/b', 'has space', '%2F', 'x'.repeat(300), 'nul\u0000', '\ud800'];
let tokens: string[];
beforeAll(async () => {
  tokens = await Promise.all(SUBJECTS.map((s) => token(s)));
});

const ops = Object.entries((openapi as any).paths as Record<string, Record<string, any>>).flatMap(([path, item]) =>
  Object.keys(item).map((method) => ({ method: method.toUpperCase(), path, hasBody: !!item[method].requestBody })),
);

describe.each(ops)('$method $path', ({ method, path, hasBody }) => {
  it(`answers hostile requests without a 5xx while the runtime is up, in the error shape (${RUNS} runs)`, async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.record({
          body: hasBody ? sessionBody : fc.constant(undefined),
          auth: fc.oneof({ weight: 4, arbitrary: fc.constant(0) }, fc.integer({ min: 0, max: SUBJECTS.length - 1 }), fc.constant(-1)),
          query: fc.constantFrom('', '', '?%ZZ', '?user_id=other&app_id=x', '?a=%E0%A4%A'),
        }),
        async ({ body, auth, query }) => {
          const headers: Record<string, string> = auth >= 0 ? { authorization: `Bearer ${tokens[auth]}` } : { authorization: 'Bearer not.a.jwt' };
          if (body) headers['content-type'] = body.type;
          const r = await call(broker.url, method, path + query, { raw: body?.raw, headers });
          if (r.status >= 500 || (r.status >= 400 && !ErrorBody.safeParse(r.json).success))
            throw new Error(`${method} ${path}${query} as ${SUBJECTS[auth] ?? 'bad token'} ${String(body?.raw ?? '').slice(0, 200)} → ${r.status} ${r.text.slice(0, 300)}`);
        },
      ),
      { numRuns: RUNS },
    );
    expect((await call(broker.url, 'GET', '/health')).json.status).toBe('ok');
  });
});

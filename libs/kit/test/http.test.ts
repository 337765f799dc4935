import { execFileSync } from 'node:child_process';
import pg from 'pg';
import { z } from 'zod';
import { ErrorBody, ErrorCode, UserId } from '@tessera/contracts';
import { BODY_DEPTH, closeSignal, Conflict, createHttpApp, finalizeHttpApp, parseOr400, pgConnectionString, RESPONSE_CLOSED, sseKeepAlive, TooManyRequests } from '../src';
import { closedPort, TEST_DATABASE_URL } from '../src/testing';
import { capturedLogger, serve, until } from './support';

const ALLOWED = 'https://app.example';
const INTERNAL_DETAIL = 'relation "runtime.chats" does not exist (/srv/tessera/internal/store.ts)';
const NewUser = z.object({ user_id: UserId, age: z.number().int().min(0) });

const { logger, lines } = capturedLogger('http-test');
let url: string;
let close: () => Promise<void>;

beforeAll(async () => {
  const app = createHttpApp({ logger, corsOrigins: [ALLOWED], bodyLimit: '1kb' });
  app.post('/users', (req, res) => {
    const user = parseOr400(NewUser, req.body, 'body');
    res.status(201).json(user);
  });
  app.get('/boom', () => {
    throw new Error(INTERNAL_DETAIL);
  });
  app.get('/async-boom', async () => {
    await Promise.resolve();
    throw new TypeError(INTERNAL_DETAIL);
  });
  app.get('/conflict', () => {
    throw new Conflict('chat already exists', { chat_id: 'c1' });
  });
  app.get('/limited', () => {
    throw new TooManyRequests(7);
  });
  app.get('/unvalidated', (req, res) => {
    // A zod error thrown without parseOr400 is still the client's mistake.
    res.json(z.object({ limit: z.coerce.number().int().max(100) }).parse(req.query));
  });
  finalizeHttpApp(app, logger);
  ({ url, close } = await serve(app));
});
afterAll(() => close());

async function call(path: string, init?: RequestInit) {
  const res = await fetch(url + path, init);
  const text = await res.text();
  return { res, text, body: text ? JSON.parse(text) : undefined };
}
const postJson = (path: string, body: string, headers: Record<string, string> = {}) =>
  call(path, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body });

describe('the one error shape', () => {
  it('a valid body passes through', async () => {
    const { res, body } = await postJson('/users', JSON.stringify({ user_id: 'u-1', age: 30 }));
    expect(res.status).toBe(201);
    expect(body).toEqual({ user_id: 'u-1', age: 30 });
  });

  it('400 for a zod failure names each failing path', async () => {
    const { res, body } = await postJson('/users', JSON.stringify({ user_id: 'has spaces/and slash', age: -1 }));
    expect(res.status).toBe(400);
    expect(ErrorBody.parse(body)).toEqual(body);
    expect(body.error.code).toBe(ErrorCode.ValidationFailed);
    const paths = body.error.details.issues.map((i: { path: string }) => i.path);
    expect(paths.sort()).toEqual(['body.age', 'body.user_id']);
    expect(body.error.message).toContain('body.user_id');
  });

  it('400 names a missing field and a body that is not an object', async () => {
    const missing = await postJson('/users', JSON.stringify({ age: 1 }));
    expect(missing.res.status).toBe(400);
    expect(missing.body.error.details.issues).toEqual([{ path: 'body.user_id', message: expect.any(String) }]);
    const notObject = await postJson('/users', JSON.stringify([1, 2]));
    expect(notObject.res.status).toBe(400);
    expect(notObject.body.error.details.issues[0].path).toBe('body');
  });

  it('400 for a zod error thrown directly by a route', async () => {
    const { res, body } = await call('/unvalidated?limit=500');
    expect(res.status).toBe(400);
    expect(body.error.code).toBe(ErrorCode.ValidationFailed);
    expect(body.error.details.issues[0].path).toBe('limit');
  });

  it('400 for malformed JSON', async () => {
    const { res, body } = await postJson('/users', '{"user_id": "u-1", ');
    expect(res.status).toBe(400);
    expect(body).toEqual({ error: { code: ErrorCode.BadRequest, message: 'request body is not valid JSON' } });
  });

  it('404 for an unknown route, in the same shape', async () => {
    const { res, body } = await call('/nope/123');
    expect(res.status).toBe(404);
    expect(ErrorBody.parse(body)).toEqual(body);
    expect(body.error).toEqual({ code: ErrorCode.NotFound, message: 'no route for GET /nope/123' });
    expect(res.headers.get('content-type')).toMatch(/application\/json/);
  });

  it('413 for a body over the limit', async () => {
    const { res, body } = await postJson('/users', JSON.stringify({ user_id: 'u-1', age: 1, pad: 'x'.repeat(4096) }));
    expect(res.status).toBe(413);
    expect(body).toEqual({ error: { code: ErrorCode.TooLarge, message: 'request body is too large' } });
  });

  it('domain errors keep their status, code, details and headers', async () => {
    const conflict = await call('/conflict');
    expect(conflict.res.status).toBe(409);
    expect(conflict.body).toEqual({ error: { code: ErrorCode.Conflict, message: 'chat already exists', details: { chat_id: 'c1' } } });
    const limited = await call('/limited');
    expect(limited.res.status).toBe(429);
    expect(limited.res.headers.get('retry-after')).toBe('7');
    expect(limited.body.error).toMatchObject({ code: ErrorCode.RateLimited, details: { retry_after_s: 7 } });
  });

  it.each(['/boom', '/async-boom'])('500 for a thrown error on %s, with no stack or internal message in the body', async (path) => {
    const before = lines.length;
    const { res, text, body } = await call(path, { headers: { 'x-request-id': `req-500${path.replace('/', '-')}` } });
    expect(res.status).toBe(500);
    expect(body).toEqual({ error: { code: ErrorCode.Internal, message: 'internal error' } });
    expect(text).not.toMatch(/runtime\.chats|\/srv\/|store\.ts|Error|\bat /);
    // The details go to the log instead, with the request id to find them.
    const logged = lines.slice(before).map((l) => JSON.parse(l)).find((l) => l.message === 'request failed');
    expect(logged).toMatchObject({ level: 'error', request_id: `req-500${path.replace('/', '-')}`, url: path });
    expect(logged.err).toMatchObject({ message: INTERNAL_DETAIL, stack: expect.stringContaining('http.test.ts') });
  });
});

describe('the server listen() makes', () => {
  it("gives each request and response the app's prototypes before express sees them, and express works on them as usual", async () => {
    const app = createHttpApp({ logger });
    app.post('/echo/:name', (req, res) => void res.status(202).json({ name: req.params.name, q: req.query.q, body: req.body as unknown, ip: req.ip }));
    finalizeHttpApp(app, logger);
    const s = await serve(app);
    // Listened to before express: what node made, as node made it.
    const seen: boolean[] = [];
    s.server.prependListener('request', (req, res) => seen.push(Object.getPrototypeOf(req) === app.request && Object.getPrototypeOf(res) === app.response));
    try {
      for (let i = 0; i < 3; i++) {
        const r = await fetch(`${s.url}/echo/n${i}?q=${i}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ i }) });
        expect(r.status).toBe(202);
        expect(r.headers.get('etag')).toBeNull();
        expect(await r.json()).toEqual({ name: `n${i}`, q: String(i), body: { i }, ip: '127.0.0.1' });
      }
      expect(seen).toEqual([true, true, true]);
    } finally {
      await s.close();
    }
  });
  it('makes requests and responses V8 keeps with fast properties, all of one shape (a response in a dictionary cost every stream 3 KB and node a lookup per field)', () => {
    const out = execFileSync(process.execPath, ['--allow-natives-syntax', '--import', 'tsx', require.resolve('./fixtures/response-shape.ts')], { cwd: __dirname, encoding: 'utf8', timeout: 30_000 });
    expect(JSON.parse(out)).toEqual({ requestsFast: [true, true, true], responsesFast: [true, true, true], oneShape: true, appPrototypes: true });
  });
});

describe('closeSignal', () => {
  it("aborts when a response ends and when its client leaves mid-stream, with the one reason, no DOMException", async () => {
    const app = createHttpApp({ logger });
    const signals: AbortSignal[] = [];
    app.get('/done', (_req, res) => {
      signals.push(closeSignal(res));
      res.json({ ok: true });
    });
    app.get('/stream', (_req, res) => {
      const signal = closeSignal(res);
      signals.push(signal);
      res.status(200).setHeader('content-type', 'text/event-stream');
      res.write('data: 1\n\n');
      // Streams until the client goes; the signal is how it learns.
      signal.addEventListener('abort', () => res.end());
    });
    finalizeHttpApp(app, logger);
    const s = await serve(app);
    try {
      expect(await (await fetch(`${s.url}/done`)).json()).toEqual({ ok: true });
      const cut = new AbortController();
      const r = await fetch(`${s.url}/stream`, { signal: cut.signal });
      const reader = r.body!.getReader();
      expect(new TextDecoder().decode((await reader.read()).value)).toBe('data: 1\n\n');
      expect(signals[1].aborted).toBe(false);
      cut.abort();
      await until(() => signals.every((x) => x.aborted));
      expect(signals.map((x) => x.reason)).toEqual([RESPONSE_CLOSED, RESPONSE_CLOSED]);
    } finally {
      await s.close();
    }
  });
});

describe('sseKeepAlive', () => {
  it('sends every open stream a comment line each interval, and none once released', async () => {
    const app = createHttpApp({ logger });
    const releases: (() => void)[] = [];
    app.get('/events', (_req, res) => {
      res.status(200).setHeader('content-type', 'text/event-stream');
      res.flushHeaders();
      releases.push(sseKeepAlive(res, 40));
    });
    finalizeHttpApp(app, logger);
    const s = await serve(app);
    const read = async () => {
      const cut = new AbortController();
      const r = await fetch(`${s.url}/events`, { signal: cut.signal });
      const reader = r.body!.getReader();
      let text = '';
      return {
        cut,
        next: async () => {
          text += new TextDecoder().decode((await reader.read()).value);
          return text;
        },
      };
    };
    try {
      const [a, b] = [await read(), await read()];
      expect(await a.next()).toBe(': keep-alive\n\n');
      expect(await b.next()).toMatch(/^(: keep-alive\n\n)+$/);
      releases[0]();
      const quiet = a.next();
      const woke = await Promise.race([quiet.then(() => 'wrote'), new Promise((r) => setTimeout(() => r('quiet'), 200))]);
      expect(woke).toBe('quiet');
      expect(await b.next()).toMatch(/^(: keep-alive\n\n){2,}$/);
      releases[1]();
      a.cut.abort();
      b.cut.abort();
      await quiet.catch(() => undefined);
    } finally {
      await s.close();
    }
  });
});

describe('request ids', () => {
  it('echoes a well-formed x-request-id', async () => {
    const { res } = await call('/nope', { headers: { 'x-request-id': 'client-req.42:a_b' } });
    expect(res.headers.get('x-request-id')).toBe('client-req.42:a_b');
  });

  it('generates one when absent or malformed', async () => {
    const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
    const none = await call('/nope');
    expect(none.res.headers.get('x-request-id')).toMatch(uuid);
    const bad = await call('/nope', { headers: { 'x-request-id': 'has spaces and <html>' } });
    expect(bad.res.headers.get('x-request-id')).toMatch(uuid);
    const other = await call('/nope');
    expect(other.res.headers.get('x-request-id')).not.toBe(none.res.headers.get('x-request-id'));
  });
});

describe('CORS allow-list', () => {
  it('an allowed origin gets Access-Control-Allow-Origin with credentials', async () => {
    const { res } = await call('/nope', { headers: { origin: ALLOWED } });
    expect(res.headers.get('access-control-allow-origin')).toBe(ALLOWED);
    expect(res.headers.get('access-control-allow-credentials')).toBe('true');
    expect(res.headers.get('vary')).toMatch(/Origin/);
  });

  it('an allowed preflight answers 204 with the methods and requested headers', async () => {
    const res = await fetch(url + '/users', {
      method: 'OPTIONS',
      headers: { origin: ALLOWED, 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization,content-type' },
    });
    expect(res.status).toBe(204);
    expect(res.headers.get('access-control-allow-origin')).toBe(ALLOWED);
    expect(res.headers.get('access-control-allow-methods')).toContain('POST');
    expect(res.headers.get('access-control-allow-headers')).toBe('authorization,content-type');
  });

  it('a disallowed preflight is refused with 403 in the error shape', async () => {
    const { res, body } = await call('/users', { method: 'OPTIONS', headers: { origin: 'https://evil.example', 'access-control-request-method': 'POST' } });
    expect(res.status).toBe(403);
    expect(res.headers.get('access-control-allow-origin')).toBeNull();
    expect(body.error).toEqual({ code: ErrorCode.Forbidden, message: 'origin https://evil.example is not allowed' });
  });

  it('a disallowed origin gets no CORS headers on a simple request', async () => {
    const { res } = await call('/nope', { headers: { origin: 'https://evil.example' } });
    expect(res.headers.get('access-control-allow-origin')).toBeNull();
    expect(res.headers.get('access-control-allow-credentials')).toBeNull();
  });
});

it('every response carries the security headers and no x-powered-by', async () => {
  for (const path of ['/nope', '/boom']) {
    const { res } = await call(path);
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    expect(res.headers.get('x-frame-options')).toBe('DENY');
    expect(res.headers.get('referrer-policy')).toBe('no-referrer');
    expect(res.headers.get('strict-transport-security')).toMatch(/max-age=\d+/);
    expect(res.headers.get('x-powered-by')).toBeNull();
  }
});

it('access log lines name the request without its secrets', async () => {
  const before = lines.length;
  await call('/nope?access_token=query-secret-1', { headers: { 'x-request-id': 'log-check-1' } });
  const entry = lines
    .slice(before)
    .map((l) => JSON.parse(l))
    .find((l) => l.request_id === 'log-check-1');
  expect(entry).toMatchObject({ level: 'http', method: 'GET', status: 404 });
  expect(entry.url).toBe('/nope?access_token=[REDACTED]');
});

it('an allowed origin may read the request id, rate-limit and Retry-After headers; the API allows no framing or scripts', async () => {
  const { res } = await call('/nope', { headers: { origin: ALLOWED } });
  expect(res.headers.get('access-control-expose-headers')).toBe('X-Request-Id,Retry-After,X-RateLimit-Limit,X-RateLimit-Remaining');
  expect(res.headers.get('content-security-policy')).toBe("default-src 'none';frame-ancestors 'none'");
  expect(res.headers.get('cross-origin-resource-policy')).toBe('same-site');
});

describe('hostile bodies and failing dependencies', () => {
  const { logger: log, lines: logLines } = capturedLogger('http-hostile', 'info');
  const PRISMA_LIKE = `Invalid \`prisma.chat.update()\` invocation:\n\n${'function(e){return e&&e.__esModule?e:{default:e}};'.repeat(1_400)}`;
  let base: string;
  let stop: () => Promise<void>;
  let pool: pg.Pool;

  beforeAll(async () => {
    pool = new pg.Pool({ connectionString: pgConnectionString(TEST_DATABASE_URL), max: 2 });
    const down = new pg.Pool({ connectionString: `postgresql://x:y@127.0.0.1:${await closedPort()}/x`, connectionTimeoutMillis: 2_000 });
    const app = createHttpApp({ logger: log });
    app.post('/echo', (req, res) => res.json({ keys: Object.keys(req.body ?? {}) }));
    app.get('/prisma-like', () => {
      throw Object.assign(new Error(PRISMA_LIKE), { name: 'PrismaClientUnknownRequestError', clientVersion: '6.19.3' });
    });
    app.get('/pg-nul', async () => void (await pool.query('SELECT $1::text', ['a\u0000b'])));
    app.get('/pg-down', async () => void (await down.query('SELECT 1')));
    finalizeHttpApp(app, log);
    ({ url: base, close: stop } = await serve(app));
  });
  afterAll(async () => {
    await stop();
    await pool.end();
  });

  const nestedBody = (levels: number) => '{"x":'.repeat(levels) + '1' + '}'.repeat(levels);

  it.each([BODY_DEPTH + 1, 500, 10_000, 100_000])('a JSON body nested %i deep is a 400 naming the field, before any route runs', async (levels) => {
    const r = await fetch(`${base}/echo`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: nestedBody(levels) });
    const body = (await r.json()) as any;
    expect(r.status).toBe(400);
    expect(body.error).toEqual({
      code: ErrorCode.ValidationFailed,
      message: `invalid body: body.x.x: nests deeper than ${BODY_DEPTH} levels`,
      details: { issues: [{ path: 'body.x.x', message: `nests deeper than ${BODY_DEPTH} levels` }] },
    });
  });

  it('a body at the bound passes', async () => {
    const r = await fetch(`${base}/echo`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: nestedBody(BODY_DEPTH) });
    expect(r.status).toBe(200);
  });

  it('40 failing requests whose errors carry 68 KB each grow the log by a bounded amount, each line naming the error', async () => {
    expect(PRISMA_LIKE.length).toBeGreaterThan(68_000);
    const before = logLines.slice();
    for (let i = 0; i < 40; i++) {
      const r = await fetch(`${base}/prisma-like`);
      expect(r.status).toBe(500);
      expect(await r.json()).toEqual({ error: { code: ErrorCode.Internal, message: 'internal error' } });
    }
    const added = logLines.slice(before.length);
    const bytes = added.reduce((n, l) => n + l.length, 0);
    expect(bytes).toBeLessThan(40 * 2_000);
    const failed = added.map((l) => JSON.parse(l)).filter((l) => l.message === 'request failed');
    expect(failed).toHaveLength(40);
    expect(failed[0]).toMatchObject({ status: 500, err: { name: 'PrismaClientUnknownRequestError', message: expect.stringContaining('Invalid `prisma.chat.update()` invocation') } });
    expect(failed[0].err.message.length).toBeLessThan(400);
  });

  it('a PostgreSQL error is a 500 without its text; an unreachable database a 503 to retry; each logged short', async () => {
    const before = logLines.length;
    const nul = await fetch(`${base}/pg-nul`);
    expect(nul.status).toBe(500);
    expect(await nul.text()).not.toMatch(/0x00|UTF8|byte sequence/i);
    const down = await fetch(`${base}/pg-down`);
    expect(down.status).toBe(503);
    expect(((await down.json()) as any).error).toEqual({ code: ErrorCode.Unavailable, message: 'storage unavailable; try again' });
    const logged = logLines.slice(before).map((l) => JSON.parse(l)).filter((l) => l.message === 'request failed');
    expect(logged.map((l) => [l.status, l.err.code])).toEqual([
      [500, '22021'],
      [503, 'ECONNREFUSED'],
    ]);
    for (const l of logged) expect(JSON.stringify(l).length).toBeLessThan(2_000);
  });
});

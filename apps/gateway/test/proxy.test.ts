import { createHash } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import express from 'express';
import { call, closedPort } from '@tessera/kit/testing';
import { sleep, startStandIn, startTestGateway, token, type StandIn, type TestGateway } from './support';

/** A promise with its resolve function, to make one side wait for the other. */
function deferred<T = void>() {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

describe('gateway HTTP proxy', () => {
  let upstream: StandIn;
  let gw: TestGateway;
  let auth: string;
  const seen: { path: string; headers: Record<string, unknown> }[] = [];
  let secondChunk = deferred();
  let firstBodyChunk = deferred<string>();

  beforeAll(async () => {
    const app = express();
    app.use((req, _res, next) => {
      seen.push({ path: req.originalUrl, headers: { ...req.headers } });
      next();
    });
    app.get('/api/workflows', (req, res) => res.json({ assistant: { name: 'assistant' }, authorization: req.headers.authorization ?? null }));
    app.get('/api/chats/headers', (req, res) => res.json({ headers: req.headers }));
    app.get('/api/chats/teapot', (_req, res) => {
      res.setHeader('x-custom', 'kept');
      res.setHeader('set-cookie', ['a=1', 'b=2']);
      res.setHeader('access-control-allow-origin', 'http://evil.example');
      res.status(418).json({ error: { code: 'TEAPOT', message: 'short and stout' } });
    });
    // Streams one chunk, then waits until the test has seen it before sending the rest.
    app.get('/api/chats/slow', async (_req, res) => {
      res.setHeader('content-type', 'text/plain');
      res.write('first;');
      await secondChunk.promise;
      res.end('second');
    });
    // Reads the body as it comes; reports the first chunk before the client has sent the rest.
    app.post('/api/chats/echo', (req, res) => {
      const hash = createHash('sha256');
      let bytes = 0;
      let first = true;
      req.on('data', (c: Buffer) => {
        if (first) firstBodyChunk.resolve(c.toString());
        first = false;
        bytes += c.length;
        hash.update(c);
      });
      req.on('end', () => res.json({ bytes, sha256: hash.digest('hex') }));
    });
    app.post('/api/chat/upload', (req, res) => {
      let bytes = 0;
      req.on('data', (c: Buffer) => (bytes += c.length));
      req.on('end', () => res.json({ bytes }));
    });
    app.get('/api/chats/hang', () => undefined);
    app.get('/api/mozaiks/sessions', (_req, res) => res.json([]));
    upstream = await startStandIn(app);
    gw = await startTestGateway({
      RUNTIME_URL: upstream.url,
      BROKER_URL: `http://127.0.0.1:${await closedPort()}`,
      BODY_LIMIT: '1kb',
      UPLOAD_BODY_LIMIT: '8kb',
      UPSTREAM_TIMEOUT_MS: '400',
    });
    auth = `Bearer ${await token('alice')}`;
  });

  afterAll(async () => {
    secondChunk.resolve();
    await gw.stop();
    await upstream.close();
  });

  it('passes status, headers and body, keeps Authorization, owns CORS', async () => {
    const r = await call(gw.url, 'GET', '/api/chats/teapot', { headers: { authorization: auth, origin: 'http://localhost:5173' } });
    expect(r.status).toBe(418);
    expect(r.json).toEqual({ error: { code: 'TEAPOT', message: 'short and stout' } });
    expect(r.headers['x-custom']).toBe('kept');
    expect(r.headers['set-cookie']).toEqual(['a=1', 'b=2']);
    expect(r.headers['access-control-allow-origin']).toBe('http://localhost:5173');
    expect(seen.at(-1)!.headers.authorization).toBe(auth);
  });

  it('sets a request id and X-Forwarded-*, drops spoofed ones and the service key', async () => {
    const r = await call(gw.url, 'GET', '/api/chats/headers', {
      headers: { authorization: auth, 'x-tessera-service-key': 'i-am-a-service', 'x-forwarded-for': '6.6.6.6', 'x-request-id': 'req-abc.123' },
    });
    expect(r.status).toBe(200);
    const h = r.json.headers;
    expect(h['x-tessera-service-key']).toBeUndefined();
    expect(h['x-request-id']).toBe('req-abc.123');
    expect(r.headers['x-request-id']).toBe('req-abc.123');
    expect(h['x-forwarded-for']).toBe('127.0.0.1');
    expect(h['x-forwarded-proto']).toBe('http');
    expect(h['x-forwarded-host']).toBe(new URL(gw.url).host);

    const generated = await call(gw.url, 'GET', '/api/chats/headers', { headers: { authorization: auth } });
    expect(generated.json.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
    expect(generated.headers['x-request-id']).toBe(generated.json.headers['x-request-id']);
  });

  it('streams a slow response: the first chunk arrives before the service has finished', async () => {
    secondChunk = deferred();
    const chunks: string[] = [];
    const done = new Promise<void>((resolve, reject) => {
      const u = new URL(gw.url);
      httpRequest({ hostname: u.hostname, port: u.port, path: '/api/chats/slow', headers: { authorization: auth }, agent: false }, (res) => {
        expect(res.statusCode).toBe(200);
        res.on('data', (c: Buffer) => {
          chunks.push(c.toString());
          // The service holds the rest back until this chunk is here: a buffering proxy would deadlock.
          if (chunks.length === 1) secondChunk.resolve();
        });
        res.on('end', () => resolve());
        res.on('error', reject);
      })
        .on('error', reject)
        .end();
    });
    await done;
    expect(chunks[0]).toBe('first;');
    expect(chunks.join('')).toBe('first;second');
  });

  it('streams a request body up: the service reads the first chunk before the client sends the next', async () => {
    firstBodyChunk = deferred<string>();
    const u = new URL(gw.url);
    const reply = new Promise<any>((resolve, reject) => {
      const req = httpRequest(
        { hostname: u.hostname, port: u.port, path: '/api/chats/echo', method: 'POST', headers: { authorization: auth, 'content-type': 'application/octet-stream' }, agent: false },
        (res) => {
          let text = '';
          res.on('data', (c) => (text += c));
          res.on('end', () => resolve({ status: res.statusCode, body: JSON.parse(text) }));
        },
      );
      req.on('error', reject);
      req.write('hello ');
      void firstBodyChunk.promise.then(() => req.end('world'));
    });
    expect(await firstBodyChunk.promise).toBe('hello ');
    const r = await reply;
    expect(r.status).toBe(200);
    expect(r.body).toEqual({ bytes: 11, sha256: createHash('sha256').update('hello world').digest('hex') });
  });

  it('answers 413 before proxying a declared oversized body, and while streaming a chunked one', async () => {
    const before = seen.length;
    const big = await call(gw.url, 'POST', '/api/chats/echo', { headers: { authorization: auth, 'content-type': 'text/plain' }, raw: 'x'.repeat(2048) });
    expect(big.status).toBe(413);
    expect(big.json.error.code).toBe('PAYLOAD_TOO_LARGE');
    expect(seen.length).toBe(before);

    // Chunked: no Content-Length, the limit is found while counting.
    const u = new URL(gw.url);
    const status = await new Promise<number>((resolve, reject) => {
      const req = httpRequest(
        { hostname: u.hostname, port: u.port, path: '/api/chats/echo', method: 'POST', headers: { authorization: auth, 'transfer-encoding': 'chunked' }, agent: false },
        (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        },
      );
      req.on('error', reject);
      req.write('y'.repeat(600));
      setTimeout(() => req.write('y'.repeat(600)), 50);
    });
    expect(status).toBe(413);
  });

  it('gives the upload route its larger limit', async () => {
    const ok = await call(gw.url, 'POST', '/api/chat/upload', { headers: { authorization: auth }, raw: Buffer.alloc(6000) });
    expect(ok.status).toBe(200);
    expect(ok.json).toEqual({ bytes: 6000 });
    const tooBig = await call(gw.url, 'POST', '/api/chat/upload', { headers: { authorization: auth }, raw: Buffer.alloc(9000) });
    expect(tooBig.status).toBe(413);
  });

  it('refuses missing, tampered, expired and foreign tokens with 401 at the edge', async () => {
    const before = seen.length;
    const good = await token('alice');
    const [h, p, s] = good.split('.');
    const tamperedPayload = Buffer.from(JSON.stringify({ sub: 'mallory', apps: ['demo-app'], exp: 9999999999 })).toString('base64url');
    const cases: [string, Record<string, string>][] = [
      ['missing', {}],
      ['tampered', { authorization: `Bearer ${h}.${tamperedPayload}.${s}` }],
      ['bad signature', { authorization: `Bearer ${h}.${p}.${s.slice(0, -4)}AAAA` }],
      ['expired', { authorization: `Bearer ${await token('alice', {}, Math.floor(Date.now() / 1000) - 60)}` }],
      ['garbage', { authorization: 'Bearer not-a-jwt' }],
    ];
    for (const [name, headers] of cases) {
      const r = await call(gw.url, 'GET', '/api/chats/headers', { headers });
      expect({ name, status: r.status, code: r.json?.error?.code }).toEqual({ name, status: 401, code: 'UNAUTHORIZED' });
      expect(r.headers['www-authenticate']).toBe('Bearer');
    }
    expect(seen.length).toBe(before);
  });

  it('lets workflow discovery and CORS preflight through without a token', async () => {
    const r = await call(gw.url, 'GET', '/api/workflows');
    expect(r.status).toBe(200);
    expect(r.json.assistant.name).toBe('assistant');
    const pre = await call(gw.url, 'OPTIONS', '/api/chats/x/y/start', {
      headers: { origin: 'http://localhost:5173', 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization,content-type' },
    });
    expect(pre.status).toBe(204);
    expect(pre.headers['access-control-allow-origin']).toBe('http://localhost:5173');
    const denied = await call(gw.url, 'OPTIONS', '/api/chats/x/y/start', { headers: { origin: 'http://evil.example', 'access-control-request-method': 'POST' } });
    expect(denied.status).toBe(403);
  });

  it('answers 503 at once for a service that is down or not deployed, 504 for one that does not answer', async () => {
    const down = await call(gw.url, 'GET', '/api/mozaiks/sessions', { headers: { authorization: auth } });
    expect(down.status).toBe(503);
    expect(down.json.error).toMatchObject({ code: 'SERVICE_UNAVAILABLE', message: 'broker is unavailable' });
    expect(down.ms).toBeLessThan(3000);

    const off = await call(gw.url, 'GET', '/api/agents', { headers: { authorization: auth } });
    expect(off.status).toBe(503);
    expect(off.json.error.message).toBe('agents is not deployed');

    const hang = await call(gw.url, 'GET', '/api/chats/hang', { headers: { authorization: auth } });
    expect(hang.status).toBe(504);
    expect(hang.json.error.code).toBe('GATEWAY_TIMEOUT');
    expect(hang.ms).toBeLessThan(3000);
  });

  it('answers 404 for unknown paths and 400 for dot segments, in the error shape', async () => {
    const unknown = await call(gw.url, 'GET', '/nowhere', { headers: { authorization: auth } });
    expect(unknown.status).toBe(404);
    expect(unknown.json.error.code).toBe('NOT_FOUND');
    const traversal = await call(gw.url, 'GET', '/api/workflows/../chats/headers');
    expect(traversal.status).toBe(400);
    const encoded = await call(gw.url, 'GET', '/api/workflows/%2e%2e/chats/headers');
    expect(encoded.status).toBe(400);
  });

  it('drains an in-flight proxied response on shutdown, and takes no new connections', async () => {
    const own = await startTestGateway({ RUNTIME_URL: upstream.url, BROKER_URL: 'off' });
    secondChunk = deferred();
    const u = new URL(own.url);
    const firstSeen = deferred();
    const body = new Promise<string>((resolve, reject) => {
      httpRequest({ hostname: u.hostname, port: u.port, path: '/api/chats/slow', headers: { authorization: auth }, agent: false }, (res) => {
        let text = '';
        res.on('data', (c) => {
          text += c;
          firstSeen.resolve();
        });
        res.on('end', () => resolve(text));
        res.on('error', reject);
      })
        .on('error', reject)
        .end();
    });
    await firstSeen.promise;
    const stopped = own.stop();
    await sleep(100);
    await expect(call(own.url, 'GET', '/api/workflows')).rejects.toThrow(/ECONNREFUSED/);
    secondChunk.resolve();
    expect(await body).toBe('first;second');
    await stopped;
  });

  it('reports proxied latency by upstream on /metrics', async () => {
    await sleep(10);
    const m = await call(gw.url, 'GET', '/metrics');
    expect(m.text).toMatch(/gateway_upstream_duration_seconds_count\{service="gateway",upstream="runtime",method="GET",status="200"\} \d+/);
    expect(m.text).toMatch(/gateway_upstream_duration_seconds_count\{service="gateway",upstream="broker",method="GET",status="503"\} 1/);
  });
});

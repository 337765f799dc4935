import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { WebSocketServer, type WebSocket } from 'ws';
import { call, closedPort, spawnService, TestSocket } from '../src/testing';
import { closeServer } from './support';

const ROOT = resolve(__dirname, '../../..');

describe('closedPort and call', () => {
  let server: Server;
  let url: string;
  const seen: { method?: string; headers: IncomingHttpHeaders; body: string }[] = [];

  beforeAll(async () => {
    server = createServer((req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        seen.push({ method: req.method, headers: req.headers, body });
        if (req.url === '/text') return void res.end('plain words');
        res.setHeader('content-type', 'application/json');
        res.statusCode = 201;
        res.end(JSON.stringify({ got: body }));
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => closeServer(server));

  it('sends a JSON body with its headers and a bearer token, and reads status, headers, json, text and time', async () => {
    const r = await call(url, 'POST', '/things', { token: 'tok', body: { a: 1 }, headers: { 'x-extra': 'yes' } });
    expect(r).toMatchObject({ status: 201, json: { got: '{"a":1}' }, text: '{"got":"{\\"a\\":1}"}' });
    expect(r.headers['content-type']).toBe('application/json');
    expect(r.ms).toBeGreaterThan(0);
    expect(seen.at(-1)).toMatchObject({ method: 'POST', body: '{"a":1}' });
    expect(seen.at(-1)!.headers).toMatchObject({ authorization: 'Bearer tok', 'content-type': 'application/json', 'content-length': '7', 'x-extra': 'yes' });
  });

  it('sends raw bytes as given, and leaves json undefined for a body that is not JSON', async () => {
    const r = await call(url, 'PUT', '/text', { raw: '{not json', headers: { 'content-type': 'text/plain' } });
    expect(r).toMatchObject({ status: 200, text: 'plain words', json: undefined });
    expect(seen.at(-1)).toMatchObject({ method: 'PUT', body: '{not json' });
    expect(seen.at(-1)!.headers['content-type']).toBe('text/plain');
    expect(seen.at(-1)!.headers.authorization).toBeUndefined();
  });

  it('gives a port that refuses connections', async () => {
    await expect(call(`http://127.0.0.1:${await closedPort()}`, 'GET', '/')).rejects.toThrow(/ECONNREFUSED/);
  });
});

describe('TestSocket', () => {
  let server: Server;
  let wss: WebSocketServer;
  let base: string;

  beforeAll(async () => {
    server = createServer();
    wss = new WebSocketServer({ server, verifyClient: ({ req }: { req: { url?: string } }) => req.url !== '/refuse' });
    wss.on('connection', (ws: WebSocket) => {
      ws.send(JSON.stringify({ type: 'hello', data: {}, timestamp: 't0' }));
      ws.on('message', (d) => {
        const m = JSON.parse(String(d));
        if (m.type === 'bye') return ws.close(4000, 'done');
        // An echo as a timeline event, then a notice without an index.
        ws.send(JSON.stringify({ type: 'echo', data: m, timestamp: 't', index: m.n }));
        ws.send(JSON.stringify({ type: 'notice', data: {}, timestamp: 't' }));
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `ws://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await new Promise<void>((r) => wss.close(() => r()));
    await closeServer(server);
  });

  it('records envelopes, waits for one from an index on, keeps the timeline, and reports the close', async () => {
    const s = await TestSocket.connect(`${base}/chat`);
    expect((await s.waitType('hello')).timestamp).toBe('t0');
    s.send({ type: 'say', n: 1 });
    await s.waitFor((m) => m.type === 'notice');
    const from = s.messages.length;
    s.send({ type: 'say', n: 2 });
    // The first notice is already there; from `from` on, only the second one counts.
    await s.waitType('notice', 2_000, from);
    expect(s.messages.slice(from).map((m) => m.type)).toEqual(['echo', 'notice']);
    expect(s.timeline().map((m) => m.index)).toEqual([1, 2]);
    await expect(s.waitType('never', 50)).rejects.toThrow('timed out waiting; got: hello, echo, notice, echo, notice');

    expect(s.closeCode).toBeNull();
    s.send({ type: 'bye' });
    expect(await s.closed).toBe(4000);
    expect({ code: s.closeCode, reason: s.closeReason }).toEqual({ code: 4000, reason: 'done' });
  });

  it('rejects a refused handshake with its HTTP status, and still settles closed', async () => {
    await expect(TestSocket.connect(`${base}/refuse`)).rejects.toMatchObject({ status: 401 });
    const s = new TestSocket(`${base}/refuse`);
    expect(await s.closed).toBe(1006);
  });
});

describe('spawnService', () => {
  let dir: string;
  // A service in TypeScript (run through tsx): /health on PORT, a line once listening, an exit on SIGTERM.
  const service = `
    import { createServer } from 'node:http';
    const port: number = Number(process.env.PORT ?? 0);
    if (process.env.FAIL) {
      console.error('bad config');
      process.exit(3);
    }
    const server = createServer((_req, res) => res.end('ok'));
    server.listen(port, '127.0.0.1', () => console.log('service listening'));
    process.on('SIGTERM', () => {
      console.log('stopping');
      server.close(() => process.exit(0));
    });
  `;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'kit-spawn-'));
    writeFileSync(join(dir, 'service.ts'), service);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('is ready when its URL answers, and stop() ends it with SIGTERM', async () => {
    const port = await closedPort();
    const svc = await spawnService({ name: 'svc', entry: join(dir, 'service.ts'), cwd: ROOT, env: { PORT: String(port) }, ready: { url: `http://127.0.0.1:${port}/health` } });
    expect((await call(`http://127.0.0.1:${port}`, 'GET', '/health')).text).toBe('ok');
    await svc.stop();
    expect(svc.child.exitCode).toBe(0);
    expect(svc.output()).toContain('stopping');
  });

  it('is ready on a log line; stop(SIGKILL) kills the service itself, not a wrapper around it', async () => {
    const port = await closedPort();
    const svc = await spawnService({ name: 'svc', entry: join(dir, 'service.ts'), cwd: ROOT, env: { PORT: String(port) }, ready: { log: 'service listening' } });
    await svc.stop('SIGKILL');
    expect(svc.child.signalCode).toBe('SIGKILL');
    await expect(call(`http://127.0.0.1:${port}`, 'GET', '/health')).rejects.toThrow(/ECONNREFUSED/);
  });

  it('rejects with the output when the service exits before it is ready', async () => {
    await expect(spawnService({ name: 'svc', entry: join(dir, 'service.ts'), cwd: ROOT, env: { FAIL: '1' }, ready: { log: 'never' } })).rejects.toThrow(/svc exited \(3\):\n[^]*bad config/);
  });
});

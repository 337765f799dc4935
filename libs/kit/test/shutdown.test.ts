import { connect, type Socket } from 'node:net';
import type { Server } from 'node:http';
import { WebSocket } from 'ws';
import { CloseCode } from '@tessera/contracts';
import { createHttpApp, createRedis, finalizeHttpApp, GracefulShutdown, listen, SocketHub, type Logger } from '../src';
import { TEST_REDIS_URL } from '../src/testing';
import { capturedLogger, closeServer, sleep, until } from './support';

const SLOW_MS = 500;
const TIMEOUT_MS = 3_000;

/** A service as main.ts wires it: express app, WebSocket hub on upgrade, Redis, one shutdown path. */
async function startService(logger: Logger) {
  let slowArrived!: () => void;
  const slowStarted = new Promise<void>((r) => (slowArrived = r));
  const app = createHttpApp({ logger });
  app.get('/slow', (_req, res) => {
    slowArrived();
    setTimeout(() => res.json({ done: true }), SLOW_MS);
  });
  app.get('/fast', (_req, res) => res.json({ ok: true }));
  finalizeHttpApp(app, logger);
  const { server, port, url } = await listen(app, 0, '127.0.0.1');
  const hub = new SocketHub({ logger });
  hub.attach(server, [{ path: /^\/live$/, open: async () => ({ onMessage: () => undefined }) }]);
  const redis = createRedis(TEST_REDIS_URL, logger, 'shutdown-test');
  await redis.ping();
  // The order main.ts uses: stop taking requests first, then sockets, then connections.
  const shutdown = new GracefulShutdown(logger, TIMEOUT_MS)
    .addServer('http', server)
    .add('ws', () => hub.close())
    .add('redis', () => redis.quit());
  return { server, port, url, hub, redis, shutdown, slowStarted };
}

function openSocket(url: string): Promise<{ ws: WebSocket; closed: Promise<{ code: number; reason: string }> }> {
  const ws = new WebSocket(url.replace(/^http/, 'ws') + '/live');
  const closed = new Promise<{ code: number; reason: string }>((r) => ws.once('close', (code, reason) => r({ code, reason: String(reason) })));
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve({ ws, closed }));
    ws.once('error', reject);
  });
}

/** A raw keep-alive connection that has finished one request and now sits idle. */
async function idleKeepAlive(port: number): Promise<{ socket: Socket; closed: Promise<void> }> {
  const socket = connect(port, '127.0.0.1');
  const closed = new Promise<void>((r) => socket.once('close', () => r()));
  await new Promise<void>((r) => socket.once('connect', () => r()));
  socket.write('GET /fast HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n\r\n');
  await new Promise<void>((r) => socket.once('data', () => r()));
  return { socket, closed };
}

function connectOutcome(port: number): Promise<string> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve('connected');
    });
    s.once('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
  });
}

describe('GracefulShutdown', () => {
  let server: Server | undefined;
  afterEach(async () => {
    if (server) await closeServer(server);
  });

  it('drains in-flight requests, refuses new connections, closes sockets with 1001 and every resource', async () => {
    const { logger, text } = capturedLogger('shutdown-test');
    const svc = await startService(logger);
    server = svc.server;
    const live = await openSocket(svc.url);
    const idle = await idleKeepAlive(svc.port);
    await until(() => svc.hub.size === 1);

    const inflight = fetch(`${svc.url}/slow`).then(async (r) => ({ status: r.status, body: await r.json() }));
    await svc.slowStarted;

    const t0 = Date.now();
    const run = svc.shutdown.run();
    expect(svc.shutdown.shuttingDown).toBe(true);
    expect(svc.shutdown.run()).toBe(run); // a second signal does not start a second shutdown

    // New connections are refused at once; the idle keep-alive connection is closed.
    expect(await connectOutcome(svc.port)).toBe('ECONNREFUSED');
    await idle.closed;

    // The request that was in flight still completes.
    expect(await inflight).toEqual({ status: 200, body: { done: true } });

    // The WebSocket is told the server is going away, not dropped.
    expect(await live.closed).toEqual({ code: CloseCode.GoingAway, reason: 'server shutting down' });
    expect(CloseCode.GoingAway).toBe(1001);

    await run;
    const elapsed = Date.now() - t0;
    expect(elapsed).toBeGreaterThanOrEqual(SLOW_MS - 100);
    expect(elapsed).toBeLessThan(TIMEOUT_MS);
    expect(svc.hub.size).toBe(0);
    expect(svc.server.listening).toBe(false);
    await until(() => svc.redis.status === 'end'); // QUIT was answered; the connection ends right after
    expect(text()).toContain('shutdown complete');
    expect(text()).not.toContain('timed out');
  });

  it('bounds the shutdown by its timeout and closes every resource even when one fails', async () => {
    const { logger, lines } = capturedLogger('shutdown-timeout');
    const closed: string[] = [];
    const shutdown = new GracefulShutdown(logger, 300)
      .add('broken', () => {
        throw new Error('close failed');
      })
      .add('ok', () => void closed.push('ok'))
      .add('stuck', () => new Promise(() => undefined));
    const t0 = Date.now();
    await shutdown.run();
    expect(Date.now() - t0).toBeGreaterThanOrEqual(290);
    expect(Date.now() - t0).toBeLessThan(1_000);
    expect(closed).toEqual(['ok']);
    const logged = lines.map((l) => JSON.parse(l));
    expect(logged).toContainEqual(expect.objectContaining({ level: 'warn', message: 'error while closing', resource: 'broken', error: 'close failed' }));
    expect(logged).toContainEqual(expect.objectContaining({ level: 'warn', message: 'shutdown timed out; exiting anyway', timeout_ms: 300 }));
  });

  it('closes resources in registration order', async () => {
    const order: string[] = [];
    const shutdown = new GracefulShutdown(capturedLogger().logger, 1_000);
    for (const name of ['http', 'ws', 'worker', 'redis'])
      shutdown.add(name, async () => {
        await sleep(5);
        order.push(name);
      });
    await shutdown.run();
    expect(order).toEqual(['http', 'ws', 'worker', 'redis']);
  });
});

describe('an error that escapes every handler', () => {
  it.each(['rejection', 'exception'])('an unhandled %s is logged, the closers run, and the process exits 1', async (kind) => {
    const { spawn } = await import('node:child_process');
    const child = spawn(process.execPath, ['--import', 'tsx', require.resolve('./fixtures/escaped-error.ts'), kind], { cwd: __dirname, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    const code = await new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
    expect(code).toBe(1);
    expect(out).toContain(`escaped ${kind}`);
    expect(out).toContain('shutting down');
    expect(out).toContain('closer ran');
  });
});

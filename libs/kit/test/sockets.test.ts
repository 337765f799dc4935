import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { connect as tcpConnect } from 'node:net';
import { WebSocket, type ClientOptions } from 'ws';
import { CloseCode } from '@tessera/contracts';
import { createLogger, sendJson, SocketHub, SocketRefusal, type SocketEndpoint, type SocketHubOptions, type SocketContext } from '../src';
import { maskedTextFrame, rawUpgrade, writeUnder } from '../src/testing';
import { capturedLogger, closeServer, sleep, until } from './support';

const logger = createLogger('sockets-test', 'silent');

interface Session {
  ctx: SocketContext;
  received: string[];
  closed: boolean;
}

/**
 * A bare HTTP server whose upgrades go through `hub.attach`, exactly as the services wire it:
 * `/live/{name}` echoes each text message back after `delayMs`, `/refuse` refuses with 1008,
 * `/slow-open` takes 300 ms to open.
 */
async function hubServer(opts: Omit<SocketHubOptions, 'logger'> & { logger?: SocketHubOptions['logger']; delayMs?: number } = {}) {
  const hub = new SocketHub({ logger, ...opts });
  const sessions: Session[] = [];
  const session = async (ctx: SocketContext) => {
    const s: Session = { ctx, received: [], closed: false };
    sessions.push(s);
    return {
      onMessage: async (data: unknown, isBinary: boolean) => {
        const text = isBinary ? '<binary>' : String(data);
        if (text === 'throw') throw new Error('handler failed');
        if (opts.delayMs) await sleep(opts.delayMs);
        s.received.push(text);
        hub.send(ctx.ws, { echo: text, name: ctx.params[0] });
      },
      onRateLimited: () => hub.send(ctx.ws, { error: 'RATE_LIMITED' }),
      onError: () => hub.send(ctx.ws, { error: 'INTERNAL' }),
      onClose: () => void (s.closed = true),
    };
  };
  const endpoints: SocketEndpoint[] = [
    { path: /^\/live\/([^/]+)$/, open: session },
    { path: /^\/refuse$/, open: async () => Promise.reject(new SocketRefusal('not your chat')) },
    { path: /^\/slow-open$/, open: async (ctx) => (await sleep(300), session(ctx)) },
  ];
  const server: Server = createServer((_req, res) => res.writeHead(404).end());
  hub.attach(server, endpoints);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  const base = `ws://127.0.0.1:${port}`;
  return {
    hub,
    sessions,
    port,
    base: `http://127.0.0.1:${port}`,
    connect: (path = '/live/a', o: ClientOptions = {}) => open(`${base}${path}`, o),
    close: async () => {
      await hub.close(CloseCode.GoingAway, 'test over', 200);
      await closeServer(server);

    },
  };
}

type Client = { ws: WebSocket; closed: Promise<{ code: number; reason: string }>; messages: string[] };
function open(url: string, o: ClientOptions): Promise<Client> {
  const ws = new WebSocket(url, o);
  const messages: string[] = [];
  ws.on('message', (m) => messages.push(String(m)));
  const closed = new Promise<{ code: number; reason: string }>((r) => ws.once('close', (code, reason) => r({ code, reason: String(reason) })));
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve({ ws, closed, messages }));
    ws.once('error', reject);
  });
}

describe('SocketHub heartbeat', () => {
  it('keeps a client that answers pings past several intervals and terminates one that does not', async () => {
    const counts: number[] = [];
    const srv = await hubServer({ heartbeatMs: 100, onCountChange: (n) => counts.push(n) });
    try {
      const healthy = await srv.connect();
      let pingsSeen = 0;
      healthy.ws.on('ping', () => pingsSeen++);
      const silent = await srv.connect('/live/b', { autoPong: false });
      await until(() => srv.hub.size === 2, 2_000, 'two sockets');

      // No pong: marked on the first sweep, terminated on the next (no close frame: 1006).
      expect(await silent.closed).toMatchObject({ code: 1006 });
      await until(() => srv.hub.size === 1, 2_000, 'the stale socket to be dropped');

      // The healthy client answers every ping (the hub installed its pong handler) and stays.
      await sleep(600);
      expect(pingsSeen).toBeGreaterThanOrEqual(5);
      expect(healthy.ws.readyState).toBe(WebSocket.OPEN);
      healthy.ws.send('still here');
      await until(() => healthy.messages.length === 1);
      expect(counts).toEqual([1, 2, 1]);
      healthy.ws.close();
      await healthy.closed;
    } finally {
      await srv.close();
    }
  });
});

describe('hostile input never escapes the hub', () => {
  it('a frame over maxPayload closes that socket with 1009; the process and other sockets live on', async () => {
    const srv = await hubServer({ heartbeatMs: 60_000, maxPayload: 1024 });
    try {
      const other = await srv.connect('/live/other');
      const c = await srv.connect();
      c.ws.send('y'.repeat(300 * 1024));
      expect((await c.closed).code).toBe(1009);
      other.ws.send('ping?');
      await until(() => other.messages.length === 1);
      other.ws.close();
    } finally {
      await srv.close();
    }
  });

  it('a text frame with invalid UTF-8 closes that socket with 1007', async () => {
    const srv = await hubServer({ heartbeatMs: 60_000 });
    try {
      const c = await srv.connect();
      // ws clients validate what they send; write the frame underneath it.
      writeUnder(c.ws, maskedTextFrame(Buffer.from([0x68, 0xff, 0xfe, 0x69])));
      expect((await c.closed).code).toBe(1007);
      const again = await srv.connect();
      again.ws.send('fine');
      await until(() => again.messages.length === 1);
      again.ws.close();
    } finally {
      await srv.close();
    }
  });

  it.each([
    ['/live/%ZZ', 400, 'not valid percent-encoding'],
    ['/live/%E0%A4%A', 400, 'not valid percent-encoding'],
    ['/nowhere', 404, 'no WebSocket endpoint'],
    ['http://[bad', 404, 'no WebSocket endpoint'],
    ['*', 404, 'no WebSocket endpoint'],
  ])('the request target %s is a %i in the error shape', async (target, status, message) => {
    const srv = await hubServer({ heartbeatMs: 60_000 });
    try {
      const r = await rawUpgrade(srv.base, target);
      expect(r.status).toBe(status);
      expect(JSON.parse(r.body).error.message).toContain(message);
      // Still serving.
      const c = await srv.connect('/live/%F0%9F%98%80');
      c.ws.send('hi');
      await until(() => c.messages.length === 1);
      expect(JSON.parse(c.messages[0]).name).toBe('😀');
      c.ws.close();
    } finally {
      await srv.close();
    }
  });

  it('garbage bytes instead of a handshake do not reach the hub', async () => {
    const srv = await hubServer({ heartbeatMs: 60_000 });
    try {
      const sock = tcpConnect(srv.port, '127.0.0.1');
      await new Promise((r) => sock.once('connect', r));
      sock.write('GET /live/a HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n\x00\xff garbage');
      let answer = '';
      sock.on('data', (d) => (answer += d));
      await new Promise((r) => sock.once('close', r));
      expect(answer).toMatch(/^HTTP\/1.1 400 /);
      const c = await srv.connect();
      c.ws.close();
    } finally {
      await srv.close();
    }
  });

  it('refuses an Origin outside the allow-list with 403 and takes one inside it', async () => {
    const srv = await hubServer({ heartbeatMs: 60_000, origins: ['http://app.example'] });
    try {
      const evil = await rawUpgrade(srv.base, '/live/a', { origin: 'http://evil.example', cookie: 'access_token=x' });
      expect(evil.status).toBe(403);
      expect(JSON.parse(evil.body).error).toMatchObject({ code: 'FORBIDDEN', message: 'origin http://evil.example is not allowed' });
      const good = await srv.connect('/live/a', { headers: { origin: 'http://app.example' } });
      good.ws.close();
      // A client that is not a browser sends no Origin.
      const native = await srv.connect();
      native.ws.close();
    } finally {
      await srv.close();
    }
  });

  it('a refusal while opening closes with 1008 and the reason', async () => {
    const srv = await hubServer({ heartbeatMs: 60_000 });
    try {
      const c = await srv.connect('/refuse');
      expect(await c.closed).toEqual({ code: 1008, reason: 'not your chat' });
    } finally {
      await srv.close();
    }
  });

  it('a handler that throws gets its onError; the socket stays open and the error is logged in one short line', async () => {
    const cap = capturedLogger('sockets', 'error');
    const srv = await hubServer({ heartbeatMs: 60_000, logger: cap.logger });
    try {
      const c = await srv.connect();
      c.ws.send('throw');
      c.ws.send('after');
      await until(() => c.messages.length === 2);
      expect(c.messages.map((m) => JSON.parse(m))).toEqual([{ error: 'INTERNAL' }, { echo: 'after', name: 'a' }]);
      expect(cap.text()).toContain('handler failed');
      c.ws.close();
    } finally {
      await srv.close();
    }
  });
});

describe('messages', () => {
  it('are handled one at a time, in the order sent, also those sent while the session opens', async () => {
    const srv = await hubServer({ heartbeatMs: 60_000, delayMs: 5 });
    try {
      const c = await srv.connect('/slow-open');
      for (let i = 0; i < 20; i++) c.ws.send(String(i));
      await until(() => c.messages.length === 20, 5_000);
      expect(c.messages.map((m) => JSON.parse(m).echo)).toEqual(Array.from({ length: 20 }, (_, i) => String(i)));
      c.ws.close();
    } finally {
      await srv.close();
    }
  });

  it('past the rate, messages are refused with onRateLimited; a flood is disconnected with 1008', async () => {
    const srv = await hubServer({ heartbeatMs: 60_000, messagesPerSecond: 5, messageBurst: 10 });
    try {
      const c = await srv.connect();
      for (let i = 0; i < 15; i++) c.ws.send(String(i));
      await until(() => c.messages.length === 15);
      const replies = c.messages.map((m) => JSON.parse(m));
      expect(replies.filter((r) => r.echo !== undefined)).toHaveLength(10);
      expect(replies.filter((r) => r.error === 'RATE_LIMITED')).toHaveLength(5);
      // After a pause the budget is back.
      await sleep(1_000);
      c.ws.send('later');
      await until(() => c.messages.some((m) => JSON.parse(m).echo === 'later'));

      const flood = await srv.connect('/live/flood');
      for (let i = 0; i < 1_000; i++) flood.ws.send('x');
      expect(await flood.closed).toEqual({ code: 1008, reason: 'too many messages; slow down' });
      c.ws.close();
    } finally {
      await srv.close();
    }
  });

  it('a socket that closes while its session opens still gets onClose (nothing is left subscribed)', async () => {
    const srv = await hubServer({ heartbeatMs: 60_000 });
    try {
      const c = await srv.connect('/slow-open');
      c.ws.terminate();
      await until(() => srv.sessions.length === 1, 2_000);
      await until(() => srv.sessions[0].closed, 2_000, 'onClose of the late session');
      expect(srv.sessions[0].ctx.closed.aborted).toBe(true);
    } finally {
      await srv.close();
    }
  });
});

describe('backpressure', () => {
  it('closes a slow consumer with 1013 once its buffered bytes pass the limit', async () => {
    const srv = await hubServer({ heartbeatMs: 60_000, maxBufferedBytes: 256 * 1024 });
    try {
      const slow = await srv.connect();
      await until(() => srv.sessions.length === 1, 2_000, 'server socket');
      const serverSide = srv.sessions[0].ctx.ws;
      slow.ws.pause(); // stop reading: the kernel buffers fill, then the server's

      const chunk = { type: 'delta', text: 'x'.repeat(64 * 1024) };
      let sent = 0;
      while (srv.hub.send(serverSide, chunk)) {
        sent++;
        if (sent > 2_000) throw new Error('never backed up');
      }
      expect(sent).toBeGreaterThan(0);
      expect(serverSide.bufferedAmount).toBeGreaterThan(256 * 1024);
      expect(serverSide.readyState).toBe(WebSocket.CLOSING);
      expect(srv.hub.send(serverSide, chunk)).toBe(false);

      slow.ws.resume();
      expect(await slow.closed).toEqual({ code: CloseCode.TryAgainLater, reason: 'slow consumer: reconnect and resume' });
      expect(slow.messages).toHaveLength(sent);
    } finally {
      await srv.close();
    }
  });

  it('a consumer that keeps up receives every message', async () => {
    const srv = await hubServer({ heartbeatMs: 60_000 });
    try {
      const c = await srv.connect();
      await until(() => srv.sessions.length === 1);
      const ws = srv.sessions[0].ctx.ws;
      for (let i = 1; i <= 50; i++) expect(srv.hub.send(ws, { index: i })).toBe(true);
      expect(sendJson(ws, 'already a string')).toBe(true);
      await until(() => c.messages.length === 51);
      expect(c.messages.slice(0, 3).map((m) => JSON.parse(m))).toEqual([{ index: 1 }, { index: 2 }, { index: 3 }]);
      expect(c.messages[50]).toBe('already a string');
      c.ws.close();
      await c.closed;
      expect(sendJson(ws, { late: true })).toBe(false);
    } finally {
      await srv.close();
    }
  });
});

it('hub.close() closes every socket with 1001, and new upgrades while shutting down get 503', async () => {
  let stopping = false;
  const srv = await hubServer({ heartbeatMs: 60_000, isShuttingDown: () => stopping });
  const a = await srv.connect();
  const b = await srv.connect();
  stopping = true;
  expect((await rawUpgrade(srv.base, '/live/a')).status).toBe(503);
  await srv.close();
  expect(await a.closed).toEqual({ code: 1001, reason: 'test over' });
  expect(await b.closed).toEqual({ code: 1001, reason: 'test over' });
  expect(srv.hub.size).toBe(0);
});

import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocket, type ClientOptions } from 'ws';
import { CloseCode } from '@tessera/contracts';
import { createLogger, sendJson, SocketHub, type SocketHubOptions } from '../src';
import { closeServer, sleep, until } from './support';

const logger = createLogger('sockets-test', 'silent');

/** A bare HTTP server whose upgrades go to a SocketHub; the hub's server-side sockets are kept in order. */
async function hubServer(opts: Omit<SocketHubOptions, 'logger'>) {
  const hub = new SocketHub({ logger, ...opts });
  const serverSockets: WebSocket[] = [];
  const server: Server = createServer((_req, res) => res.writeHead(404).end());
  server.on('upgrade', (req, socket, head) =>
    hub.wss.handleUpgrade(req, socket, head, (ws) => {
      serverSockets.push(ws);
      hub.wss.emit('connection', ws, req);
    }),
  );
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `ws://127.0.0.1:${(server.address() as AddressInfo).port}/live`;
  return {
    hub,
    serverSockets,
    connect: (o: ClientOptions = {}) => open(url, o),
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
  it('terminates a client that does not answer pings and keeps one that does', async () => {
    const counts: number[] = [];
    const srv = await hubServer({ heartbeatMs: 100, onCountChange: (n) => counts.push(n) });
    try {
      const healthy = await srv.connect();
      let pingsSeen = 0;
      const silent = await srv.connect({ autoPong: false });
      silent.ws.on('ping', () => pingsSeen++);
      await until(() => srv.hub.size === 2, 2_000, 'two sockets');

      // No pong: marked on the first sweep, terminated on the next (no close frame: 1006).
      expect(await silent.closed).toMatchObject({ code: 1006 });
      expect(pingsSeen).toBeGreaterThanOrEqual(1);
      await until(() => srv.hub.size === 1, 2_000, 'the stale socket to be dropped');

      // The healthy client outlives several more sweeps.
      await sleep(350);
      expect(healthy.ws.readyState).toBe(WebSocket.OPEN);
      expect(srv.hub.size).toBe(1);
      expect(counts).toEqual([1, 2, 1]);
      healthy.ws.close();
      await healthy.closed;
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
      await until(() => srv.serverSockets.length === 1, 2_000, 'server socket');
      const serverSide = srv.serverSockets[0];
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
      // Once closing, nothing more is queued.
      expect(srv.hub.send(serverSide, chunk)).toBe(false);

      slow.ws.resume();
      expect(await slow.closed).toEqual({ code: CloseCode.TryAgainLater, reason: 'slow consumer: reconnect and resume' });
      expect(CloseCode.TryAgainLater).toBe(1013);
      // Everything queued before the close still arrived, in order.
      expect(slow.messages).toHaveLength(sent);
    } finally {
      await srv.close();
    }
  });

  it('a consumer that keeps up receives every message', async () => {
    const srv = await hubServer({ heartbeatMs: 60_000 });
    try {
      const c = await srv.connect();
      await until(() => srv.serverSockets.length === 1);
      for (let i = 1; i <= 50; i++) expect(srv.hub.send(srv.serverSockets[0], { index: i })).toBe(true);
      expect(sendJson(srv.serverSockets[0], 'already a string')).toBe(true);
      await until(() => c.messages.length === 51);
      expect(c.messages.slice(0, 3).map((m) => JSON.parse(m))).toEqual([{ index: 1 }, { index: 2 }, { index: 3 }]);
      expect(c.messages[50]).toBe('already a string');
      c.ws.close();
      await c.closed;
      expect(sendJson(srv.serverSockets[0], { late: true })).toBe(false);
    } finally {
      await srv.close();
    }
  });

  it('a client message over maxPayload closes the socket with 1009', async () => {
    const srv = await hubServer({ heartbeatMs: 60_000, maxPayload: 1024 });
    try {
      const c = await srv.connect();
      c.ws.send('y'.repeat(4096));
      expect((await c.closed).code).toBe(1009);
    } finally {
      await srv.close();
    }
  });
});

it('hub.close() closes every socket with 1001', async () => {
  const srv = await hubServer({ heartbeatMs: 60_000 });
  const a = await srv.connect();
  const b = await srv.connect();
  await srv.close();
  expect(await a.closed).toEqual({ code: 1001, reason: 'test over' });
  expect(await b.closed).toEqual({ code: 1001, reason: 'test over' });
  expect(srv.hub.size).toBe(0);
});

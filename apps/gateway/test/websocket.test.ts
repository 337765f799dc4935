import express from 'express';
import WebSocket from 'ws';
import { closedPort } from '@tessera/kit/testing';
import { startStandIn, startTestGateway, token, type StandIn, type TestGateway } from './support';

type Opened = { ws: WebSocket; messages: string[] };

/** Connect and collect text messages; resolves once open, rejects with the handshake status otherwise. */
function connect(url: string, opts: WebSocket.ClientOptions = {}): Promise<Opened> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, opts);
    const messages: string[] = [];
    ws.on('message', (d, isBinary) => messages.push(isBinary ? `<binary ${(d as Buffer).length}>` : d.toString()));
    ws.once('open', () => resolve({ ws, messages }));
    ws.once('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (c) => (body += c));
      res.on('end', () => reject(Object.assign(new Error(`HTTP ${res.statusCode}`), { status: res.statusCode, body })));
    });
    ws.once('error', reject);
  });
}

/** Resolves once `list` holds more than `n` entries (the stand-in records what it saw as it sees it). */
const moreThan = (list: unknown[], n: number) =>
  new Promise<void>((resolve) => {
    const check = () => (list.length > n ? resolve() : setTimeout(check, 5));
    check();
  });

const closeOf = (ws: WebSocket) => new Promise<{ code: number; reason: string }>((r) => ws.once('close', (code, reason) => r({ code, reason: reason.toString() })));
const nextMessage = (o: Opened, n: number) =>
  new Promise<void>((resolve) => {
    const check = () => (o.messages.length >= n ? resolve() : setTimeout(check, 5));
    check();
  });

describe('gateway WebSocket relay', () => {
  let upstream: StandIn;
  let gw: TestGateway;
  let alice: string;
  const upstreamCloses: { code: number; reason: string }[] = [];
  const upgradeHeaders: Record<string, unknown>[] = [];
  const streams: NodeJS.Timeout[] = [];

  beforeAll(async () => {
    upstream = await startStandIn(express(), (wss) => {
      wss.options.verifyClient = ({ req }: { req: { url?: string } }) => !req.url?.includes('refuse');
      wss.on('connection', (ws, req) => {
        upgradeHeaders.push({ ...req.headers, url: req.url });
        ws.send(`hello ${req.url?.split('?')[0]}`);
        ws.on('message', (data, isBinary) => {
          const text = data.toString();
          if (isBinary) return ws.send(data, { binary: true });
          if (text === 'close-me') return ws.close(4001, 'bye');
          if (text === 'stream') {
            // Messages of mixed sizes (1-byte, 16-bit and 64-bit length headers), without pause.
            let i = 0;
            const t = setInterval(() => {
              for (let k = 0; k < 5; k++, i++) ws.send(JSON.stringify({ i, pad: 'p'.repeat(i % 3 === 0 ? 10 : i % 3 === 1 ? 300 : 70_000) }));
            }, 2);
            streams.push(t);
            ws.once('close', () => clearInterval(t));
            return;
          }
          ws.send(`echo:${text}`);
        });
        ws.on('close', (code, reason) => upstreamCloses.push({ code, reason: reason.toString() }));
      });
    });
    gw = await startTestGateway({ RUNTIME_URL: upstream.url, BRIDGE_URL: `http://127.0.0.1:${await closedPort()}` });
    alice = await token('alice');
  });

  afterAll(async () => {
    streams.forEach(clearInterval);
    await gw.stop();
    await upstream.close();
  });

  const wsUrl = (path: string) => gw.url.replace('http', 'ws') + path;

  it('relays messages both ways, text and binary, small and large', async () => {
    const o = await connect(wsUrl(`/ws/assistant/demo-app/c1/alice?access_token=${alice}`));
    await nextMessage(o, 1);
    expect(o.messages[0]).toBe('hello /ws/assistant/demo-app/c1/alice');
    o.ws.send('hi');
    o.ws.send(Buffer.alloc(200_000, 7));
    o.ws.send('x'.repeat(70_000));
    await nextMessage(o, 4);
    expect(o.messages.slice(1, 4)).toEqual(['echo:hi', '<binary 200000>', `echo:${'x'.repeat(70_000)}`]);
    // The token reached the service as sent; the service key never does.
    expect(upgradeHeaders.at(-1)!.url).toContain(`access_token=${alice}`);
    const closed = closeOf(o.ws);
    const before = upstreamCloses.length;
    o.ws.close(4002, 'client done');
    expect(await closed).toEqual({ code: 4002, reason: 'client done' });
    await moreThan(upstreamCloses, before);
    expect(upstreamCloses.slice(before)).toEqual([{ code: 4002, reason: 'client done' }]);
  });

  it('passes the service’s close code to the client', async () => {
    const o = await connect(wsUrl(`/ws/assistant/demo-app/c2/alice?access_token=${alice}`));
    const closed = closeOf(o.ws);
    o.ws.send('close-me');
    expect(await closed).toEqual({ code: 4001, reason: 'bye' });
  });

  it('takes the token from the query (access_token or token), the header or a cookie, and strips the service key', async () => {
    const viaToken = await connect(wsUrl(`/api/v1/mission-ally/ws?mission_id=m1&token=${alice}`));
    const viaHeader = await connect(wsUrl('/ws/a/demo-app/c3/alice'), { headers: { authorization: `Bearer ${alice}`, 'x-tessera-service-key': 'forged' } });
    expect(upgradeHeaders.at(-1)!['x-tessera-service-key']).toBeUndefined();
    expect(upgradeHeaders.at(-1)!['x-request-id']).toBeDefined();
    const viaCookie = await connect(wsUrl('/ws/a/demo-app/c4/alice'), { headers: { cookie: `token=${alice}` } });
    for (const o of [viaToken, viaHeader, viaCookie]) o.ws.close();
  });

  it('refuses a missing or bad token (401), a foreign origin (403), a non-WebSocket route (404)', async () => {
    await expect(connect(wsUrl('/ws/a/demo-app/c5/alice'))).rejects.toMatchObject({ status: 401 });
    await expect(connect(wsUrl('/ws/a/demo-app/c5/alice?access_token=nope'))).rejects.toMatchObject({ status: 401 });
    const expired = await token('alice', {}, Math.floor(Date.now() / 1000) - 60);
    await expect(connect(wsUrl(`/ws/a/demo-app/c5/alice?access_token=${expired}`))).rejects.toMatchObject({ status: 401 });
    await expect(connect(wsUrl(`/ws/a/demo-app/c5/alice?access_token=${alice}`), { origin: 'http://evil.example' })).rejects.toMatchObject({ status: 403 });
    const notWs = connect(wsUrl(`/api/chats/x?access_token=${alice}`));
    await expect(notWs).rejects.toMatchObject({ status: 404 });
    const body = JSON.parse(((await notWs.catch((e) => e)) as { body: string }).body);
    expect(body.error.code).toBe('NOT_FOUND');
  });

  it('passes a refusal of the service through, and answers 503 at once for a service that is down', async () => {
    await expect(connect(wsUrl(`/ws/refuse/demo-app/c6/alice?access_token=${alice}`))).rejects.toMatchObject({ status: 401 });
    const t0 = Date.now();
    const down = await connect(wsUrl(`/api/bridge/session/s1/ws?access_token=${alice}`)).catch((e) => e);
    expect(down.status).toBe(503);
    expect(JSON.parse(down.body).error.code).toBe('SERVICE_UNAVAILABLE');
    expect(Date.now() - t0).toBeLessThan(3000);
  });

  it('closes a busy relayed socket cleanly with 1001 on shutdown, on both sides', async () => {
    const own = await startTestGateway({ RUNTIME_URL: upstream.url });
    const o = await connect(own.url.replace('http', 'ws') + `/ws/assistant/demo-app/c7/alice?access_token=${alice}`);
    const closed = closeOf(o.ws);
    const errors: Error[] = [];
    o.ws.on('error', (e) => errors.push(e));
    o.ws.send('stream');
    await nextMessage(o, 40);
    const t0 = Date.now();
    const before = upstreamCloses.length;
    await own.stop();
    expect(await closed).toEqual({ code: 1001, reason: 'gateway shutting down' });
    expect(Date.now() - t0).toBeLessThan(2000);
    expect(errors).toEqual([]);
    // Every message that arrived is whole, in order.
    const events = o.messages.slice(1).map((m) => JSON.parse(m));
    events.forEach((e, i) => expect(e.i).toBe(i));
    await moreThan(upstreamCloses, before);
    expect(upstreamCloses.slice(before)).toEqual([{ code: 1001, reason: 'gateway shutting down' }]);
    // What an operator sees: no relayed socket left open.
    const open = (await own.s.metrics.openSockets.get()).values.find((v) => v.labels.kind === 'proxied');
    expect(open?.value).toBe(0);
  });
});

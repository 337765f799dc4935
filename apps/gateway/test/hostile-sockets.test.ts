import { connect } from 'node:net';
import { call, maskedTextFrame, rawUpgrade, TestSocket, writeUnder } from '@tessera/kit/testing';
import { SECRET, token } from './support';
import { spawnGateway, startRuntime, type HttpService, type RuntimeStack } from './stack';

/**
 * What a hostile client can send to a socket, sent to every service that holds sockets (the
 * runtime directly, and the gateway in front of it), each a real process started as `npm start`
 * starts it. Each bad frame or path costs only its own socket: the process stays up, answers
 * /health, and takes the next client.
 */
const SERVICE_KEY = 'hostile-service-key-0123456789abcdef';
/** In the default allow-list of every service (CORS_ORIGINS). */
const ORIGIN = 'http://localhost:3000';

let runtime: RuntimeStack;
let gateway: HttpService;
let alice: string;
let chatPath: string;

beforeAll(async () => {
  runtime = await startRuntime({ JWT_SECRET: SECRET, SERVICE_KEY });
  gateway = await spawnGateway({ SERVICE_KEY, RUNTIME_URL: runtime.url, RATE_LIMIT_PER_MIN: '100000' });
  alice = await token('alice');
  const started = await call(runtime.url, 'POST', '/api/chats/demo-app/assistant/start', { token: alice, body: { user_id: 'alice' } });
  expect(started.status).toBe(201);
  chatPath = started.json.websocket_url;
}, 60_000);

afterAll(async () => {
  await gateway?.stop();
  await runtime?.stop();
});

const targets = () => [
  { name: 'runtime', url: runtime.url, proc: runtime.api },
  { name: 'gateway', url: gateway.url, proc: gateway },
];

/** The service is still the same process, answers /health, and serves a whole turn on a new socket. */
async function stillServing(base: string, proc: HttpService) {
  expect(proc.child.exitCode).toBeNull();
  expect(runtime.api.child.exitCode).toBeNull();
  expect((await call(base, 'GET', '/health')).status).toBe(200);
  const c = await TestSocket.connect(`${base.replace('http', 'ws')}${chatPath}?access_token=${alice}`);
  await c.waitType('chat_meta');
  c.send({ type: 'user.input.submit', text: 'still there?' });
  await c.waitFor((m) => m.type === 'chat.run_complete', 15_000);
  await c.close();
}

describe.each(['runtime', 'gateway'])('hostile input to the %s socket', (name) => {
  const target = () => targets().find((t) => t.name === name)!;
  const socketUrl = () => `${target().url.replace('http', 'ws')}${chatPath}?access_token=${alice}`;

  it('a 300 KB text frame (over WS_MAX_PAYLOAD) closes that socket with 1009', async () => {
    const c = await TestSocket.connect(socketUrl());
    await c.waitType('chat_meta');
    c.send(JSON.stringify({ type: 'user.input.submit', text: 'x'.repeat(300 * 1024) }));
    expect(await c.closed).toBe(1009);
    await stillServing(target().url, target().proc);
  });

  it('a text frame with invalid UTF-8 closes that socket with 1007', async () => {
    const c = await TestSocket.connect(socketUrl());
    await c.waitType('chat_meta');
    writeUnder(c.ws, maskedTextFrame(Buffer.from([0x7b, 0xc3, 0x28, 0x7d])));
    expect(await c.closed).toBe(1007);
    await stillServing(target().url, target().proc);
  });

  it.each(['/ws/%ZZ/demo-app/c/u', '/ws/assistant/demo-app/c1/%E0%A4%A'])('the path %s is a 400 naming the encoding, before any handshake', async (path) => {
    const r = await rawUpgrade(target().url, `${path}?access_token=${alice}`);
    expect(r.status).toBe(400);
    expect(JSON.parse(r.body).error.message).toMatch(/percent-encoding/);
    await stillServing(target().url, target().proc);
  });

  it('an Origin outside the allow-list is a 403, even with a valid token in a cookie', async () => {
    const r = await rawUpgrade(target().url, chatPath, { origin: 'http://evil.example', cookie: `access_token=${alice}` });
    expect(r.status).toBe(403);
    const ok = await TestSocket.connect(`${target().url.replace('http', 'ws')}${chatPath}`, { headers: { origin: ORIGIN, cookie: `access_token=${alice}` } });
    await ok.waitType('chat_meta');
    await ok.close();
  });

  it.each([
    ['?token=', (t: string) => ({ url: `${chatPath}?token=${t}`, headers: {} })],
    ['the access_token cookie', (t: string) => ({ url: chatPath, headers: { cookie: `access_token=${t}` } })],
    ['the session cookie', (t: string) => ({ url: chatPath, headers: { cookie: `session=${t}` } })],
    ['the Authorization header', (t: string) => ({ url: chatPath, headers: { authorization: `Bearer ${t}` } })],
  ])('takes the token from %s (one rule for the gateway and the runtime)', async (_place, where) => {
    const { url, headers } = where(alice);
    const c = await TestSocket.connect(`${target().url.replace('http', 'ws')}${url}`, { headers });
    const meta = await c.waitType('chat_meta');
    expect(meta.data.user_id).toBe('alice');
    await c.close();
  });

  it('a flood of 1,000 messages is answered with RATE_LIMITED, not queued as 1,000 turns', async () => {
    const c = await TestSocket.connect(socketUrl());
    await c.waitType('chat_meta');
    for (let i = 0; i < 1_000; i++) c.send({ type: 'user.input.submit', text: `flood ${i}`, client_message_id: `flood-${name}-${i}` });
    await c.closed;
    const acks = c.messages.filter((m) => m.type === 'ack.input').length;
    expect(c.messages.some((m) => m.type === 'chat.error' && m.data.error_code === 'RATE_LIMITED')).toBe(true);
    expect(acks).toBeLessThanOrEqual(40);
    expect(c.closeCode).toBe(1008);
    await stillServing(target().url, target().proc);
  });
});

/** Bytes of one raw HTTP request, and the status line of the answer (or 'closed'). */
function rawRequest(base: string, head: string): Promise<string> {
  const u = new URL(base);
  return new Promise((resolve) => {
    const sock = connect(Number(u.port), u.hostname);
    let answer = '';
    sock.on('data', (d) => (answer += d));
    sock.on('error', () => undefined);
    sock.on('close', () => resolve(answer.split('\r\n')[0] || 'closed'));
    sock.write(head);
    setTimeout(() => sock.end(), 500);
  });
}

describe.each(['runtime', 'gateway'])('request targets no URL parser expects, to the %s', (name) => {
  const target = () => targets().find((t) => t.name === name)!;
  it.each([
    'GET http://[bad HTTP/1.1',
    'GET * HTTP/1.1',
    'GET //%ZZ HTTP/1.1',
    'GET /ws/%ZZ/demo-app/c/u HTTP/1.1',
    'GET /api/chats/meta/%ZZ/%E0%A4%A/x HTTP/1.1',
    'POST /chat/demo-app/%00/alice/input HTTP/1.1',
    'GET /ws/a/b/c/d/../../../../health HTTP/1.1',
  ])('%s gets a 4xx (HTTP and upgrade), and the process serves on', async (line) => {
    for (const upgrade of [false, true]) {
      const extra = upgrade ? 'Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n' : 'Connection: close\r\n';
      const status = await rawRequest(target().url, `${line}\r\nHost: x\r\nAuthorization: Bearer ${alice}\r\nContent-Length: 0\r\n${extra}\r\n`);
      expect(status).toMatch(/^HTTP\/1\.1 4\d\d /);
    }
    expect((await call(target().url, 'GET', '/health')).status).toBe(200);
    expect(target().proc.child.exitCode).toBeNull();
  });
});

import { call, TestSocket } from '@tessera/kit/testing';
import { SECRET, startTestGateway, token, type TestGateway } from './support';
import { startRuntime, type RuntimeStack } from './stack';

/**
 * Sockets held for two and a half heartbeat intervals (75 s), through the gateway and straight to
 * the runtime, with the runtime's production heartbeat (30 s): each receives the pings, answers
 * them (the client's automatic pong), and is still open and working at the end. A socket whose
 * pongs went unheard is dropped at the second ping (60 s), which this outlives. Nothing is held
 * open by traffic: between the first turn and the last, the sockets are idle.
 */
const HEARTBEAT_MS = 30_000;
const HOLD_MS = 2.5 * HEARTBEAT_MS;
const SERVICE_KEY = 'soak-service-key-0123456789abcdef';

let runtime: RuntimeStack;
let gw: TestGateway;

beforeAll(async () => {
  runtime = await startRuntime({ JWT_SECRET: SECRET, SERVICE_KEY });
  gw = await startTestGateway({ RUNTIME_URL: runtime.url, BROKER_URL: 'off', SERVICE_KEY });
}, 60_000);
afterAll(async () => {
  await gw?.stop();
  await runtime?.stop();
});

it(
  'idle sockets outlive two heartbeat intervals and a half, answering every ping, and still run turns',
  async () => {
    const alice = await token('alice', {}, '1h');
    const sockets: { via: string; s: TestSocket; pings: number }[] = [];
    for (const [via, base] of [
      ['gateway', gw.url],
      ['gateway', gw.url],
      ['runtime', runtime.url],
    ]) {
      const started = await call(runtime.url, 'POST', '/api/chats/demo-app/assistant/start', { token: alice, body: { user_id: 'alice' } });
      const s = await TestSocket.connect(`${base.replace('http', 'ws')}${started.json.websocket_url}?access_token=${alice}`);
      const entry = { via, s, pings: 0 };
      s.ws.on('ping', () => entry.pings++);
      s.send({ type: 'user.input.submit', text: 'hello' });
      await s.waitType('chat.run_complete', 15_000);
      sockets.push(entry);
    }

    await new Promise((r) => setTimeout(r, HOLD_MS));

    for (const { via, s, pings } of sockets) {
      expect({ via, open: s.closeCode === null, enoughPings: pings >= 2 }).toEqual({ via, open: true, enoughPings: true });
      const from = s.messages.length;
      s.send({ type: 'user.input.submit', text: 'still here' });
      await s.waitFor((m) => m.type === 'chat.run_complete', 15_000, from);
      // One socket life: no resume was ever needed, the timeline is whole.
      const indexes = s.timeline().map((m) => m.index);
      expect(indexes).toEqual(indexes.map((_, i) => i + 1));
      await s.close();
    }
  },
  HOLD_MS + 60_000,
);

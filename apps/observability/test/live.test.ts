import { randomBytes } from 'node:crypto';
import { resolve } from 'node:path';
import { createLogger, DEV_JWT_SECRET, signToken } from '@tessera/kit';
import { call, freshSchema, TEST_REDIS_URL, TestSocket } from '@tessera/kit/testing';
import { loadObservabilityConfig } from '../src/config';
import { startObservabilityServer, type RunningObservability } from '../src/server';

/**
 * The live socket across two instances, as an operator's console uses it: what one instance
 * stores reaches a socket held on the other, scoped to the token's apps, and a subscription
 * resumes from a seq without a gap or a duplicate.
 */
const SERVICE_KEY = 'live-test-service-key-0123456789';
let a: RunningObservability;
let b: RunningObservability;
let drop: () => Promise<void>;
let operator: string;

beforeAll(async () => {
  const schema = await freshSchema(resolve(__dirname, '../prisma/migrations'), 'obs_live');
  drop = schema.drop;
  const config = () =>
    loadObservabilityConfig({
      NODE_ENV: 'test',
      LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
      HOST: '127.0.0.1',
      PORT: '0',
      REDIS_URL: TEST_REDIS_URL,
      DATABASE_URL: schema.url,
      BULL_PREFIX: `test-obs-live-${randomBytes(4).toString('hex')}`,
      JWT_SECRET: DEV_JWT_SECRET,
      SERVICE_KEY,
      WS_HEARTBEAT_MS: '200',
      INGEST_WORKER: 'false',
      RETENTION_DAYS: '0',
    });
  [a, b] = await Promise.all([startObservabilityServer(config(), createLogger('obs-a', process.env.TEST_LOG_LEVEL ?? 'silent')), startObservabilityServer(config(), createLogger('obs-b', process.env.TEST_LOG_LEVEL ?? 'silent'))]);
  operator = await signToken(DEV_JWT_SECRET, { sub: 'ops', apps: ['app1'], roles: ['operator'] });
});
afterAll(async () => {
  await Promise.all([a?.shutdown.run(), b?.shutdown.run()]);
  await drop?.();
});

const post = (events: unknown[]) => call(a.url, 'POST', '/events', { body: { events }, headers: { 'x-tessera-service-key': SERVICE_KEY } });
const ev = (session: string, type: string, extra: Record<string, unknown> = {}) => ({ event_type: type, session_id: session, app_id: 'app1', ...extra });
const liveOn = (inst: RunningObservability, tok = operator) => TestSocket.connect(`${inst.url.replace('http', 'ws')}/ws?access_token=${tok}`);

it('an event stored on instance A reaches a socket on instance B, which outlives two heartbeats', async () => {
  const s = await liveOn(b);
  await s.waitType('init');
  await new Promise((r) => setTimeout(r, 500)); // two and a half heartbeat intervals
  expect(s.closeCode).toBeNull();
  s.send({ type: 'subscribe', all: true });
  await s.waitType('subscribed');
  expect((await post([ev('live-1', 'session_start', { session_name: 'first' })])).status).toBe(200);
  const updated = await s.waitFor((m) => m.type === 'session_updated' && m.session.session_id === 'live-1');
  expect(updated.session).toMatchObject({ status: 'running', session_name: 'first', app_id: 'app1' });
  const event = await s.waitFor((m) => m.type === 'event' && m.session_id === 'live-1');
  expect(event.event).toMatchObject({ seq: 1, event_type: 'session_start' });
  await s.close();
});

it('a subscription resumes after a seq: the stored rest, then `subscribed`, then live, each seq once and in order', async () => {
  await post([ev('live-2', 'session_start'), ...Array.from({ length: 5 }, (_, i) => ev('live-2', 'message', { event_id: `m${i}`, content: [{ type: 'text', text: `m${i}` }] }))]);
  const s = await liveOn(b);
  await s.waitType('init');
  s.send({ type: 'subscribe', session_id: 'live-2', after: 3 });
  const subscribed = await s.waitType('subscribed');
  expect(subscribed).toMatchObject({ session_id: 'live-2', last_seq: 6 });
  // Live events while and after it subscribed, written by the other instance.
  await post(Array.from({ length: 4 }, (_, i) => ev('live-2', 'message', { event_id: `n${i}` })));
  await s.waitFor((m) => m.type === 'event' && m.event.seq === 10);
  const seqs = s.messages.filter((m) => m.type === 'event').map((m) => m.event.seq);
  expect(seqs).toEqual([4, 5, 6, 7, 8, 9, 10]);
  // A replayed duplicate (the same event_id again) is stored once and sent no more.
  await post([ev('live-2', 'message', { event_id: 'n0' }), ev('live-2', 'session_stop')]);
  await s.waitFor((m) => m.type === 'event' && m.event.event_type === 'session_stop');
  expect(s.messages.filter((m) => m.type === 'event').map((m) => m.event.seq)).toEqual([4, 5, 6, 7, 8, 9, 10, 11]);
  await s.close();
});

it("shows only the token's apps, refuses a token without the operator role, and reports deletions", async () => {
  const s = await liveOn(b);
  const init = await s.waitType('init');
  expect(init.sessions.every((x: { app_id: string }) => x.app_id === 'app1')).toBe(true);
  s.send({ type: 'subscribe', all: true });
  await s.waitType('subscribed');
  await post([{ event_type: 'session_start', session_id: 'other-app', app_id: 'app2' }, ev('live-3', 'session_start')]);
  await s.waitFor((m) => m.type === 'session_updated' && m.session.session_id === 'live-3');
  expect(s.messages.some((m) => JSON.stringify(m).includes('other-app'))).toBe(false);
  s.send({ type: 'subscribe', session_id: 'other-app' });
  expect((await s.waitType('error')).code).toBe('NOT_FOUND');

  const del = await call(a.url, 'DELETE', '/sessions/live-3', { token: operator });
  expect(del.status).toBe(200);
  expect(await s.waitFor((m) => m.type === 'session_deleted')).toMatchObject({ session_id: 'live-3' });
  await s.close();

  const user = await signToken(DEV_JWT_SECRET, { sub: 'someone', apps: ['app1'] });
  const refused = new TestSocket(`${b.url.replace('http', 'ws')}/ws?access_token=${user}`);
  expect(await refused.closed).toBe(1008);
  expect(refused.closeReason).toMatch(/operator/);
});

it('bad messages get an error frame and the socket stays', async () => {
  const s = await liveOn(a);
  await s.waitType('init');
  for (const bad of ['not json', JSON.stringify({ type: 'subscribe', session_id: 'a\u0000b' }), JSON.stringify({ type: 'nope' }), JSON.stringify({ type: 'subscribe', session_id: 'x', after: 'y' })]) s.send(bad);
  await s.waitFor(() => s.messages.filter((m) => m.type === 'error').length === 4);
  s.send({ type: 'ping' });
  await s.waitType('pong');
  expect(s.closeCode).toBeNull();
  await s.close();
});

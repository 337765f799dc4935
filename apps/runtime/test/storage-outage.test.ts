/**
 * PostgreSQL out of the worker's reach mid-turn for longer than BullMQ's retries last (about 8 s):
 * the turn's job is put back without using up its attempts, and once PostgreSQL is back the turn
 * runs again and completes (a re-run: the cut-off reply closed, then the reply whole). Before, the
 * job failed for good and the chat waited for ever.
 */
import type { ChildProcess } from 'node:child_process';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { resolve } from 'node:path';
import { TestSocket } from '@tessera/kit/testing';
import { spawnWorker, startRuntime, testEnv, transcript, wsUrl, type Env, type RuntimeInstance } from './harness';
import { newSlowChat, referenceTranscript } from './streaming-chats';

/** A TCP relay to PostgreSQL that the test can take down (every connection cut, the port closed) and bring back on the same port. */
async function pgRelay(target: URL) {
  const sockets = new Set<Socket>();
  let server: Server | null = null;
  let port = 0;
  const listen = async () => {
    server = createServer((client) => {
      const upstream = connect(Number(target.port || 5432), target.hostname);
      for (const s of [client, upstream]) {
        sockets.add(s);
        s.on('error', () => undefined);
        s.on('close', () => sockets.delete(s));
      }
      client.pipe(upstream).pipe(client);
    });
    await new Promise<void>((r) => server!.listen(port, '127.0.0.1', () => r()));
    port = (server!.address() as AddressInfo).port;
  };
  await listen();
  const url = new URL(target.href);
  url.hostname = '127.0.0.1';
  url.port = String(port);
  return {
    url: url.href,
    down: async () => {
      const s = server!;
      server = null;
      const closed = new Promise<void>((r) => s.close(() => r()));
      for (const sock of sockets) sock.destroy();
      await closed;
    },
    up: listen,
  };
}

const extra = { WORKFLOWS_DIR: resolve(__dirname, 'fixtures/workflows') };
let env: Env;
let api: RuntimeInstance;
let worker: ChildProcess;
let relay: Awaited<ReturnType<typeof pgRelay>>;

beforeAll(async () => {
  env = await testEnv('pgout');
  relay = await pgRelay(new URL(env.DATABASE_URL));
  api = await startRuntime(env, { worker: false, extra });
  worker = await spawnWorker(env, { ...extra, DATABASE_URL: relay.url });
}, 60_000);
afterAll(async () => {
  worker?.kill('SIGKILL');
  await relay?.down();
  await api?.close();
  await env?.dropSchema();
});

test('PostgreSQL away from the worker for 12 s mid-turn: the turn runs again once it is back, and completes', async () => {
  const reference = await referenceTranscript(api);
  const chat = await newSlowChat(api, 'outage');
  const c = await TestSocket.connect(wsUrl(api.wsUrl, 'slow', 'app1', chat.chatId, chat.user, chat.tok));
  await c.waitType('chat_meta');
  c.send({ type: 'user.input.submit', text: 'alpha' });
  await c.waitFor((m) => m.type === 'chat.text' && m.data.role === 'assistant', 20_000);
  await relay.down();
  await new Promise((r) => setTimeout(r, 12_000));
  await relay.up();

  const end = await c.waitType('chat.run_complete', 30_000);
  expect(end.data.status).toBe('completed');
  // A re-run: the user's message, the reply cut off where the outage came, the reply whole, the end.
  const [user, partial, ...rest] = transcript(c.timeline());
  expect([user, ...rest]).toEqual(reference);
  expect(reference[1].startsWith(partial)).toBe(true);
  const job = await api.s.turnQueue.queue.getJob((await api.s.db.prisma.chatInput.findFirstOrThrow({ where: { chatId: chat.chatId } })).id);
  expect(await job!.getState()).toBe('completed');
  await c.close();
}, 60_000);

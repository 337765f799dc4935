/**
 * Fan-out: many sockets on each chat, half on each of two runtime instances, and a worker in a
 * process of its own. Every socket receives its chat's whole stored timeline live, in order, each
 * index once (`npm test` runs this on a single Redis and again on a Redis Cluster, where the
 * events go over sharded pub/sub).
 */
import type { ChildProcess } from 'node:child_process';
import { resolve } from 'node:path';
import { TestSocket } from '@tessera/kit/testing';
import { spawnWorker, startRuntime, testEnv, transcript, wsUrl, type Env, type RuntimeInstance } from './harness';
import { newSlowChat, referenceTranscript } from './streaming-chats';

const CHATS = 10;
const SOCKETS_PER_CHAT = 20;
const extra = { WORKFLOWS_DIR: resolve(__dirname, 'fixtures/workflows') };

let env: Env;
let a: RuntimeInstance;
let b: RuntimeInstance;
let worker: ChildProcess;

beforeAll(async () => {
  env = await testEnv('fanout');
  a = await startRuntime(env, { worker: false, extra });
  b = await startRuntime(env, { worker: false, extra });
  worker = await spawnWorker(env, extra);
}, 60_000);
afterAll(async () => {
  worker?.kill('SIGKILL');
  await Promise.all([a?.close(), b?.close()]);
  await env?.dropSchema();
});

test(`${CHATS} chats, ${SOCKETS_PER_CHAT} sockets each over two instances: every socket holds its chat's stored timeline, in order, each index once`, async () => {
  const reference = await referenceTranscript(a);
  const chats = await Promise.all(Array.from({ length: CHATS }, (_, i) => newSlowChat(a, `fan-${i}`)));
  const sockets = await Promise.all(
    chats.flatMap((chat) =>
      Array.from({ length: SOCKETS_PER_CHAT }, async (_, j) => {
        const s = await TestSocket.connect(wsUrl((j % 2 ? b : a).wsUrl, 'slow', 'app1', chat.chatId, chat.user, chat.tok));
        s.send({ type: 'client.resume', chat_id: chat.chatId, lastClientIndex: 0 });
        await s.waitType('chat.resume_boundary');
        return { chat, s };
      }),
    ),
  );
  // Each chat's first socket sends the message; all of them watch the turn.
  for (const chat of chats) sockets.find((x) => x.chat === chat)!.s.send({ type: 'user.input.submit', text: 'alpha' });
  await Promise.all(sockets.map(({ s }) => s.waitType('chat.run_complete', 60_000)));

  const problems: string[] = [];
  for (const chat of chats) {
    const stored = (await a.s.timeline.after(chat.chatId, 0, 10_000)).map((e) => e.index).join();
    for (const [n, { s }] of sockets.filter((x) => x.chat === chat).entries()) {
      const got = s.timeline().map((e) => e.index!);
      if (got.join() !== stored) problems.push(`${chat.user} socket ${n}: ${got.length} events, not the ${stored.split(',').length} stored in order`);
      if (transcript(s.timeline()).join('\n') !== reference.join('\n')) problems.push(`${chat.user} socket ${n}: transcript differs`);
    }
  }
  expect(problems).toEqual([]);
  await Promise.all(sockets.map(({ s }) => s.close()));
}, 120_000);

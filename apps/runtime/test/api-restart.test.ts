/**
 * Both API instances restarted under 1,000 clients: 100 chats stream a reply of several seconds,
 * each watched by 10 sockets spread over two runtime API processes, with the turns in a worker
 * process of its own. Mid-stream one instance is killed (SIGKILL, a crash) and the other stopped
 * (SIGTERM, a deploy) at the same moment; both start again on their ports. Every client does what
 * the client library does: it reconnects, to whichever instance answers, and resumes from the
 * last index it holds. Every client ends with its chat's stored timeline, each index once, and
 * the transcript of an undisturbed run.
 */
import type { ChildProcess } from 'node:child_process';
import { resolve } from 'node:path';
import { closedPort, entryOf, spawnService, storageVars, TestSocket, type Envelope, type ServiceProcess } from '@tessera/kit/testing';
import { http, ROOT, SECRET, SERVICE_KEY, spawnWorker, startRuntime, testEnv, token, transcript, wsUrl, type Env, type RuntimeInstance } from './harness';
import type { StreamingChat } from './streaming-chats';

const CHATS = 100;
const SOCKETS_PER_CHAT = 10;
const extra = { WORKFLOWS_DIR: resolve(__dirname, 'fixtures/workflows') };

let env: Env;
/** In this process: creates chats and reads the stored timelines; clients never use it. */
let admin: RuntimeInstance;
let worker: ChildProcess;
const ports: number[] = [];
const apis: (ServiceProcess | null)[] = [null, null];

async function startApi(i: number): Promise<void> {
  apis[i] = await spawnService({
    name: `runtime-${i}`,
    entry: resolve(ROOT, entryOf('runtime')),
    cwd: ROOT,
    env: { ...storageVars(env), JWT_SECRET: SECRET, SERVICE_KEY, OBSERVABILITY_EVENTS: 'false', DOCUMENTS_URL: 'off', LOG_LEVEL: 'warn', HOST: '127.0.0.1', PORT: String(ports[i]), ...extra },
    ready: { url: `http://127.0.0.1:${ports[i]}/ready` },
    timeoutMs: 30_000,
  });
}

beforeAll(async () => {
  env = await testEnv('apirestart');
  admin = await startRuntime(env, { worker: false, extra });
  ports.push(await closedPort(), await closedPort());
  await Promise.all([startApi(0), startApi(1)]);
  worker = await spawnWorker(env, extra);
}, 90_000);
afterAll(async () => {
  worker?.kill('SIGKILL');
  await Promise.all(apis.map((a) => a?.stop()));
  await admin?.close();
  await env?.dropSchema();
}, 60_000);

async function newChat(user: string): Promise<StreamingChat> {
  const tok = await token(user);
  const r = await http(admin.url, 'POST', '/api/chats/app1/long/start', { user_id: user }, tok);
  if (r.status !== 201) throw new Error(`start: ${r.status}`);
  return { user, tok, chatId: r.body.chat_id as string };
}

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * One client of a chat: connects to an instance (the other one, or again later, while neither
 * answers), resumes after the last index it holds, and follows until the turn's end, reconnecting
 * whenever its socket closes. Returns what it applied by index and how many events it received.
 */
async function follow(chat: StreamingChat, first: number, onText: () => void, onResumed: () => void, deadline: number) {
  const applied = new Map<number, Envelope>();
  let received = 0;
  let reconnects = 0;
  let streaming = false;
  let resumed = false;
  for (let n = first; Date.now() < deadline; n++) {
    const url = wsUrl(`ws://127.0.0.1:${ports[n % 2]}`, 'long', 'app1', chat.chatId, chat.user, chat.tok);
    const s = await TestSocket.connect(url).catch(() => null);
    if (!s) {
      await pause(50 + Math.random() * 200);
      continue;
    }
    if (n !== first) reconnects++;
    s.send({ type: 'client.resume', chat_id: chat.chatId, lastClientIndex: applied.size ? Math.max(...applied.keys()) : 0 });
    // Until the turn's end or the socket's close, whichever comes first.
    const ended = await new Promise<boolean>((settle) => {
      const late = setTimeout(() => settle(false), deadline - Date.now());
      const done = (v: boolean) => (clearTimeout(late), settle(v));
      const seen = (m: Envelope) => {
        if (m.type === 'chat.resume_boundary' && !resumed) {
          resumed = true;
          onResumed();
        }
        if (!streaming && m.type === 'chat.text' && m.data.role === 'assistant') {
          streaming = true;
          onText();
        }
        if (m.type === 'chat.run_complete') done(true);
      };
      s.messages.forEach(seen);
      s.ws.on('message', () => seen(s.messages[s.messages.length - 1]));
      void s.closed.then(() => done(false));
    });
    if (ended) await s.close();
    else s.ws.terminate();
    for (const e of s.timeline()) {
      received++;
      applied.set(e.index!, e);
    }
    if (ended) break;
  }
  return { applied, received, reconnects };
}

test(`both API instances restarted while ${CHATS * SOCKETS_PER_CHAT} clients follow ${CHATS} streaming chats: every client ends with the stored timeline, each index once`, async () => {
  const chats = await Promise.all(Array.from({ length: CHATS }, (_, i) => newChat(`restart-${i}`)));
  let streaming = 0;
  let restart: Promise<void> | null = null;
  let restartedAt = 0;
  const onText = () => {
    // Once a third of the clients see the reply stream: both instances go down together.
    if (restart || ++streaming < (CHATS * SOCKETS_PER_CHAT) / 3) return;
    restartedAt = Date.now();
    restart = (async () => {
      await Promise.all([apis[0]!.stop('SIGKILL'), apis[1]!.stop('SIGTERM')]);
      await Promise.all([startApi(0), startApi(1)]);
    })();
  };
  const deadline = Date.now() + 120_000;
  let resumed = 0;
  let allResumed!: () => void;
  const ready = new Promise<void>((r) => (allResumed = r));
  const onResumed = () => ++resumed === CHATS * SOCKETS_PER_CHAT && allResumed();
  const following = Promise.all(chats.flatMap((chat) => Array.from({ length: SOCKETS_PER_CHAT }, (_, j) => follow(chat, j, onText, onResumed, deadline))));
  // Every client is connected and up to date; then every chat's message, at once (the input's own acknowledgement across a restart is another test's).
  await ready;
  await Promise.all(
    chats.map(async (chat) => {
      const s = await TestSocket.connect(wsUrl(admin.wsUrl, 'long', 'app1', chat.chatId, chat.user, chat.tok));
      await s.waitType('chat_meta');
      s.send({ type: 'user.input.submit', text: 'alpha', client_message_id: `${chat.user}-1` });
      await s.waitFor((m) => m.type === 'chat.text' && m.data.role === 'user', 20_000);
      await s.close();
    }),
  );
  const results = await following;
  expect(restart).not.toBeNull();
  await restart;

  const reference = ['user:user: alpha', expect.stringMatching(/^assistant:narrator: Once upon a time a message named alpha .* answered first\.$/), 'chat.run_complete'];
  const problems: string[] = [];
  let endedAfter = 0;
  for (const [i, chat] of chats.entries()) {
    const stored = await admin.s.timeline.after(chat.chatId, 0, 10_000);
    const storedIndexes = stored.map((e) => e.index).join();
    const end = stored.find((e) => e.type === 'chat.run_complete');
    if (end && Date.parse(end.timestamp) > restartedAt) endedAfter++;
    expect(transcript(stored as Envelope[])).toEqual(reference);
    for (let j = 0; j < SOCKETS_PER_CHAT; j++) {
      const { applied, received } = results[i * SOCKETS_PER_CHAT + j];
      const indexes = [...applied.keys()].sort((a, b) => a - b).join();
      if (received !== applied.size) problems.push(`${chat.user} client ${j}: ${received - applied.size} events twice`);
      if (indexes !== storedIndexes) problems.push(`${chat.user} client ${j}: holds [${indexes}], stored [${storedIndexes}]`);
    }
  }
  expect(problems).toEqual([]);
  // The restart came mid-stream: clients reconnected, and turns were still running when it came.
  expect(results.filter((r) => r.reconnects > 0).length).toBeGreaterThan((CHATS * SOCKETS_PER_CHAT) / 2);
  expect(endedAfter).toBeGreaterThan(CHATS / 2);
}, 180_000);

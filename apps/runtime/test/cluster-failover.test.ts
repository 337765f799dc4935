/**
 * The runtime on a Redis Cluster of its own (3 primaries, 3 replicas, started by the project's
 * script), and what users see when a primary dies: the primary that holds the turn queue is
 * `kill -9`ed while 200 chats stream. Its replica is promoted; every chat's turn completes (or is
 * retried: the cut-off reply closed, then the reply whole, as with a crashed worker); every
 * client's events are the stored timeline, each index once, and its transcript is an undisturbed
 * run's.
 */
import type { ChildProcess } from 'node:child_process';
import { execFile } from 'node:child_process';
import { resolve } from 'node:path';
import { promisify } from 'node:util';
import { TestSocket, type Envelope } from '@tessera/kit/testing';
import { http, ROOT, spawnWorker, startRuntime, testEnv, token, transcript, wsUrl, type Env, type RuntimeInstance } from './harness';

const run = promisify(execFile);
/** Ports of this file's cluster: apart from `npm start`'s (7101) and other tests'. */
const BASE = 7221;
const CHATS = 200;
const SCRIPT = resolve(ROOT, 'tools/scripts/redis-cluster.sh');

let env: Env;
let redisUrl: string;
let api: RuntimeInstance;
const workers: ChildProcess[] = [];
let extra: Record<string, string>;

async function cluster(...args: string[]): Promise<string> {
  const { stdout } = await run('bash', [SCRIPT, ...args, String(BASE)], { cwd: ROOT, timeout: 90_000 });
  return stdout.trim().split('\n').pop() ?? '';
}

beforeAll(async () => {
  await cluster('reset');
  redisUrl = await cluster('up');
  expect(redisUrl).toMatch(/^redis\+cluster:\/\//);
  env = await testEnv('failover');
  extra = { WORKFLOWS_DIR: resolve(__dirname, 'fixtures/workflows'), REDIS_URL: redisUrl };
  api = await startRuntime(env, { worker: false, extra });
  workers.push(await spawnWorker(env, extra), await spawnWorker(env, extra));
}, 120_000);
afterAll(async () => {
  for (const w of workers) w.kill('SIGKILL');
  await api?.close();
  await env?.dropSchema();
  await cluster('reset').catch(() => undefined);
}, 60_000);

async function newChat(user: string) {
  const tok = await token(user);
  const r = await http(api.url, 'POST', '/api/chats/app1/slow/start', { user_id: user }, tok);
  expect(r.status).toBe(201);
  return { user, tok, chatId: r.body.chat_id as string };
}

/**
 * One user's chat: sends its message once, and if its socket drops, reconnects and resumes from
 * the last index it holds, as the client library does. Done at the turn's `chat.run_complete`.
 */
async function follow(chat: { user: string; tok: string; chatId: string }, started: () => void) {
  const applied = new Map<number, Envelope>();
  let received = 0;
  let sent = false;
  const deadline = Date.now() + 90_000;
  while (Date.now() < deadline) {
    const c = await TestSocket.connect(wsUrl(api.wsUrl, 'slow', 'app1', chat.chatId, chat.user, chat.tok));
    const last = applied.size ? Math.max(...applied.keys()) : 0;
    c.send({ type: 'client.resume', chat_id: chat.chatId, lastClientIndex: last });
    await c.waitType('chat.resume_boundary');
    if (!sent) {
      c.send({ type: 'user.input.submit', text: 'alpha', client_message_id: `${chat.user}-1` });
      sent = true;
    }
    await c.waitFor((m) => m.type === 'chat.text', 60_000).then(started, () => undefined);
    const ended = await c.waitFor((m) => m.type === 'chat.run_complete', Math.max(1, deadline - Date.now())).then(
      () => true,
      () => false,
    );
    await c.close();
    const dbg = c.messages.map((m) => `${m.type}${m.index !== undefined ? '#' + m.index : ''}`);
    if (new Set(c.timeline().map((e) => e.index)).size !== c.timeline().length && !(globalThis as any).dumped) { (globalThis as any).dumped = true; console.log('DUP ' + chat.user + ' ' + dbg.join(' ')); }
    for (const e of c.timeline()) {
      received++;
      applied.set(e.index!, e);
    }
    if (ended) break;
  }
  return { applied, received };
}

test(`a primary killed while ${CHATS} chats stream: every turn completes, each client holds the stored timeline once, transcripts as undisturbed`, async () => {
  const reference = await (async () => {
    const chat = await newChat('reference');
    const { applied } = await follow(chat, () => undefined);
    return transcript([...applied.values()]);
  })();
  expect(reference).toHaveLength(3); // user, the reply, run_complete

  const chats = await Promise.all(Array.from({ length: CHATS }, (_, i) => newChat(`streamer-${i}`)));
  let streaming = 0;
  let killedAt: number | null = null;
  const primary = (await cluster('primary', '{runtime-turns}')).split(' ');
  const [port, pid] = primary.map(Number);
  expect(port).toBeGreaterThanOrEqual(BASE);
  const kill = () => {
    // The queue's primary, once a third of the chats are streaming: turns in flight, jobs waiting.
    if (killedAt !== null || ++streaming < CHATS / 3) return;
    killedAt = Date.now();
    process.kill(pid, 'SIGKILL');
  };
  const results = await Promise.all(chats.map((c) => follow(c, kill)));
  expect(killedAt).not.toBeNull();

  const problems: string[] = [];
  let endedAfterKill = 0;
  for (const [i, { applied, received }] of results.entries()) {
    const chat = chats[i];
    const stored = await api.s.timeline.after(chat.chatId, 0, 10_000);
    const indexes = [...applied.keys()].sort((a, b) => a - b);
    if (received !== applied.size) problems.push(`${chat.user}: ${received - applied.size} events twice`);
    if (indexes.join() !== stored.map((e) => e.index).join()) problems.push(`${chat.user}: holds ${indexes.length} of ${stored.length} stored events`);
    const lines = transcript([...applied.values()]);
    const end = [...applied.values()].find((e) => e.type === 'chat.run_complete');
    if (end?.data.status !== 'completed') problems.push(`${chat.user}: the turn ended ${end?.data.status ?? 'never'}`);
    if (end && Date.parse(end.timestamp!) > killedAt!) endedAfterKill++;
    // Retried: what each cut-off attempt streamed stays, closed as it was cut off, then the reply whole.
    const [user, ...replies] = lines.slice(0, -1);
    const reply = reference[1].replace('assistant:narrator: ', '');
    const cut = replies.slice(0, -1).map((l) => l.replace('assistant:narrator: ', ''));
    const asUndisturbed = [user, replies[replies.length - 1], lines[lines.length - 1]].join('\n') === reference.join('\n');
    if (!asUndisturbed || !cut.every((c) => c.length < reply.length && reply.startsWith(c))) problems.push(`${chat.user}: transcript ${JSON.stringify(lines)}`);
    if (cut.length > 1) problems.push(`${chat.user}: run ${cut.length + 1} times`);
  }
  expect(problems).toEqual([]);
  // The kill came mid-load: most turns ended after it, and the queue's slots moved to the replica.
  expect(endedAfterKill).toBeGreaterThan(CHATS / 2);
  const [promoted] = (await cluster('primary', '{runtime-turns}')).split(' ').map(Number);
  expect(promoted).not.toBe(port);
}, 240_000);

/**
 * Redis itself dies mid-burst: a Redis of this file's own (AOF, `appendfsync everysec`, as `npm
 * start` writes it) is `kill -9`ed while 100 chats stream on two workers, then started again on its
 * files. Every turn completes, each client holds exactly the stored timeline (each index once) and
 * its transcript is an undisturbed run's, or a re-run's (the cut-off reply closed, then the whole).
 * With the timeline's tail on (npm test's tail pass sets EVENT_TAIL=on), events are delivered from
 * Redis before PostgreSQL has them, so this Redis runs with `appendfsync always`, the setting
 * docs/architecture.md gives for the tail: what a client saw survives the kill.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createLogger, createRedis } from '@tessera/kit';
import { until } from '@tessera/kit/testing';
import { spawnWorker, startRuntime, testEnv, type Env, type RuntimeInstance } from './harness';
import { followChat, newSlowChat, problemsOf, referenceTranscript } from './streaming-chats';

const PORT = 6411;
const CHATS = 100;
const PASSWORD = randomBytes(12).toString('hex');
const APPENDFSYNC = process.env.EVENT_TAIL === 'on' ? 'always' : 'everysec';
const REDIS_URL = `redis://:${PASSWORD}@127.0.0.1:${PORT}`;

let dir: string;
let redis: ChildProcess | null = null;
let env: Env;
let api: RuntimeInstance;
const workers: ChildProcess[] = [];

/** This file's Redis, on its files in `dir` (the AOF survives a kill). Resolves once it answers. */
async function startRedis(): Promise<void> {
  redis = spawn(
    'redis-server',
    ['--port', String(PORT), '--bind', '127.0.0.1', '--dir', dir, '--appendonly', 'yes', '--appendfsync', APPENDFSYNC, '--save', '', '--requirepass', PASSWORD],
    { stdio: 'ignore' },
  );
  const probe = createRedis(REDIS_URL, createLogger('probe', 'silent'), 'probe', { maxRetriesPerRequest: null });
  try {
    for (const deadline = Date.now() + 15_000; Date.now() < deadline; ) {
      if ((await probe.ping().catch(() => null)) === 'PONG') return;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`redis-server on ${PORT} did not answer`);
  } finally {
    probe.disconnect();
  }
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tessera-redis-crash-'));
  await startRedis();
  env = await testEnv('rcrash');
  // Inputs whose jobs the restart lost are queued again within seconds (30 s and 60 s by default).
  const extra = { WORKFLOWS_DIR: resolve(__dirname, 'fixtures/workflows'), REDIS_URL, INPUT_SWEEP_MS: '1000', INPUT_REQUEUE_AFTER_MS: '3000' };
  api = await startRuntime(env, { worker: false, extra });
  workers.push(await spawnWorker(env, extra), await spawnWorker(env, extra));
}, 60_000);
afterAll(async () => {
  for (const w of workers) w.kill('SIGKILL');
  await api?.close();
  redis?.kill('SIGKILL');
  await env?.dropSchema();
  await rm(dir, { recursive: true, force: true });
}, 60_000);

test(`Redis killed (kill -9) and restarted while ${CHATS} chats stream: every turn completes, each client holds the stored timeline once, transcripts as undisturbed`, async () => {
  const reference = await referenceTranscript(api);
  expect(reference).toHaveLength(3);

  const chats = await Promise.all(Array.from({ length: CHATS }, (_, i) => newSlowChat(api, `streamer-${i}`)));
  let streaming = 0;
  let killedAt: number | null = null;
  let restarted: Promise<void> | null = null;
  const kill = () => {
    if (killedAt !== null || ++streaming < CHATS / 3) return;
    killedAt = Date.now();
    const dead = redis!;
    dead.kill('SIGKILL');
    // Down for as long as a supervisor takes to notice and start it again.
    restarted = new Promise((r) => dead.once('exit', r)).then(() => new Promise((r) => setTimeout(r, 500))).then(startRedis);
  };
  const results = await Promise.all(chats.map((c) => followChat(api, c, kill)));
  expect(killedAt).not.toBeNull();
  await restarted;

  const { problems, endedAt } = await problemsOf(api, chats, results, reference);
  expect(problems).toEqual([]);
  expect(endedAt.filter((t) => t > killedAt!).length).toBeGreaterThan(CHATS / 2);
  if (process.env.EVENT_TAIL === 'on') {
    // PostgreSQL alone, written behind from the tails, ends with exactly what each client holds.
    const held = results.map(({ applied }) => [...applied.values()].sort((a, b) => a.index! - b.index!).map((e) => `${e.index}:${e.type}`).join());
    const inPostgres = async (chatId: string) =>
      (await api.s.db.pool.query<{ idx: number; type: string }>('SELECT idx, type FROM chat_events WHERE chat_id = $1 ORDER BY idx', [chatId])).rows.map((r) => `${r.idx}:${r.type}`).join();
    await until(async () => (await Promise.all(chats.map((c) => inPostgres(c.chatId)))).every((rows, i) => rows === held[i]), 20_000, 'PostgreSQL to hold what the clients hold');
  }
}, 240_000);

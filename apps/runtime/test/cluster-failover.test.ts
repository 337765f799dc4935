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
import { ROOT, spawnWorker, startRuntime, testEnv, type Env, type RuntimeInstance } from './harness';
import { followChat, newSlowChat, problemsOf, referenceTranscript } from './streaming-chats';

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
  // A job the promotion lost is queued again within seconds (30 s and 60 s by default), inside the clients' patience.
  extra = { WORKFLOWS_DIR: resolve(__dirname, 'fixtures/workflows'), REDIS_URL: redisUrl, INPUT_SWEEP_MS: '1000', INPUT_REQUEUE_AFTER_MS: '5000' };
  api = await startRuntime(env, { worker: false, extra });
  workers.push(await spawnWorker(env, extra), await spawnWorker(env, extra));
}, 120_000);
afterAll(async () => {
  for (const w of workers) w.kill('SIGKILL');
  await api?.close();
  await env?.dropSchema();
  await cluster('reset').catch(() => undefined);
}, 60_000);

test(`a primary killed while ${CHATS} chats stream: every turn completes, each client holds the stored timeline once, transcripts as undisturbed`, async () => {
  const reference = await referenceTranscript(api);
  expect(reference).toHaveLength(3); // user, the reply, run_complete

  const chats = await Promise.all(Array.from({ length: CHATS }, (_, i) => newSlowChat(api, `streamer-${i}`)));
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
  const results = await Promise.all(chats.map((c) => followChat(api, c, kill)));
  expect(killedAt).not.toBeNull();

  const { problems, endedAt } = await problemsOf(api, chats, results, reference);
  expect(problems).toEqual([]);
  // The kill came mid-load: most turns ended after it, and the queue's slots moved to the replica.
  expect(endedAt.filter((t) => t > killedAt!).length).toBeGreaterThan(CHATS / 2);
  const [promoted] = (await cluster('primary', '{runtime-turns}')).split(' ').map(Number);
  expect(promoted).not.toBe(port);
}, 240_000);

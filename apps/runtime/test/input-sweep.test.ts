/**
 * An input whose BullMQ job Redis lost (a primary that died before its replica copied the job, a
 * restart under `appendfsync everysec`) still gets its turn: the worker's input sweep queues it
 * again. A job that exists is left alone.
 */
import type { ChildProcess } from 'node:child_process';
import { TestSocket } from '@tessera/kit/testing';
import { InputSweep } from '../src/turns/input-sweep';
import { http, spawnWorker, startRuntime, testEnv, token, wsUrl, type Env, type RuntimeInstance } from './harness';

let env: Env;
let api: RuntimeInstance;
let worker: ChildProcess | null = null;

beforeAll(async () => {
  env = await testEnv('sweep');
  api = await startRuntime(env, { worker: false });
}, 60_000);
afterAll(async () => {
  worker?.kill('SIGKILL');
  await api?.close();
  await env?.dropSchema();
});

async function chatWithInput(user: string) {
  const tok = await token(user);
  const start = await http(api.url, 'POST', '/api/chats/app1/assistant/start', { user_id: user }, tok);
  expect(start.status).toBe(201);
  const chatId = start.body.chat_id as string;
  const sent = await http(api.url, 'POST', `/chat/app1/${chatId}/${user}/input`, { message: 'hello', workflow_name: 'assistant' }, tok);
  expect(sent.status).toBe(202);
  const [input] = await api.s.db.prisma.chatInput.findMany({ where: { chatId } });
  return { tok, chatId, inputId: input.id };
}

test('an acknowledged input whose job vanished from Redis is queued again by the worker, and its turn runs once', async () => {
  // No worker yet: the job waits in the queue, then is lost.
  const lost = await chatWithInput('lost');
  const job = await api.s.turnQueue.queue.getJob(lost.inputId);
  expect(job).toBeDefined();
  await job!.remove();
  expect(await api.s.turnQueue.queue.getJobState(lost.inputId)).toBe('unknown');

  const socket = await TestSocket.connect(wsUrl(api.wsUrl, 'assistant', 'app1', lost.chatId, 'lost', lost.tok));
  await socket.waitType('chat_meta');
  worker = await spawnWorker(env, { INPUT_SWEEP_MS: '300', INPUT_REQUEUE_AFTER_MS: '1000' });
  const end = await socket.waitType('chat.run_complete', 20_000);
  expect(end.data.status).toBe('completed');
  expect((await api.s.inputs.get(lost.inputId))!.status).toBe('done');
  // One turn: one user message, one reply.
  const texts = socket.timeline().filter((e) => e.type === 'chat.text' && e.data.done);
  expect(texts.map((e) => e.data.role)).toEqual(['user', 'assistant']);
  await socket.close();
}, 40_000);

test('an input whose job waits is not queued again; a lost one is, once; none younger than INPUT_REQUEUE_AFTER_MS is looked at', async () => {
  worker?.kill('SIGKILL');
  await new Promise((r) => worker!.once('exit', r));
  worker = null;
  const waiting = await chatWithInput('waiting');
  const young = await chatWithInput('young');
  await (await api.s.turnQueue.queue.getJob(young.inputId))!.remove();
  const sweep = new InputSweep(
    { inputs: api.s.inputs, turnQueue: api.s.turnQueue, redis: api.s.redis, logger: api.s.logger, prefix: api.s.config.BULL_PREFIX },
    { intervalMs: 0, requeueAfterMs: 60_000 },
  );
  // Now: both are younger than a minute. A minute on: the waiting one has its job; the young one, lost, is queued again.
  expect(await sweep.runOnce()).toEqual([]);
  expect(await sweep.runOnce(Date.now() + 61_000)).toEqual([young.inputId]);
  expect(await api.s.turnQueue.queue.getJobState(waiting.inputId)).toBe('waiting');
  expect(await api.s.turnQueue.queue.getJobState(young.inputId)).toBe('waiting');
  // Queued once: the next pass finds its job.
  expect(await sweep.runOnce(Date.now() + 61_000)).toEqual([]);
});

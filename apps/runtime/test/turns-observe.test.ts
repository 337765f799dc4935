/**
 * Observability is best effort and bounded: jobs never exceed the contract's 1,000 events, a
 * failing observer never fails a turn, and a queue nobody consumes stops growing at its cap.
 */
import { resolve } from 'node:path';
import { Queue } from '@tessera/contracts';
import { bullConnection, createLogger, Metrics, TypedQueue, type Logger } from '@tessera/kit';
import { until } from '@tessera/kit/testing';
import { createRuntimeServices, type RuntimeServices } from '../src/services';
import type { StoredEvent } from '../src/store/timeline';
import { observer } from '../src/turns/observe';
import { TurnRunner } from '../src/turns/turn-runner';
import { configFor, testEnv, type Env } from './harness';

let env: Env;
let s: RuntimeServices;
let queue: TypedQueue<typeof Queue.ObservabilityEvents>;

beforeAll(async () => {
  env = await testEnv('observe');
  s = createRuntimeServices(configFor(env, { WORKFLOWS_DIR: resolve(__dirname, 'fixtures/workflows') }), createLogger('observe-test', 'silent'), 'api');
  queue = new TypedQueue(Queue.ObservabilityEvents, bullConnection(s.config.REDIS_URL), s.logger, { prefix: `${s.config.BULL_PREFIX}-obs` });
});
afterEach(async () => {
  await queue.queue.obliterate({ force: true });
});
afterAll(async () => {
  await queue?.close();
  await s?.close();
  await env?.dropSchema();
});

const chat = { id: 'chat-1', appId: 'app1', userId: 'u1', workflowName: 'slow' };
const events = (n: number, from = 1): StoredEvent[] =>
  Array.from({ length: n }, (_, i) => ({ index: from + i, type: 'chat.text', data: { delta: 'x', agent: 'a' }, timestamp: new Date().toISOString(), wire: '' }));

/** A logger that keeps its warnings. */
function recordingLogger() {
  const warnings: string[] = [];
  const logger = { warn: (m: string) => warnings.push(m), info: () => undefined, error: () => undefined, debug: () => undefined } as unknown as Logger;
  return { logger, warnings };
}

async function queuedEvents(): Promise<number[][]> {
  const jobs = await queue.queue.getJobs(['waiting'], 0, -1, true);
  return jobs.map((j) => (j.data as { events: { index: number }[] }).events.map((e) => e.index));
}

test('a write of 2,500 events goes out in jobs of at most 1,000, every event once, in order', async () => {
  const { logger, warnings } = recordingLogger();
  const observe = observer(queue, logger, { maxWaiting: 1_000 });
  expect(() => observe(chat, events(2_500))).not.toThrow();
  // Two full jobs went at once, the rest with the window's timer: the third job means nothing is left waiting to go.
  await until(async () => (await queue.queue.getWaitingCount()) >= 3, 10_000, 'the third job');
  const jobs = await queuedEvents();
  expect(jobs.map((j) => j.length)).toEqual([1000, 1000, 500]);
  expect(jobs.flat()).toEqual(events(2_500).map((e) => e.index));
  expect(warnings).toEqual([]);
});

test("what many chats store within a window goes as one job; each chat's events in order", async () => {
  const { logger } = recordingLogger();
  const observe = observer(queue, logger, { maxWaiting: 1_000 });
  for (let turn = 0; turn < 5; turn++) for (let c = 0; c < 40; c++) observe({ ...chat, id: `chat-${c}` }, events(3, 1 + turn * 3));
  // The window's one send adds every job it makes in one go, on the connection read here: once one is seen, all are.
  await until(async () => (await queue.queue.getWaitingCount()) >= 1, 10_000, 'the one job');
  const jobs = await queue.queue.getJobs(['waiting'], 0, -1, true);
  expect(jobs).toHaveLength(1);
  const sent = (jobs[0].data as { events: { session_id: string; index: number }[] }).events;
  expect(sent).toHaveLength(600);
  for (let c = 0; c < 40; c++) expect(sent.filter((e) => e.session_id === `chat-${c}`).map((e) => e.index)).toEqual(Array.from({ length: 15 }, (_, i) => i + 1));
  // flush() (shutdown) sends what waits at once.
  observe(chat, events(2));
  observe.flush();
  await until(async () => (await queue.queue.getWaitingCount()) >= 2, 10_000, 'the flushed job');
  expect(await queue.queue.getWaitingCount()).toBe(2);
});

test('an observer that throws never fails the turn', async () => {
  const runner = new TurnRunner({
    ...s,
    workflows: s.workflows,
    providers: s.providers,
    observe: () => {
      throw new Error('observability is down');
    },
  });
  const { chat: c } = await s.starter.start({ appId: 'app1', userId: 'u-obs', workflowName: 'slow', backendContext: null, uiContext: null });
  const { input } = await s.chatInputs.submitMessage(c, 'hello');
  await expect(runner.process({ chat_id: c.id, app_id: c.appId, input_id: input.id })).resolves.toBeUndefined();
  const stored = await s.timeline.after(c.id, 0, 10_000);
  expect(stored.filter((e) => e.type === 'chat.run_complete').map((e) => e.data.status)).toEqual(['completed']);
  expect((await s.inputs.get(input.id))!.status).toBe('done');
}, 20_000);

test('over OBSERVABILITY_QUEUE_MAX waiting jobs, batches are dropped, with one warning and a metric', async () => {
  for (let i = 0; i < 3; i++) await queue.add({ events: [{ session_id: 'c', app_id: 'a', user_id: 'u', workflow_name: 'w', agent: null, index: i, type: 't', payload: {}, usage: null, timestamp: new Date().toISOString() }] });
  const { logger, warnings } = recordingLogger();
  const metrics = new Metrics('observe-test');
  const observe = observer(queue, logger, { maxWaiting: 3, metrics });
  observe(chat, events(1)); // looks the depth up (at most once a second); this one still goes
  // Its job is here: the depth it looked up first (on the same connection) is known.
  await until(async () => (await queue.queue.getWaitingCount()) === 4, 10_000, 'the job that still goes');
  for (let i = 0; i < 10; i++) observe(chat, events(2));
  await new Promise((r) => setTimeout(r, 1_100));
  for (let i = 0; i < 10; i++) observe(chat, events(2));
  // The window's send dropped them (counted when dropped, and nothing is added after): the queue is final.
  const droppedCount = async () => (await metrics.events.get()).values.find((v) => v.labels.kind === 'observability_dropped')?.value ?? 0;
  await until(async () => (await droppedCount()) >= 40, 10_000, 'the second batch dropped');
  expect(await queue.queue.getWaitingCount()).toBe(4);
  expect(warnings).toEqual(['observability queue full: events dropped']);
  const dropped = (await metrics.events.get()).values.find((v) => v.labels.kind === 'observability_dropped');
  expect(dropped?.value).toBe(40);
}, 10_000);

import { once } from 'node:events';
import type { Job, Worker } from 'bullmq';
import { ZodError } from 'zod';
import { Queue, QueueJobs, type QueueJobData } from '@tessera/contracts';
import { bullConnection, bullQueueName, createLogger, createRedis, createTypedWorker, TypedQueue } from '../src';
import { TEST_REDIS_URL, testPrefix } from '../src/testing';
import { until } from './support';

type Batch = QueueJobData<typeof Queue.ObservabilityEvents>;

const logger = createLogger('queues-test', 'silent');
// Every key of this file lives under its own prefix: parallel test files never meet.
const prefix = testPrefix('kit-queues');

const event = (index: number): Batch['events'][number] => ({
  session_id: 'chat-1',
  app_id: 'app-a',
  user_id: 'user-1',
  workflow_name: 'support',
  agent: index % 2 ? 'triage' : null,
  index,
  type: 'message',
  payload: { text: `hello ${index}` },
  usage: { prompt_tokens: 10, completion_tokens: 5, total_tokens: 15 },
  timestamp: new Date(Date.UTC(2026, 0, 1, 0, 0, index)).toISOString(),
});

describe('a BullMQ job round trip typed by the contracts', () => {
  let queue: TypedQueue<typeof Queue.ObservabilityEvents>;
  let worker: Worker;
  const received: { data: Batch; name: string; id?: string }[] = [];

  beforeAll(async () => {
    queue = new TypedQueue(Queue.ObservabilityEvents, bullConnection(TEST_REDIS_URL), logger, { prefix });
    worker = createTypedWorker(
      Queue.ObservabilityEvents,
      bullConnection(TEST_REDIS_URL),
      logger,
      async (data, job) => {
        received.push({ data, name: job.name, id: job.id });
        return { stored: data.events.length };
      },
      { prefix, concurrency: 1 },
    );
    await worker.waitUntilReady();
  });

  afterAll(async () => {
    await worker.close();
    await queue.queue.obliterate({ force: true });
    await queue.close();
  });

  it('a job added is received with its validated payload and the contract job name', async () => {
    const payload: Batch = { events: [event(1), event(2)] };
    const completed = once(worker, 'completed') as Promise<[Job, unknown]>;
    const job = await queue.add(payload);
    const [done, result] = await completed;
    expect(done.id).toBe(job.id);
    expect(result).toEqual({ stored: 2 });
    expect(received).toEqual([{ data: payload, name: QueueJobs[Queue.ObservabilityEvents].name, id: job.id }]);
  });

  it('the job lives under the test prefix', async () => {
    const redis = createRedis(TEST_REDIS_URL, logger, 'queues-test-inspect');
    try {
      expect(await redis.exists(`${prefix}:${bullQueueName(Queue.ObservabilityEvents)}:${received[0].id}`)).toBe(1);
      expect(await redis.exists(`bull:${bullQueueName(Queue.ObservabilityEvents)}:${received[0].id}`)).toBe(0);
    } finally {
      await redis.quit();
    }
  });

  it('an invalid payload rejects with a ZodError (never throws synchronously) before anything reaches Redis', async () => {
    const before = await queue.queue.getJobCounts();
    const invalid = [
      { events: [] },
      { events: [{ ...event(3), index: 'three' }] },
      { events: [{ ...event(4), user_id: undefined }] },
      { nope: true },
      { events: Array.from({ length: 1001 }, (_, i) => event(i)) },
    ];
    for (const bad of invalid) {
      let added: Promise<unknown> | undefined;
      expect(() => (added = queue.add(bad as unknown as Batch))).not.toThrow();
      await expect(added).rejects.toThrow(ZodError);
    }
    let bulk: Promise<unknown> | undefined;
    expect(() => (bulk = queue.addBulk([{ data: { events: [event(5)] } }, { data: { events: [] } }]))).not.toThrow();
    await expect(bulk).rejects.toThrow(ZodError);
    expect(await queue.queue.getJobCounts()).toEqual(before);
    expect(received).toHaveLength(1);
  });

  it('addBulk delivers every job in order', async () => {
    received.length = 0;
    await queue.addBulk([{ data: { events: [event(10)] } }, { data: { events: [event(11)] } }, { data: { events: [event(12)] } }]);
    await until(() => received.length === 3, 5_000, 'three jobs');
    expect(received.map((r) => r.data.events[0].index)).toEqual([10, 11, 12]);
  });

  it('the worker refuses a job that bypassed the contract and never calls the processor', async () => {
    received.length = 0;
    const failed = once(worker, 'failed') as Promise<[Job, Error]>;
    await queue.queue.add('events', { events: 'not an array' }, { attempts: 1 });
    const [job, err] = await failed;
    expect(err).toBeInstanceOf(ZodError);
    expect(job.failedReason).toMatch(/events/);
    expect(received).toEqual([]);
  });

  it('depth() counts waiting and delayed jobs', async () => {
    await queue.add({ events: [event(20)] }, { delay: 60_000 });
    expect(await queue.depth()).toMatchObject({ delayed: 1 });
  });
});

describe('whenReady', () => {
  it('a subscription made right after connecting still receives messages (ioredis drops one made during its ready check)', async () => {
    const { createLogger, createRedis, whenReady } = await import('../src');
    const log = createLogger('when-ready', 'silent');
    const sub = createRedis(TEST_REDIS_URL, log, 'when-ready-sub', { maxRetriesPerRequest: null });
    const pub = createRedis(TEST_REDIS_URL, log, 'when-ready-pub');
    const channel = `test:when-ready:${Date.now()}`;
    const got: string[] = [];
    sub.on('smessage', (_c: string, m: string) => got.push(m));
    await new Promise((r) => sub.once('connect', r)); // the ready check is in flight now
    await whenReady(sub);
    await sub.ssubscribe(channel);
    expect(await pub.spublish(channel, 'hello')).toBe(1);
    // A second message on the same channel, waited for: the first came before it, once.
    await pub.spublish(channel, 'after');
    await until(() => got.includes('after'), 5_000, 'the second message');
    expect(got).toEqual(['hello', 'after']);
    await Promise.all([sub.quit(), pub.quit()]);
  });
});

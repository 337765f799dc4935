import { Redis, type RedisOptions } from 'ioredis';
import { Queue as BullQueue, Worker, type ConnectionOptions, type JobsOptions, type Processor, type WorkerOptions, type QueueOptions } from 'bullmq';
import { QueueJobs, type QueueJobData, type QueueJobName, type QueueName } from '@tessera/contracts';
import type { Logger } from './logger';
import { backoff } from './backoff';

/** Reconnects to Redis: about 200 ms doubling to 5 s (ioredis counts from 1), spread so that a fleet does not reconnect at once. */
const reconnectDelay = backoff({ baseMs: 100, maxMs: 5_000, jitter: true });

/**
 * ioredis client with bounded reconnect backoff; connection errors are logged (once per state
 * change), never thrown into the void.
 */
export function createRedis(url: string, logger: Logger, name: string, extra: RedisOptions = {}): Redis {
  const client = new Redis(url, {
    connectionName: name,
    maxRetriesPerRequest: extra.maxRetriesPerRequest === undefined ? 3 : extra.maxRetriesPerRequest,
    retryStrategy: reconnectDelay,
    enableReadyCheck: true,
    lazyConnect: false,
    ...extra,
  });
  let down = false;
  client.on('error', (err) => {
    if (!down) logger.warn('redis connection error', { connection: name, error: err.message });
    down = true;
  });
  client.on('ready', () => {
    if (down) logger.info('redis connection restored', { connection: name });
    down = false;
  });
  return client;
}

/**
 * Resolves once the client is ready. A SUBSCRIBE sent while ioredis is still in its ready check
 * (status `connect`, right after start or a reconnect) is lost when the check completes: the
 * connection silently leaves subscriber mode. Every subscription waits for this first.
 */
export function whenReady(client: Redis): Promise<void> {
  if (client.status === 'ready') return Promise.resolve();
  return new Promise((resolve) => client.once('ready', () => resolve()));
}

/** Connection settings for BullMQ (it needs maxRetriesPerRequest: null on workers). */
export function bullConnection(url: string): ConnectionOptions {
  const u = new URL(url);
  return {
    host: u.hostname,
    port: Number(u.port || 6379),
    username: u.username || undefined,
    password: u.password ? decodeURIComponent(u.password) : undefined,
    db: u.pathname.length > 1 ? Number(u.pathname.slice(1)) : 0,
    tls: u.protocol === 'rediss:' ? {} : undefined,
    maxRetriesPerRequest: null,
    retryStrategy: reconnectDelay,
  };
}

export const DEFAULT_JOB_OPTIONS: JobsOptions = {
  attempts: 5,
  backoff: { type: 'exponential', delay: 500 },
  removeOnComplete: { count: 1000, age: 3600 },
  removeOnFail: { count: 5000, age: 7 * 24 * 3600 },
};

/** A BullMQ queue whose job name and payload are fixed by the contracts' queue map. */
export class TypedQueue<Q extends QueueName> {
  readonly queue: BullQueue;
  constructor(
    readonly name: Q,
    connection: ConnectionOptions,
    logger: Logger,
    opts: Omit<QueueOptions, 'connection'> = {},
  ) {
    this.queue = new BullQueue(name, { connection, defaultJobOptions: DEFAULT_JOB_OPTIONS, ...opts });
    this.queue.on('error', (err) => logger.warn('queue error', { queue: name, error: err.message }));
  }
  /**
   * Validates the payload with the contract before it leaves the process. An invalid payload
   * rejects (a ZodError) like any other failure to add, rather than throwing where a caller
   * that only handles the promise's rejection does not expect it.
   */
  async add(data: QueueJobData<Q>, opts?: JobsOptions) {
    const spec = QueueJobs[this.name];
    const parsed = spec.data.parse(data);
    return this.queue.add(spec.name as QueueJobName<Q>, parsed, opts);
  }
  async addBulk(items: { data: QueueJobData<Q>; opts?: JobsOptions }[]) {
    const spec = QueueJobs[this.name];
    return this.queue.addBulk(items.map((i) => ({ name: spec.name, data: spec.data.parse(i.data), opts: i.opts })));
  }
  depth() {
    return this.queue.getJobCounts('waiting', 'active', 'delayed', 'prioritized');
  }
  close() {
    return this.queue.close();
  }
}

/** A BullMQ worker whose processor receives the contract-typed, validated payload. */
export function createTypedWorker<Q extends QueueName>(
  name: Q,
  connection: ConnectionOptions,
  logger: Logger,
  processor: (data: QueueJobData<Q>, job: Parameters<Processor>[0], token?: string) => Promise<unknown>,
  opts: Omit<WorkerOptions, 'connection'> = {},
): Worker {
  const spec = QueueJobs[name];
  const worker = new Worker(
    name,
    async (job, token) => {
      const data = spec.data.parse(job.data) as QueueJobData<Q>;
      return processor(data, job, token);
    },
    { connection, ...opts },
  );
  worker.on('error', (err) => logger.warn('worker error', { queue: name, error: err.message }));
  worker.on('failed', (job, err) => logger.warn('job failed', { queue: name, job_id: job?.id, attempts: job?.attemptsMade, error: err.message }));
  return worker;
}

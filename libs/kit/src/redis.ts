import { Cluster, Redis, type ClusterNode, type ClusterOptions, type RedisOptions } from 'ioredis';
import { Queue as BullQueue, DelayedError, Worker, type ConnectionOptions, type JobsOptions, type Processor, type WorkerOptions, type QueueOptions } from 'bullmq';
import { QueueJobs, type QueueJobData, type QueueJobName, type QueueName } from '@tessera/contracts';
import type { Logger } from './logger';
import { backoff } from './backoff';
import { isStorageUnreachable } from './http';

/** Reconnects to Redis: about 200 ms doubling to 5 s (ioredis counts from 1), spread so that a fleet does not reconnect at once. */
const reconnectDelay = backoff({ baseMs: 100, maxMs: 5_000, jitter: true });

/** A connection to one Redis (standalone or the primary a Sentinel group names) or to a Redis Cluster. */
export type RedisClient = Redis | Cluster;

export interface RedisHost {
  host: string;
  port: number;
}

/**
 * What `REDIS_URL` names:
 * - `redis://[user:password@]host:port[/db]` (`rediss://` for TLS): one Redis;
 * - `redis+cluster://[user:password@]host:port[,host:port…]`: a Redis Cluster, through any of its
 *   nodes (the rest are found from them); every node takes the same password;
 * - `redis+sentinel://[user:password@]host:port[,host:port…]/<master name>[?sentinelPassword=…]`:
 *   the primary that these Sentinels name, followed across failovers.
 */
export type RedisTarget =
  | { kind: 'single'; url: string }
  | { kind: 'cluster'; nodes: RedisHost[]; username?: string; password?: string; tls: boolean }
  | { kind: 'sentinel'; sentinels: RedisHost[]; name: string; username?: string; password?: string; sentinelPassword?: string; db: number; tls: boolean };

const MULTI_HOST = /^(rediss?)\+(cluster|sentinel):\/\/(?:([^@/?#]*)@)?([^/?#]+)(\/[^?#]*)?(\?[^#]*)?$/;

/** Reads `REDIS_URL`; throws naming what is wrong (never the password). */
export function parseRedisUrl(url: string): RedisTarget {
  if (/^rediss?:\/\//.test(url)) {
    try {
      new URL(url);
    } catch {
      throw new Error('REDIS_URL is not a valid redis:// URL');
    }
    return { kind: 'single', url };
  }
  const m = MULTI_HOST.exec(url);
  if (!m) throw new Error('REDIS_URL must be redis://host:port, redis+cluster://host:port[,host:port…] or redis+sentinel://host:port[,host:port…]/<master name>');
  const [, scheme, kind, auth, hostList, path, query] = m;
  const hosts = hostList.split(',').map((h, i) => {
    const hm = /^(\[[0-9a-fA-F:.]+\]|[^:[\]@]+):(\d{1,5})$/.exec(h.trim());
    const port = hm ? Number(hm[2]) : NaN;
    // By position, not content: a malformed URL may have its password where a host should be.
    if (!hm || port < 1 || port > 65535) throw new Error(`REDIS_URL: node ${i + 1} of ${hostList.split(',').length} is not host:port`);
    return { host: hm[1].replace(/^\[|\]$/g, ''), port };
  });
  const [user, ...pass] = (auth ?? '').split(':');
  const username = user ? decodeURIComponent(user) : undefined;
  const password = pass.length && pass.join(':') ? decodeURIComponent(pass.join(':')) : undefined;
  const tls = scheme === 'rediss';
  const params = new URLSearchParams(query ?? '');
  if (kind === 'cluster') {
    if (path && path !== '/') throw new Error('REDIS_URL: a cluster has no database number (only db 0)');
    return { kind: 'cluster', nodes: hosts, username, password, tls };
  }
  const [name, db] = (path ?? '').replace(/^\//, '').split('/');
  if (!name) throw new Error('REDIS_URL: a Sentinel URL names its primary: redis+sentinel://host:port/<master name>');
  if (db !== undefined && !/^\d+$/.test(db)) throw new Error('REDIS_URL: the database after the master name is a number');
  return { kind: 'sentinel', sentinels: hosts, name: decodeURIComponent(name), username, password, sentinelPassword: params.get('sentinelPassword') ?? undefined, db: Number(db ?? 0), tls };
}

/** The same URL with this password (REDIS_PASSWORD_FILE's), whichever form it has. */
export function redisUrlWithPassword(url: string, password: string): string {
  if (parseRedisUrl(url).kind === 'single') {
    const u = new URL(url);
    u.password = password;
    return u.toString();
  }
  const enc = encodeURIComponent(password);
  return url.replace(/^([a-z+]+:\/\/)(?:([^:@/?#]*)(?::[^@/?#]*)?@)?/, (_m, scheme: string, user?: string) => `${scheme}${user ?? ''}:${enc}@`);
}

/**
 * What every connection to a cluster is told: commands to a slot whose primary just died wait for
 * the promotion of its replica (a node timeout of a few seconds) rather than fail at once; sharded
 * pub/sub (SSUBSCRIBE) goes to the node that owns each channel's slot.
 */
function clusterOptions(t: Extract<RedisTarget, { kind: 'cluster' }>, name: string, extra: RedisOptions): ClusterOptions {
  // No auto-pipelining on a cluster, whatever was asked: ioredis groups such a pipeline by the
  // slot map of when each command was queued, and one that changes under it (a failover) fails the
  // whole pipeline ("All keys in the pipeline should belong to the same slots allocation group").
  const { enableOfflineQueue, enableAutoPipelining: _ignored, ...perNode } = extra;
  return {
    clusterRetryStrategy: reconnectDelay,
    enableOfflineQueue: enableOfflineQueue ?? true,
    enableAutoPipelining: false,
    shardedSubscribers: true,
    retryDelayOnFailover: 250,
    retryDelayOnClusterDown: 250,
    retryDelayOnTryAgain: 100,
    // About 15 s of redirections and retries: longer than a failover with the default node timeout.
    maxRedirections: 60,
    slotsRefreshTimeout: 2_000,
    redisOptions: {
      connectionName: name,
      username: t.username,
      password: t.password,
      tls: t.tls ? {} : undefined,
      enableReadyCheck: true,
      ...perNode,
    },
  };
}

function sentinelOptions(t: Extract<RedisTarget, { kind: 'sentinel' }>): RedisOptions {
  return {
    sentinels: t.sentinels as Partial<RedisHost>[],
    name: t.name,
    username: t.username,
    password: t.password,
    sentinelPassword: t.sentinelPassword,
    db: t.db,
    tls: t.tls ? {} : undefined,
    sentinelRetryStrategy: reconnectDelay,
  };
}

/**
 * The ioredis client for `REDIS_URL` (one Redis, a Sentinel group or a cluster) with bounded
 * reconnect backoff; connection errors are logged (once per state change), never thrown into the void.
 */
export function createRedis(url: string, logger: Logger, name: string, extra: RedisOptions = {}): RedisClient {
  const target = parseRedisUrl(url);
  const common: RedisOptions = {
    connectionName: name,
    maxRetriesPerRequest: extra.maxRetriesPerRequest === undefined ? 3 : extra.maxRetriesPerRequest,
    retryStrategy: reconnectDelay,
    enableReadyCheck: true,
    lazyConnect: false,
    ...extra,
  };
  const client: RedisClient =
    target.kind === 'cluster'
      ? new Cluster(target.nodes as ClusterNode[], clusterOptions(target, name, common))
      : target.kind === 'sentinel'
        ? new Redis({ ...sentinelOptions(target), ...common })
        : new Redis(url, common);
  let down = false;
  client.on('error', (err: Error) => {
    if (!down) logger.warn('redis connection error', { connection: name, error: err.message });
    down = true;
  });
  client.on('ready', () => {
    if (down) logger.info('redis connection restored', { connection: name });
    down = false;
  });
  return client;
}

/** Whether this client speaks to a Redis Cluster (whose multi-key commands must stay in one slot). */
export function isCluster(client: RedisClient): client is Cluster {
  return client instanceof Cluster;
}

/** The servers that hold keys: the client itself, or each primary of a cluster (known once it is ready). */
export function primaries(client: RedisClient): Redis[] {
  return isCluster(client) ? client.nodes('master') : [client];
}

/**
 * Resolves once the client is ready. A SUBSCRIBE sent while ioredis is still in its ready check
 * (status `connect`, right after start or a reconnect) is lost when the check completes: the
 * connection silently leaves subscriber mode. Every subscription waits for this first.
 */
export function whenReady(client: RedisClient): Promise<void> {
  if (client.status === 'ready') return Promise.resolve();
  return new Promise((resolve) => client.once('ready', () => resolve()));
}

/** Cluster connections that the kit made for BullMQ, with how many queues and workers still use each. */
const bullUsers = new WeakMap<Cluster, number>();

/**
 * Connection settings for BullMQ (it needs maxRetriesPerRequest: null on workers). For a cluster,
 * a connection of its own (BullMQ cannot build one from options), closed by the kit when the last
 * `TypedQueue` or worker given it closes.
 */
export function bullConnection(url: string): ConnectionOptions {
  const target = parseRedisUrl(url);
  if (target.kind === 'cluster') {
    const cluster = new Cluster(target.nodes as ClusterNode[], clusterOptions(target, 'bullmq', { maxRetriesPerRequest: null, retryStrategy: reconnectDelay }));
    // BullMQ logs its own connection errors through the queue's and worker's `error` events.
    cluster.on('error', () => undefined);
    bullUsers.set(cluster, 0);
    return cluster;
  }
  if (target.kind === 'sentinel') return { ...sentinelOptions(target), maxRetriesPerRequest: null, retryStrategy: reconnectDelay };
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

function useBull(connection: ConnectionOptions): () => Promise<void> {
  if (!(connection instanceof Cluster) || !bullUsers.has(connection)) return async () => undefined;
  bullUsers.set(connection, (bullUsers.get(connection) ?? 0) + 1);
  let released = false;
  return async () => {
    if (released) return;
    released = true;
    const left = (bullUsers.get(connection) ?? 1) - 1;
    bullUsers.set(connection, left);
    if (left === 0) await connection.quit().catch(() => connection.disconnect());
  };
}

/**
 * The name BullMQ keys a queue under: in braces, so that every key of one queue (`<prefix>:{name}:…`)
 * hashes to one Redis Cluster slot, as BullMQ's scripts need, while different queues spread over
 * the cluster. The same on a single Redis, so one key layout is tested everywhere.
 */
export function bullQueueName(name: QueueName): string {
  return `{${name}}`;
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
  private readonly release: () => Promise<void>;
  constructor(
    readonly name: Q,
    connection: ConnectionOptions,
    logger: Logger,
    opts: Omit<QueueOptions, 'connection'> = {},
  ) {
    this.queue = new BullQueue(bullQueueName(name), { connection, defaultJobOptions: DEFAULT_JOB_OPTIONS, ...opts });
    this.release = useBull(connection);
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
  async close() {
    try {
      await this.queue.close();
    } finally {
      await this.release();
    }
  }
}

/** While PostgreSQL or Redis is out of reach, a job is put back this long, its attempts untouched. */
const UNREACHABLE_DELAY_MS = 2_000;

/**
 * A BullMQ worker whose processor receives the contract-typed, validated payload. A job that fails
 * because storage is out of reach (the kit's `isStorageUnreachable`) is not the job's fault: it goes
 * back to the queue for a try 2 s later without using up an attempt, so an outage longer than the
 * job's retries does not fail it for good.
 */
export function createTypedWorker<Q extends QueueName>(
  name: Q,
  connection: ConnectionOptions,
  logger: Logger,
  processor: (data: QueueJobData<Q>, job: Parameters<Processor>[0], token?: string) => Promise<unknown>,
  opts: Omit<WorkerOptions, 'connection'> = {},
): Worker {
  const spec = QueueJobs[name];
  const worker = new Worker(
    bullQueueName(name),
    async (job, token) => {
      const data = spec.data.parse(job.data) as QueueJobData<Q>;
      try {
        return await processor(data, job, token);
      } catch (e) {
        if (!isStorageUnreachable(e) || !token) throw e;
        logger.warn('database out of reach; job put back', { queue: name, job_id: job.id, error: (e as Error).message });
        await job.moveToDelayed(Date.now() + UNREACHABLE_DELAY_MS, token);
        throw new DelayedError();
      }
    },
    { connection, ...opts },
  );
  const release = useBull(connection);
  worker.on('closed', () => void release());
  worker.on('error', (err) => logger.warn('worker error', { queue: name, error: err.message }));
  worker.on('failed', (job, err) => logger.warn('job failed', { queue: name, job_id: job?.id, attempts: job?.attemptsMade, error: err.message }));
  return worker;
}

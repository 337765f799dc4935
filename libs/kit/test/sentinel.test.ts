/**
 * `REDIS_URL=redis+sentinel://…` against a real Sentinel group on this machine: a primary, its
 * replica and three Sentinels (quorum 2), every one of them behind a password, all started here
 * from Debian's redis-server in a fresh temp dir and killed after. Then what a user of the kit
 * would check: keys, the typed bus, a BullMQ round trip, and the same clients after the primary
 * dies and the Sentinels promote its replica.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import type { Job, Worker } from 'bullmq';
import { Queue, QueueJobs, type ChannelMessage, type QueueJobData } from '@tessera/contracts';
import {
  BusPublisher,
  BusSubscriber,
  bullConnection,
  channelOf,
  createLogger,
  createRedis,
  createTypedWorker,
  TypedQueue,
  type RedisClient,
} from '../src';
import { testPrefix, until } from '../src/testing';

jest.setTimeout(30_000);

const logger = createLogger('sentinel-test', 'silent');
const MASTER = 'tessera-test';
const PASSWORD = randomBytes(16).toString('hex');
/** The Sentinels' own password, another one: the URL must not mix them up. */
const SENTINEL_PASSWORD = randomBytes(16).toString('hex');
const prefix = testPrefix('kit-sentinel');

let dir = '';
let primaryPort = 0;
let replicaPort = 0;
let sentinelPorts: number[] = [];
let sentinelUrl = '';
const servers = new Map<number, ChildProcess>();

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

/** Five consecutive free ports, 7311–7315 if nothing listens there. */
async function freePorts(): Promise<number[]> {
  for (let base = 7311; base < 7311 + 50 * 5; base += 5) {
    const ports = [0, 1, 2, 3, 4].map((i) => base + i);
    if ((await Promise.all(ports.map(portFree))).every(Boolean)) return ports;
  }
  throw new Error('no five consecutive free ports from 7311');
}

async function start(port: number, config: string[], sentinel: boolean): Promise<void> {
  const file = join(dir, `${port}.conf`);
  const common = [`port ${port}`, 'bind 127.0.0.1', 'daemonize no', `dir ${dir}`, `logfile ${join(dir, `${port}.log`)}`, `pidfile ${join(dir, `${port}.pid`)}`];
  await writeFile(file, [...common, ...config].join('\n') + '\n', { mode: 0o600 });
  const child = spawn('redis-server', sentinel ? [file, '--sentinel'] : [file], { stdio: 'ignore' });
  child.once('error', () => undefined);
  servers.set(port, child);
}

/** One command on a connection of its own; null while the server is not there (yet) or refuses. */
async function ask(port: number, password: string, ...args: string[]): Promise<unknown> {
  const c = new Redis({ host: '127.0.0.1', port, password, lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0, enableOfflineQueue: false });
  c.on('error', () => undefined);
  try {
    await c.connect();
    return await c.call(args[0], ...args.slice(1));
  } catch {
    return null;
  } finally {
    c.disconnect();
  }
}

/** `SENTINEL master <name>`'s flat field list as a record. */
const fields = (reply: unknown): Record<string, string> => {
  const a = (reply ?? []) as string[];
  return Object.fromEntries(a.flatMap((v, i) => (i % 2 ? [] : [[v, a[i + 1]]])));
};

/** What every Sentinel says is the primary now, as ports. */
const primaryPorts = async (): Promise<(number | null)[]> => {
  const addrs = await Promise.all(sentinelPorts.map((p) => ask(p, SENTINEL_PASSWORD, 'SENTINEL', 'get-master-addr-by-name', MASTER)));
  return addrs.map((a) => (Array.isArray(a) && a[0] === '127.0.0.1' ? Number(a[1]) : null));
};

async function logs(): Promise<string> {
  const parts = await Promise.all([...servers.keys()].map(async (p) => `--- ${p}\n${(await readFile(join(dir, `${p}.log`), 'utf8').catch(() => '')).split('\n').slice(-15).join('\n')}`));
  return parts.join('\n');
}

/** The local port of this client's own connection, as the server sees it (CLIENT INFO's laddr). */
async function serverPortOf(client: RedisClient): Promise<number> {
  const info = String(await client.call('CLIENT', 'INFO'));
  const m = /laddr=[^ ]*:(\d+)/.exec(info);
  if (!m) throw new Error(`no laddr in CLIENT INFO: ${info}`);
  return Number(m[1]);
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tessera-sentinel-'));
  [primaryPort, replicaPort, ...sentinelPorts] = await freePorts();
  const data = [`requirepass ${PASSWORD}`, `masterauth ${PASSWORD}`, 'save ""', 'appendonly no'];
  await start(primaryPort, data, false);
  await start(replicaPort, [...data, `replicaof 127.0.0.1 ${primaryPort}`], false);
  for (const port of sentinelPorts) {
    await start(
      port,
      [
        `sentinel monitor ${MASTER} 127.0.0.1 ${primaryPort} 2`,
        `sentinel auth-pass ${MASTER} ${PASSWORD}`,
        `sentinel down-after-milliseconds ${MASTER} 1000`,
        `sentinel failover-timeout ${MASTER} 5000`,
        `sentinel parallel-syncs ${MASTER} 1`,
        `requirepass ${SENTINEL_PASSWORD}`,
        `sentinel sentinel-pass ${SENTINEL_PASSWORD}`,
      ],
      true,
    );
  }
  sentinelUrl = `redis+sentinel://:${PASSWORD}@${sentinelPorts.map((p) => `127.0.0.1:${p}`).join(',')}/${MASTER}?sentinelPassword=${SENTINEL_PASSWORD}`;
  try {
    await until(async () => String(await ask(replicaPort, PASSWORD, 'INFO', 'replication')).includes('master_link_status:up'), 15_000, 'the replica in sync');
    // Every Sentinel names the primary, knows the two others and the replica: a failover can be agreed.
    await until(
      async () => {
        const masters = await Promise.all(sentinelPorts.map(async (p) => fields(await ask(p, SENTINEL_PASSWORD, 'SENTINEL', 'master', MASTER))));
        const replicas = await Promise.all(sentinelPorts.map(async (p) => ((await ask(p, SENTINEL_PASSWORD, 'SENTINEL', 'replicas', MASTER)) ?? []) as unknown[]));
        return (
          (await primaryPorts()).every((p) => p === primaryPort) &&
          masters.every((m) => m.flags === 'master' && m['num-other-sentinels'] === '2' && m['num-slaves'] === '1') &&
          replicas.every((r) => r.length === 1 && fields(r[0]).flags === 'slave' && fields(r[0])['master-link-status'] === 'ok')
        );
      },
      20_000,
      'the Sentinels to agree on the primary and see each other and the replica',
    );
  } catch (e) {
    throw new Error(`${(e as Error).message}\n${await logs()}`);
  }
}, 45_000);

async function kill(port: number): Promise<void> {
  const child = servers.get(port);
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGKILL');
  await exited;
}

const clients: RedisClient[] = [];
function client(name: string, extra: Parameters<typeof createRedis>[3] = {}): RedisClient {
  const c = createRedis(sentinelUrl, logger, `${prefix}:${name}`, extra);
  clients.push(c);
  return c;
}

afterAll(async () => {
  await Promise.all(
    clients.map((c) => Promise.race([c.quit().catch(() => undefined), new Promise((r) => setTimeout(r, 1_000))]).then(() => c.disconnect())),
  );
  await Promise.all([...servers.keys()].map(kill));
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** The client of test 1 and the bus of test 2, used again across the failover of test 4. */
let redis: RedisClient;
let publisher: BusPublisher;
const heard: ChannelMessage<'sessionControl'>[] = [];
let resyncs = 0;
const control = channelOf('sessionControl');
const stop = (session: string): ChannelMessage<'sessionControl'> => ({ action: 'stop', session_id: session, app_id: 'app-a' });

describe('REDIS_URL naming a Sentinel group (redis+sentinel://)', () => {
  it('createRedis sets and gets a key, on the primary the Sentinels name', async () => {
    redis = client('main');
    await redis.set(`${prefix}:k1`, 'v1');
    expect(await redis.get(`${prefix}:k1`)).toBe('v1');
    expect(await serverPortOf(redis)).toBe(primaryPort);
    expect(await ask(primaryPort, PASSWORD, 'GET', `${prefix}:k1`)).toBe('v1');
  });

  it('the typed bus: a message on sessionControl reaches a BusSubscriber', async () => {
    const bus = new BusSubscriber(client('bus-sub', { maxRetriesPerRequest: null }), logger);
    publisher = new BusPublisher(client('bus-pub'));
    await bus.subscribe(control, { onMessage: (m) => void heard.push(m), onResync: () => void resyncs++ });
    await publisher.publish(control, stop('s1'));
    await until(() => heard.length >= 1, 5_000, 'the message');
    expect(heard).toEqual([stop('s1')]);
  });
});

describe('BullMQ through bullConnection(sentinel URL)', () => {
  type Batch = QueueJobData<typeof Queue.ObservabilityEvents>;
  let queue: TypedQueue<typeof Queue.ObservabilityEvents>;
  let worker: Worker;
  const received: { data: Batch; name: string; id?: string }[] = [];

  afterAll(async () => {
    await worker?.close();
    await queue?.queue.obliterate({ force: true });
    await queue?.close();
  });

  it('a job added to a TypedQueue is processed by a typed worker', async () => {
    queue = new TypedQueue(Queue.ObservabilityEvents, bullConnection(sentinelUrl), logger, { prefix });
    worker = createTypedWorker(
      Queue.ObservabilityEvents,
      bullConnection(sentinelUrl),
      logger,
      async (data, job) => {
        received.push({ data, name: job.name, id: job.id });
        return { stored: data.events.length };
      },
      { prefix, concurrency: 1 },
    );
    await worker.waitUntilReady();
    const payload: Batch = {
      events: [
        {
          session_id: 'chat-1',
          app_id: 'app-a',
          user_id: 'user-1',
          workflow_name: 'support',
          agent: null,
          index: 1,
          type: 'message',
          payload: { text: 'hello' },
          usage: { prompt_tokens: 10, completion_tokens: 5, total_tokens: 15 },
          timestamp: new Date(Date.UTC(2026, 0, 1)).toISOString(),
        },
      ],
    };
    const completed = once(worker, 'completed') as Promise<[Job, unknown]>;
    const job = await queue.add(payload);
    const [done, result] = await completed;
    expect(done.id).toBe(job.id);
    expect(result).toEqual({ stored: 1 });
    expect(received).toEqual([{ data: payload, name: QueueJobs[Queue.ObservabilityEvents].name, id: job.id }]);
    // Where it lives: on the primary.
    expect(await ask(primaryPort, PASSWORD, 'EXISTS', `${prefix}:{${Queue.ObservabilityEvents}}:${job.id}`)).toBe(1);
  });
});

describe('a failover: the primary is killed, the Sentinels promote its replica', () => {
  it('the same clients follow it: the key written before is read, writes go to the new primary, the bus resubscribes', async () => {
    await redis.set(`${prefix}:before`, 'kept');
    // Acknowledged by the replica before the primary dies, as a user who cannot lose it would ask.
    expect(await redis.wait(1, 2_000)).toBe(1);
    const resyncsBefore = resyncs;

    const t0 = Date.now();
    await kill(primaryPort);
    try {
      await until(async () => (await primaryPorts()).every((p) => p === replicaPort), 20_000, 'the Sentinels to promote the replica');
    } catch (e) {
      throw new Error(`${(e as Error).message}\n${await logs()}`);
    }
    const promotedMs = Date.now() - t0;

    expect(await redis.get(`${prefix}:before`)).toBe('kept');
    await redis.set(`${prefix}:after`, 'new');
    expect(await redis.get(`${prefix}:after`)).toBe('new');
    expect(await serverPortOf(redis)).toBe(replicaPort);
    expect(await ask(replicaPort, PASSWORD, 'GET', `${prefix}:after`)).toBe('new');
    expect(String(await ask(replicaPort, PASSWORD, 'INFO', 'replication'))).toContain('role:master');

    // The subscription made before: resubscribed (onResync), then it hears what is published now.
    await until(() => resyncs > resyncsBefore, 15_000, 'the bus to resubscribe (onResync)');
    await publisher.publish(control, stop('s2'));
    await until(() => heard.length >= 2, 5_000, 'the message after the failover');
    expect(heard).toEqual([stop('s1'), stop('s2')]);
    expect(resyncs).toBeGreaterThan(resyncsBefore);
    if (process.env.SENTINEL_TEST_TIMING) process.stderr.write(`promoted after ${promotedMs} ms\n`);
  }, 45_000);
});

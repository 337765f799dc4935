/**
 * The benchmarks' own connections to Redis, for a single Redis and a Redis Cluster alike
 * (`REDIS_URL=redis+cluster://…`): built by the kit's `createRedis`, as the services build theirs.
 * What is per server (SCAN, INFO) goes to every primary of a cluster.
 */
import { createLogger, createRedis, isCluster, primaries, whenReady, type RedisClient } from '@tessera/kit';
import type { Redis, RedisOptions } from 'ioredis';

const logger = createLogger('bench-redis', 'error');

/** A client for `url` (one Redis or a cluster), ready (a cluster's slots known). */
export async function benchRedis(url: string, name: string, extra: RedisOptions = {}): Promise<RedisClient> {
  const client = createRedis(url, logger, name, { maxRetriesPerRequest: 1, ...extra });
  const ready = whenReady(client);
  const failed = new Promise<never>((_, rej) => setTimeout(() => rej(new Error(`${name}: Redis not ready within 10 s`)), 10_000).unref());
  try {
    await Promise.race([ready, failed]);
  } catch (e) {
    client.disconnect();
    throw e;
  }
  return client;
}

/** Every server: the client itself, or each node (primaries and replicas) of a cluster. */
export function allNodes(client: RedisClient): Redis[] {
  return isCluster(client) ? client.nodes('all') : [client];
}

/** `used_memory` (bytes) of one Redis, or summed over a cluster's primaries. */
export async function usedMemory(client: RedisClient): Promise<number> {
  const each = await Promise.all(primaries(client).map(async (n) => Number(/used_memory:(\d+)/.exec(await n.info('memory'))?.[1] ?? NaN)));
  return each.reduce((s, x) => s + x, 0);
}

/** The process ids of the Redis servers behind the client (every node of a cluster). */
export async function serverPids(client: RedisClient): Promise<number[]> {
  const each = await Promise.all(allNodes(client).map(async (n) => Number(/process_id:(\d+)/.exec(await n.info('server'))?.[1] ?? 0)));
  return each.filter((p) => p > 0);
}

/**
 * Samples `used_memory` (summed over a cluster's primaries) every `everyMs` until stopped: the value
 * before and the highest seen.
 */
export function memoryPoller(
  client: RedisClient,
  everyMs = 500,
): { before: Promise<number>; step(): Promise<number>; stop(): Promise<{ before: number; peak: number; last: number }> } {
  const before = usedMemory(client).catch(() => NaN);
  let peak = NaN;
  let last = NaN;
  let stepPeak = NaN;
  const take = (m: number) => {
    if (Number.isFinite(m)) {
      last = m;
      peak = Number.isFinite(peak) ? Math.max(peak, m) : m;
      stepPeak = Number.isFinite(stepPeak) ? Math.max(stepPeak, m) : m;
    }
  };
  void before.then(take);
  let pending: Promise<void> = Promise.resolve();
  const timer = setInterval(() => {
    pending = usedMemory(client).then(take, () => undefined);
  }, everyMs);
  return {
    before,
    /** The peak since the last step() (or the start), read now too; the next step starts from here. */
    async step() {
      take(await usedMemory(client).catch(() => NaN));
      const p = stepPeak;
      stepPeak = NaN;
      return p;
    },
    async stop() {
      clearInterval(timer);
      await pending;
      take(await usedMemory(client).catch(() => NaN));
      return { before: await before, peak, last };
    },
  };
}

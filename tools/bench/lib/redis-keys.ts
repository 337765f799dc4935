import { isCluster } from '@tessera/kit';
import { benchRedis, primaries } from './redis';

/**
 * Delete every Redis key starting with `prefix` (a benchmark's BullMQ prefix): queues, jobs, leases.
 * On a cluster, SCAN and UNLINK run on each primary for the keys it holds.
 */
export async function deleteKeys(redisUrl: string, prefix: string): Promise<number> {
  if (!/^[A-Za-z0-9_-]{6,}:$/.test(prefix)) throw new Error(`refusing to delete keys under "${prefix}"`);
  const redis = await benchRedis(redisUrl, 'bench-cleanup');
  let n = 0;
  try {
    for (const node of primaries(redis)) {
      let cursor = '0';
      do {
        const [next, keys] = await node.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
        cursor = next;
        if (!keys.length) continue;
        if (!isCluster(redis)) n += await node.unlink(...keys);
        else {
          // A cluster node refuses a multi-key UNLINK across slots: one per key, pipelined on the node.
          const p = node.pipeline();
          for (const k of keys) p.unlink(k);
          for (const [err, x] of (await p.exec()) ?? []) if (!err) n += Number(x);
        }
      } while (cursor !== '0');
    }
  } finally {
    redis.disconnect();
  }
  return n;
}

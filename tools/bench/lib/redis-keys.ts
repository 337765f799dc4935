import { Redis } from 'ioredis';

/** Delete every Redis key starting with `prefix` (a benchmark's BullMQ prefix): queues, jobs, leases. */
export async function deleteKeys(redisUrl: string, prefix: string): Promise<number> {
  if (!/^[A-Za-z0-9_-]{6,}:$/.test(prefix)) throw new Error(`refusing to delete keys under "${prefix}"`);
  const redis = new Redis(redisUrl, { maxRetriesPerRequest: 1 });
  let n = 0;
  try {
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length) n += await redis.unlink(...keys);
    } while (cursor !== '0');
  } finally {
    redis.disconnect();
  }
  return n;
}

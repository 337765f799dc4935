import { deleteKeys as deleteMatching } from '../../../libs/kit/src/testing';

/**
 * Delete every Redis key starting with `prefix` (a benchmark's BullMQ prefix): queues, jobs, leases.
 * On a cluster, on each primary for the keys it holds.
 */
export async function deleteKeys(redisUrl: string, prefix: string): Promise<number> {
  if (!/^[A-Za-z0-9_-]{6,}:$/.test(prefix)) throw new Error(`refusing to delete keys under "${prefix}"`);
  return deleteMatching(redisUrl, `${prefix}*`);
}

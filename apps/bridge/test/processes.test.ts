/**
 * The bridge as a process: SIGTERM stops its agent servers with it; after a SIGKILL they are
 * left running, and the next bridge reaps them before it serves. No `opencode` process outlives
 * the test either way.
 */
import { Redis } from 'ioredis';
import { TEST_REDIS_URL, testPrefix } from '@tessera/kit/testing';
import { bootstrap, pair, removeWorkRoot, running, socketOf, spawnBridge, until } from './harness';

const BASE = 31100;
const prefix = testPrefix('bridge-procs');
const redis = new Redis(TEST_REDIS_URL);

/** Every agent server the registry knows of, with its pid. */
async function registered(): Promise<{ pid: number; sessionId: string }[]> {
  return Object.values(await redis.hgetall(`{${prefix}}:procs`)).map((j) => JSON.parse(j) as { pid: number; sessionId: string });
}

afterAll(async () => {
  const keys = await redis.keys(`{${prefix}}:*`);
  if (keys.length) await redis.del(...keys);
  await redis.quit();
  await removeWorkRoot(prefix);
});

describe('bridge process lifecycle', () => {
  it('SIGTERM stops every agent server of the bridge, and tells the sockets', async () => {
    const bridge = await spawnBridge(prefix, BASE);
    try {
      const a = await bootstrap(bridge.url, pair('term-a'));
      const b = await bootstrap(bridge.url, pair('term-b'));
      const pids = (await registered()).map((e) => e.pid);
      expect(pids).toHaveLength(2);
      expect(pids.every(running)).toBe(true);
      const ws = socketOf(bridge.url, a.body.sessionId, a.body.sessionToken);
      await ws.waitType('session.snapshot');
      await bridge.stop('SIGTERM');
      expect(bridge.child.exitCode).toBe(0);
      expect(pids.filter(running)).toEqual([]);
      expect((await ws.waitType('session.closed')).payload).toEqual({ reason: 'shutdown' });
      expect(await registered()).toEqual([]);
      expect(b.status).toBe(200);
    } finally {
      await bridge.stop('SIGKILL');
    }
  });

  it('after a SIGKILL the next bridge reaps the servers left behind before it serves', async () => {
    const first = await spawnBridge(prefix, BASE);
    const p = pair('kill');
    let pids: number[] = [];
    try {
      const r = await bootstrap(first.url, p);
      expect(r.status).toBe(200);
      pids = (await registered()).map((e) => e.pid);
      expect(pids).toHaveLength(1);
      await first.stop('SIGKILL');
      // Its own process group: the agent server outlives a bridge that could not stop it.
      expect(running(pids[0])).toBe(true);

      const next = await spawnBridge(prefix, BASE);
      try {
        // Reaped during start, before the health check answered.
        expect(pids.filter(running)).toEqual([]);
        expect(next.output()).toContain('reaped an agent server left by a bridge that is gone');
        const again = await bootstrap(next.url, p);
        expect(again.body).toMatchObject({ isNew: true });
        expect(again.body.sessionId).not.toBe(r.body.sessionId);
      } finally {
        await next.stop('SIGTERM');
      }
      expect(await registered()).toEqual([]);
    } finally {
      await first.stop('SIGKILL');
      for (const pid of pids) if (running(pid)) process.kill(-pid, 'SIGKILL');
      await until(() => pids.every((pid) => !running(pid)), 5_000, 'no agent server left');
    }
  });
});

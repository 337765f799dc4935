import { mkdir } from 'node:fs/promises';
import lockfile from 'proper-lockfile';
import { Unavailable, type Logger } from '@tessera/kit';
import type { Layout } from './layout';

/**
 * One writer per agent at a time, across processes and machines sharing the directory: a lock
 * directory (mkdir is atomic, also on NFS) refreshed while held; one left by a dead process goes
 * stale after LOCK_STALE_MS and is taken over. Writers of this process queue in memory first, so
 * they wait their turn instead of polling the lock against each other.
 */
export class AgentLocks {
  private readonly queues = new Map<string, Promise<unknown>>();
  private ready: Promise<unknown> | null = null;

  constructor(
    private readonly layout: Layout,
    private readonly staleMs: number,
    private readonly logger: Logger,
  ) {}

  async with<T>(name: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.queues.get(name) ?? Promise.resolve();
    const run = prev.catch(() => undefined).then(() => this.locked(name, fn));
    const tail = run.catch(() => undefined);
    this.queues.set(name, tail);
    void tail.then(() => {
      if (this.queues.get(name) === tail) this.queues.delete(name);
    });
    return run;
  }

  /** Whether a writer (of any process) holds the agent's lock now. */
  held(name: string): Promise<boolean> {
    return lockfile.check(this.layout.agentDir(name), { realpath: false, lockfilePath: this.layout.lockFile(name), stale: this.staleMs }).catch(() => false);
  }

  private async locked<T>(name: string, fn: () => Promise<T>): Promise<T> {
    this.ready ??= mkdir(this.layout.locks, { recursive: true });
    await this.ready;
    let release: () => Promise<void>;
    try {
      release = await lockfile.lock(this.layout.agentDir(name), {
        realpath: false,
        lockfilePath: this.layout.lockFile(name),
        stale: this.staleMs,
        update: Math.floor(this.staleMs / 4),
        // About 10 s of waiting for another process's writer before giving up.
        retries: { retries: 150, factor: 1.3, minTimeout: 2, maxTimeout: 100, randomize: true },
        // A lock we could not refresh in time may now be another's: say so; the write in progress finishes.
        onCompromised: (e) => this.logger.warn('agent lock compromised', { agent: name, error: e.message }),
      });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ELOCKED') throw new Unavailable(`agent "${name}" is locked by another writer; try again`);
      throw e;
    }
    try {
      return await fn();
    } finally {
      await release().catch((e: Error) => this.logger.warn('agent lock release failed', { agent: name, error: e.message }));
    }
  }
}

import type { RedisClient } from '@tessera/kit';
import type { Logger } from '@tessera/kit';
import type { BridgeConfig } from '../config';
import type { Keys } from '../store/keys';
import { groupMembers, isRunning, killGroup, procIdentity } from './proc';
import type { RegistryEntry } from './server-pool';

/** An instance is alive while it refreshes its key; one that stops refreshing is dead after this long. */
export const ALIVE_TTL_MS = 10_000;
const ALIVE_EVERY_MS = 3_000;

/**
 * Finds agent servers whose bridge is gone and kills them. On this host a dead bridge is seen at
 * once (its pid no longer runs), so a restarted bridge reaps its predecessor's servers before it
 * serves; elsewhere an instance is dead once its alive key expired. A registry entry is trusted
 * only if /proc agrees (same start time): a pid reused by an unrelated process is never killed.
 */
export class Reaper {
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly config: BridgeConfig,
    private readonly redis: RedisClient,
    private readonly k: Keys,
    private readonly host: string,
    private readonly logger: Logger,
  ) {}

  async heartbeat(): Promise<void> {
    await this.redis.set(this.k.alive(this.config.instanceId), `${this.host}:${process.pid}`, 'PX', ALIVE_TTL_MS);
  }

  startHeartbeat(): void {
    this.timer = setInterval(() => void this.heartbeat().catch((e) => this.logger.warn('alive key not refreshed', { error: (e as Error).message })), ALIVE_EVERY_MS);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.redis.del(this.k.alive(this.config.instanceId)).catch(() => undefined);
  }

  async isAlive(instance: string): Promise<boolean> {
    return instance === this.config.instanceId || (await this.redis.exists(this.k.alive(instance))) === 1;
  }

  /** Kills what dead bridges of this host left and forgets dead instances; returns the instances found dead. */
  async reap(): Promise<Set<string>> {
    const raw = await this.redis.hgetall(this.k.procs);
    const dead = new Set<string>();
    for (const [field, json] of Object.entries(raw)) {
      let e: RegistryEntry;
      try {
        e = JSON.parse(json) as RegistryEntry;
      } catch {
        await this.redis.hdel(this.k.procs, field);
        continue;
      }
      if (e.instance === this.config.instanceId) continue;
      if (e.host === this.host) {
        if (isRunning(e.bridgePid) && (await this.isAlive(e.instance))) continue;
        dead.add(e.instance);
        const killed = await this.kill(e);
        this.logger.warn('reaped an agent server left by a bridge that is gone', { instance: e.instance, pid: e.pid, port: e.port, session_id: e.sessionId, killed });
        await this.redis.hdel(this.k.procs, field);
      } else if (!(await this.isAlive(e.instance))) {
        // Another host's process: only a bridge on that host can kill it; its sessions are gone for us.
        dead.add(e.instance);
      }
    }
    // A bridge of this host that died is dead for every instance now, not only once its key expires.
    for (const instance of dead) await this.redis.del(this.k.alive(instance));
    return dead;
  }

  /** SIGKILL to the group, then wait (bounded) until it is gone: a reaped port is free when reap() returns. */
  private async kill(e: RegistryEntry): Promise<number> {
    const leader = procIdentity(e.pid);
    // The pid now names another process (and maybe leads a new group of that number): not ours to kill.
    if (leader && leader.startTicks !== e.startTicks) return 0;
    const members = leader ? [e.pid] : groupMembers(e.pgid, e.startTicks);
    if (members.length === 0) return 0;
    killGroup(e.pgid, 'SIGKILL');
    for (let i = 0; i < 100 && members.some(isRunning); i++) await new Promise((r) => setTimeout(r, 20));
    return members.length;
  }
}

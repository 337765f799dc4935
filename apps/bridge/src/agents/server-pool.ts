import { hostname } from 'node:os';
import { join } from 'node:path';
import type { RedisClient } from '@tessera/kit';
import { Unavailable, type Logger } from '@tessera/kit';
import type { BridgeConfig } from '../config';
import type { Keys } from '../store/keys';
import { AgentProcess, fillArgs, StartFailed } from './agent-process';
import { killGroup, portFree } from './proc';
import { workRootOf, type Sandbox } from './sandbox';

/** What the registry keeps of a process this instance started, for whoever must reap it. */
export interface RegistryEntry {
  instance: string;
  host: string;
  /** The bridge process that owns it: when it is gone, so must be the agent server. */
  bridgePid: number;
  sessionId: string;
  pid: number;
  pgid: number;
  startTicks: number;
  port: number;
  startedAt: string;
}

export interface RunningServer {
  sessionId: string;
  port: number;
  proc: AgentProcess;
}

export const SERVER_USER = 'opencode';

/**
 * This instance's agent servers: ports from OPENCODE_BASE_PORT..OPENCODE_MAX_PORT (a port someone
 * else holds is skipped), at most OPENCODE_MAX_SERVERS at once, each recorded in the Redis
 * registry before anything else can happen to it, so that no server outlives its bridge unseen.
 */
export class ServerPool {
  private readonly servers = new Map<string, RunningServer>();
  private readonly ports = new Set<number>();
  private starting = 0;
  private exitHandler: (sessionId: string, proc: AgentProcess) => void = () => undefined;
  readonly host = hostname();
  readonly workRoot: string;

  constructor(
    private readonly config: BridgeConfig,
    private readonly redis: RedisClient,
    private readonly k: Keys,
    private readonly logger: Logger,
    private readonly sandbox: Sandbox,
  ) {
    this.workRoot = workRootOf(config);
  }

  /** Called when a server exits without being asked to (a crash, a kill -9). */
  onUnexpectedExit(handler: (sessionId: string, proc: AgentProcess) => void): void {
    this.exitHandler = handler;
  }

  get size(): number {
    return this.servers.size;
  }
  get capacity() {
    const max = this.config.OPENCODE_MAX_SERVERS;
    return { servers: this.servers.size, maxServers: max, available: Math.max(0, max - this.servers.size - this.starting) };
  }
  get(sessionId: string): RunningServer | undefined {
    return this.servers.get(sessionId);
  }
  list(): RunningServer[] {
    return [...this.servers.values()];
  }

  async start(sessionId: string, env: Record<string, string>, password: string): Promise<RunningServer> {
    const c = this.config;
    if (this.servers.size + this.starting >= c.OPENCODE_MAX_SERVERS) {
      throw new Unavailable(`all ${c.OPENCODE_MAX_SERVERS} agent servers of this bridge are in use (OPENCODE_MAX_SERVERS); try again later`, {
        maxServers: c.OPENCODE_MAX_SERVERS,
        running: this.servers.size,
      });
    }
    this.starting++;
    try {
      for (let attempt = 0; attempt < 5; attempt++) {
        const port = await this.takePort();
        try {
          const proc = await AgentProcess.launch({
            command: c.OPENCODE_COMMAND,
            args: fillArgs(c.OPENCODE_ARGS, c.OPENCODE_HOST, port),
            host: c.OPENCODE_HOST,
            port,
            username: SERVER_USER,
            password,
            env: { ...c.agentEnv, ...env },
            workDir: join(this.workRoot, sessionId),
            sandbox: this.sandbox,
            startTimeoutMs: c.OPENCODE_START_TIMEOUT_MS,
            healthTimeoutMs: c.OPENCODE_HEALTH_TIMEOUT_MS,
          });
          return await this.adopt(sessionId, port, proc);
        } catch (e) {
          this.ports.delete(port);
          if (e instanceof StartFailed && e.portTaken) continue;
          if (e instanceof StartFailed) {
            this.logger.warn('agent server did not start', { session_id: sessionId, port, error: e.message, output: e.output });
            throw new Unavailable(`${e.message}; try again`);
          }
          throw e;
        }
      }
      throw new Unavailable('no free port for an agent server; try again later');
    } finally {
      this.starting--;
    }
  }

  private async adopt(sessionId: string, port: number, proc: AgentProcess): Promise<RunningServer> {
    const entry: RegistryEntry = {
      instance: this.config.instanceId,
      host: this.host,
      bridgePid: process.pid,
      sessionId,
      pid: proc.pid,
      pgid: proc.pid,
      startTicks: proc.identity?.startTicks ?? 0,
      port,
      startedAt: new Date().toISOString(),
    };
    try {
      await this.redis.hset(this.k.procs, this.field(proc.pid), JSON.stringify(entry));
    } catch (e) {
      await proc.stop();
      throw new Unavailable('cannot record the agent server (RedisClient); try again', { error: (e as Error).message });
    }
    const server: RunningServer = { sessionId, port, proc };
    this.servers.set(sessionId, server);
    void proc.exited.then(({ code, signal }) => {
      // What is left of its group (the sandbox's init and everything in it) goes with its leader.
      killGroup(proc.pid, 'SIGKILL');
      if (this.servers.get(sessionId) !== server) return;
      this.release(server);
      if (!proc.stopRequested) {
        this.logger.warn('agent server exited', { session_id: sessionId, pid: proc.pid, code, signal });
        this.exitHandler(sessionId, proc);
      }
    });
    return server;
  }

  /** The lowest port of the range that no server of ours holds and nobody else listens on. */
  private async takePort(): Promise<number> {
    const { OPENCODE_BASE_PORT: base, OPENCODE_MAX_PORT: max, OPENCODE_HOST: host } = this.config;
    for (let port = base; port <= max; port++) {
      if (this.ports.has(port)) continue;
      this.ports.add(port);
      if (await portFree(port, host)) return port;
      this.ports.delete(port);
    }
    throw new Unavailable(`no free port in OPENCODE_BASE_PORT..OPENCODE_MAX_PORT (${base}..${max}); try again later`);
  }

  private release(server: RunningServer): void {
    this.servers.delete(server.sessionId);
    this.ports.delete(server.port);
    void this.redis.hdel(this.k.procs, this.field(server.proc.pid)).catch(() => undefined);
  }

  /** Stops a session's server (its whole process group) and frees its port. */
  async stop(sessionId: string): Promise<boolean> {
    const server = this.servers.get(sessionId);
    if (!server) return false;
    await server.proc.stop();
    if (this.servers.get(sessionId) === server) this.release(server);
    return true;
  }

  async stopAll(): Promise<string[]> {
    const ids = [...this.servers.keys()];
    await Promise.all(ids.map((id) => this.stop(id)));
    return ids;
  }

  private field(pid: number): string {
    return `${this.config.instanceId}:${pid}`;
  }
}

import { spawn, type ChildProcess } from 'node:child_process';
import { rm } from 'node:fs/promises';
import { request } from 'node:http';
import { join } from 'node:path';
import { groupMembers, killGroup, procIdentity, type ProcIdentity } from './proc';
import { agentDirs, type Sandbox } from './sandbox';

export interface LaunchSpec {
  command: string;
  /** Arguments with `{host}` and `{port}` filled in. */
  args: string[];
  host: string;
  port: number;
  username: string;
  password: string;
  /** The whole environment: what the bridge passes on (config.agentEnv), OPENCODE_CONFIG_CONTENT and the session's callback variables. */
  env: Record<string, string>;
  /** The session's directory (workspace and home), removed with the server. */
  workDir: string;
  sandbox: Sandbox;
  startTimeoutMs: number;
  healthTimeoutMs: number;
}

export class StartFailed extends Error {
  constructor(
    message: string,
    /** The port was taken by someone else meanwhile: try the next one. */
    readonly portTaken = false,
    /** The end of what it printed (the sandbox's own complaint, say): for the log, not for the client. */
    readonly output = '',
  ) {
    super(message);
  }
}

const READY_LINE = /listening on (https?:\/\/\S+)/;

/**
 * One agent server process: its own process group (so that it and whatever it spawns, MCP servers
 * included, are stopped together), ready once it printed its "listening" line and its health
 * endpoint answers. A probe that hangs is abandoned after `healthTimeoutMs` and retried.
 */
export class AgentProcess {
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  identity: ProcIdentity | null = null;
  private output = '';
  private stopping = false;

  private constructor(
    readonly spec: LaunchSpec,
    readonly child: ChildProcess,
  ) {
    this.exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
    const keep = (d: Buffer) => (this.output = (this.output + d.toString()).slice(-8_000));
    child.stdout!.on('data', keep);
    child.stderr!.on('data', keep);
  }

  get pid(): number {
    return this.child.pid!;
  }
  get exitedAlready(): boolean {
    return this.child.exitCode !== null || this.child.signalCode !== null;
  }
  get stopRequested(): boolean {
    return this.stopping;
  }
  /** The end of what the server printed (its own output: no access token is ever given to it on the command line). */
  tail(): string {
    return this.output.slice(-1_000);
  }

  static async launch(spec: LaunchSpec): Promise<AgentProcess> {
    const dirs = agentDirs(spec.workDir);
    await spec.sandbox.prepare(dirs);
    let launch;
    try {
      launch = spec.sandbox.wrap(spec.command, spec.args, { ...spec.env, OPENCODE_SERVER_USERNAME: spec.username, OPENCODE_SERVER_PASSWORD: spec.password }, dirs);
    } catch (e) {
      await rm(spec.workDir, { recursive: true, force: true }).catch(() => undefined);
      throw new StartFailed(`cannot start the agent server (${spec.command}): ${(e as Error).message}`);
    }
    // Its own process group (detached): the sandbox and everything in it are stopped together.
    const child = spawn(launch.command, launch.args, {
      cwd: launch.cwd,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: launch.env,
      uid: launch.uid,
      gid: launch.gid,
    });
    const p = new AgentProcess(spec, child);
    const spawned = await new Promise<Error | null>((resolve) => {
      child.once('spawn', () => resolve(null));
      child.once('error', (e) => resolve(e));
    });
    if (spawned) {
      await rm(spec.workDir, { recursive: true, force: true }).catch(() => undefined);
      throw new StartFailed(`cannot start the agent server (${spec.command}): ${spawned.message}`);
    }
    p.identity = procIdentity(child.pid!);
    try {
      await p.ready();
    } catch (e) {
      await p.stop();
      throw e;
    }
    return p;
  }

  private async ready(): Promise<void> {
    const deadline = Date.now() + this.spec.startTimeoutMs;
    const exited = this.exited.then(() => 'exited' as const);
    while (!READY_LINE.test(this.output)) {
      const r = await Promise.race([exited, sleep(Math.max(0, Math.min(50, deadline - Date.now()))).then(() => 'tick' as const)]);
      if (r === 'exited') {
        const taken = /EADDRINUSE|address already in use|port .* in use/i.test(this.output);
        throw new StartFailed(`the agent server exited while starting${taken ? ' (port taken)' : ''}`, taken, this.tail());
      }
      if (Date.now() >= deadline) throw new StartFailed(`the agent server did not print its listening line within ${this.spec.startTimeoutMs} ms`, false, this.tail());
    }
    for (;;) {
      if (this.exitedAlready) throw new StartFailed('the agent server exited while starting');
      if (await this.healthy()) return;
      if (Date.now() >= deadline) throw new StartFailed(`the agent server's health check did not pass within ${this.spec.startTimeoutMs} ms`);
      await sleep(100);
    }
  }

  /** `GET /global/health` with basic auth, bounded by its own timeout. */
  healthy(): Promise<boolean> {
    const { host, port, username, password, healthTimeoutMs } = this.spec;
    return new Promise((resolve) => {
      const req = request(
        { host, port, path: '/global/health', agent: false, auth: `${username}:${password}`, timeout: healthTimeoutMs },
        (res) => {
          res.resume();
          resolve(res.statusCode === 200);
        },
      );
      req.on('timeout', () => req.destroy());
      req.on('error', () => resolve(false));
      req.end();
    });
  }

  /** SIGTERM to the group, SIGKILL after `graceMs`; resolves once the leader exited and the group is gone. */
  async stop(graceMs = 2_000): Promise<void> {
    this.stopping = true;
    const pgid = this.child.pid!;
    if (!this.exitedAlready) {
      killGroup(pgid, 'SIGTERM');
      const t = setTimeout(() => killGroup(pgid, 'SIGKILL'), graceMs);
      await this.exited;
      clearTimeout(t);
    }
    // Children that outlive their leader (a crashed server's MCP processes, the sandbox's init and
    // what runs in it) go with the group; its port is free once they are gone.
    killGroup(pgid, 'SIGKILL');
    const since = this.identity?.startTicks ?? 0;
    for (let i = 0; i < 150 && groupMembers(pgid, since).length > 0; i++) await sleep(20);
    await rm(this.spec.workDir, { recursive: true, force: true }).catch(() => undefined);
  }
}

export function fillArgs(template: string, host: string, port: number): string[] {
  return template
    .split(/\s+/)
    .filter(Boolean)
    .map((a) => a.replace('{host}', host).replace('{port}', String(port)));
}

export function workDirOf(root: string, sessionId: string): string {
  return join(root, sessionId);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

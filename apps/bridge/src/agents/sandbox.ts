import { execFile } from 'node:child_process';
import { existsSync, lstatSync, readFileSync, readlinkSync, realpathSync } from 'node:fs';
import { chmod, chown, mkdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, isAbsolute, join } from 'node:path';
import { promisify } from 'node:util';
import type { Logger } from '@tessera/kit';
import type { BridgeConfig } from '../config';

/** Where an agent server's files are, seen from inside its sandbox. */
export const SANDBOX_WORKSPACE = '/workspace';
export const SANDBOX_HOME = '/home/agent';
/** Where the agent server's own program (and files its command line names) are bound, read-only. */
export const SANDBOX_PROGRAMS = '/opt/agent';
const SANDBOX_PATH = '/usr/local/bin:/usr/bin:/bin';

/**
 * What of /etc an agent server sees: name resolution, certificates, time zone, the loader's
 * cache, shells' start files. Not the rest (package managers' and tools' configuration may hold
 * credentials; /etc/shadow, the PostgreSQL and Redis configuration never belong in it).
 */
const ETC = ['resolv.conf', 'hosts', 'host.conf', 'nsswitch.conf', 'gai.conf', 'ssl', 'ca-certificates', 'ca-certificates.conf', 'localtime', 'timezone', 'alternatives', 'ld.so.cache', 'ld.so.conf', 'ld.so.conf.d', 'bash.bashrc', 'profile', 'profile.d', 'inputrc', 'mime.types', 'os-release', 'debian_version', 'passwd', 'group', 'terminfo', 'magic', 'gitconfig'];
/** The top-level system directories: bound read-only, or recreated as the symlinks they are (merged /usr). */
const SYSTEM = ['/usr', '/bin', '/sbin', '/lib', '/lib32', '/lib64', '/libx32'];

/** How to start one agent server: the program, its arguments, its whole environment and its user. */
export interface Launch {
  command: string;
  args: string[];
  /** Where it starts (the sandbox itself then moves into the workspace). */
  cwd: string;
  env: Record<string, string>;
  uid?: number;
  gid?: number;
}

/** A session's directories on the host: the workspace the agent works in, and its home (config, data, caches). */
export interface AgentDirs {
  root: string;
  workspace: string;
  home: string;
}

export function agentDirs(root: string): AgentDirs {
  return { root, workspace: join(root, 'workspace'), home: join(root, 'home') };
}

/** Where sessions' directories are made: OPENCODE_WORK_ROOT, or the system's temp folder. */
export function workRootOf(config: Pick<BridgeConfig, 'OPENCODE_WORK_ROOT'>): string {
  return config.OPENCODE_WORK_ROOT ?? join(tmpdir(), 'tessera-bridge');
}

/**
 * A session's directories: the work root only passed through (0711: the sandbox's user reaches its
 * own directory and lists none), the session's own 0700.
 */
async function makeDirs(dirs: AgentDirs): Promise<void> {
  await mkdir(dirname(dirs.root), { recursive: true, mode: 0o711 });
  await chmod(dirname(dirs.root), 0o711).catch(() => undefined);
  await mkdir(dirs.workspace, { recursive: true, mode: 0o700 });
  await mkdir(dirs.home, { recursive: true, mode: 0o700 });
}

export interface Sandbox {
  readonly kind: 'bwrap' | 'off';
  /** One line for the start log: what confines agent servers. */
  describe(): string;
  /** Makes the session's directories, owned by the user the agent server runs as. */
  prepare(dirs: AgentDirs): Promise<void>;
  /** The agent server's command line as it is started: inside the sandbox, as its user, with only `env`. */
  wrap(command: string, args: string[], env: Record<string, string>, dirs: AgentDirs): Launch;
}

export class SandboxUnavailable extends Error {}

/**
 * The bridge's sandbox for agent servers (OpenCode runs shell commands by design). With bwrap:
 * - a user of its own (AGENT_SANDBOX_USER) when the bridge runs as root; otherwise the bridge's
 *   uid, inside a user namespace with no capabilities;
 * - its own PID namespace (no other process is visible: not the bridge's environment, not pid 1
 *   of the host), IPC and UTS namespaces, no further user namespaces;
 * - a filesystem of read-only system directories, a few files of /etc, the agent server's own
 *   program (under /opt/agent, not where the host keeps it), and read-write only its workspace
 *   and home; a fresh /tmp, /dev and /proc;
 * - no environment but what the bridge hands it (agentEnvironment plus the session's own).
 * The network is shared with the host: it reaches its model provider and the bridge's callback,
 * and whatever else listens (Redis and PostgreSQL require passwords it cannot read).
 */
export async function createSandbox(config: BridgeConfig, logger: Logger): Promise<Sandbox> {
  if (config.AGENT_SANDBOX === 'off') {
    logger.warn('AGENT_SANDBOX=off: agent servers run as the bridge runs, with its user and its view of the machine');
    return {
      kind: 'off',
      describe: () => 'none (AGENT_SANDBOX=off)',
      prepare: makeDirs,
      wrap: (command, args, env, dirs) => ({ command, args, cwd: dirs.workspace, env: { PATH: SANDBOX_PATH, ...env, HOME: dirs.home } }),
    };
  }
  const bwrap = resolveCommand(config.BWRAP_PATH);
  if (!bwrap) throw new SandboxUnavailable(`AGENT_SANDBOX=bwrap needs bubblewrap (${config.BWRAP_PATH} not found): install it (apt-get install bubblewrap) or set BWRAP_PATH`);
  const user = process.getuid?.() === 0 ? systemUser(config.AGENT_SANDBOX_USER) : null;
  if (process.getuid?.() === 0 && !user) throw new SandboxUnavailable(`the bridge runs as root and agent servers need a user of their own: create "${config.AGENT_SANDBOX_USER}" (useradd --system ${config.AGENT_SANDBOX_USER}) or set AGENT_SANDBOX_USER`);
  const sandbox = new Bubblewrap(bwrap, user);
  await sandbox.check(agentDirs(join(workRootOf(config), `.check-${process.pid}`)));
  if (!user) logger.warn(`agent servers run under the bridge's own uid (${process.getuid?.()}) in a bubblewrap sandbox: run the bridge as root to give them a user of their own (AGENT_SANDBOX_USER)`);
  return sandbox;
}

export class Bubblewrap implements Sandbox {
  readonly kind = 'bwrap' as const;

  constructor(
    private readonly bwrap: string,
    private readonly user: { name: string; uid: number; gid: number } | null,
  ) {}

  describe(): string {
    return `bubblewrap (${this.bwrap}) as ${this.user ? `${this.user.name} (uid ${this.user.uid})` : `the bridge's uid ${process.getuid?.()}`}`;
  }

  /**
   * A sandbox that cannot start, or cannot reach the work root (OPENCODE_WORK_ROOT inside a folder
   * its user may not enter), is found at the bridge's start, not at a user's first bootstrap.
   */
  async check(dirs: AgentDirs): Promise<void> {
    try {
      await this.prepare(dirs);
      const launch = this.wrap('/bin/true', [], {}, dirs);
      await promisify(execFile)(launch.command, launch.args, { env: launch.env, uid: launch.uid, gid: launch.gid, cwd: launch.cwd, timeout: 10_000 });
    } catch (e) {
      const why = ((e as { stderr?: string }).stderr || (e as Error).message).trim().slice(0, 300);
      throw new SandboxUnavailable(
        `bubblewrap cannot start an agent server's sandbox in ${dirname(dirs.root)} (${why}): user namespaces must be allowed (in a container: seccomp and AppArmor profiles that permit them), and ${this.user ? `user ${this.user.name}` : 'this user'} must be able to enter every folder above OPENCODE_WORK_ROOT; or set AGENT_SANDBOX=off on a machine nobody else uses`,
      );
    } finally {
      await rm(dirs.root, { recursive: true, force: true }).catch(() => undefined);
    }
  }

  async prepare(dirs: AgentDirs): Promise<void> {
    await makeDirs(dirs);
    if (!this.user) return;
    for (const d of [dirs.root, dirs.workspace, dirs.home]) await chown(d, this.user.uid, this.user.gid);
  }

  wrap(command: string, args: string[], env: Record<string, string>, dirs: AgentDirs): Launch {
    // Run as its real path: that is what gets bound (node_modules/.bin/opencode is a symlink).
    const found = resolveCommand(command);
    if (!found) throw new Error(`${command} not found`);
    const program = realpathSync(found);
    const a = ['--unshare-user', '--unshare-pid', '--unshare-ipc', '--unshare-uts', '--unshare-cgroup-try', '--disable-userns', '--hostname', 'agent'];
    for (const dir of SYSTEM) {
      if (!existsSync(dir)) continue;
      const st = lstatSync(dir);
      if (st.isSymbolicLink()) a.push('--symlink', readlinkSync(dir), dir);
      else a.push('--ro-bind', dir, dir);
    }
    a.push('--dir', '/etc');
    for (const f of ETC) if (existsSync(`/etc/${f}`)) a.push('--ro-bind', `/etc/${f}`, `/etc/${f}`);
    a.push('--proc', '/proc', '--dev', '/dev', '--tmpfs', '/tmp');
    // The program, and any file its command line names (a script, say), read-only under /opt/agent:
    // where they live on the host (a checkout holding .data/, say) is not for the agent to see.
    const inside = (p: string, i: number) => {
      if (SYSTEM.some((d) => p === d || p.startsWith(d + '/'))) return p;
      const at = `${SANDBOX_PROGRAMS}/${i}-${basename(p)}`;
      a.push('--ro-bind', p, at);
      return at;
    };
    const exe = inside(program, 0);
    const argv = args.map((x, i) => (isAbsolute(x) && existsSync(x) ? inside(realpathSync(x), i + 1) : x));
    a.push('--bind', dirs.workspace, SANDBOX_WORKSPACE, '--bind', dirs.home, SANDBOX_HOME, '--chdir', SANDBOX_WORKSPACE);
    a.push('--', exe, ...argv);
    // bwrap's own environment is the agent's: the sandbox's pid 1 (bwrap) holds nothing else.
    return { command: this.bwrap, args: a, cwd: dirs.root, env: { PATH: SANDBOX_PATH, ...env, HOME: SANDBOX_HOME, USER: this.user?.name ?? 'agent' }, uid: this.user?.uid, gid: this.user?.gid };
  }
}

/** A system user from /etc/passwd (os.userInfo only knows the current one). */
function systemUser(name: string): { name: string; uid: number; gid: number } | null {
  try {
    for (const line of readFileSync('/etc/passwd', 'utf8').split('\n')) {
      const f = line.split(':');
      if (f[0] === name && f.length >= 4) {
        const uid = Number(f[2]);
        // A "user of its own" is never root.
        return uid === 0 ? null : { name, uid, gid: Number(f[3]) };
      }
    }
  } catch {
    return null;
  }
  return null;
}

/** A program named by its path (OPENCODE_COMMAND, BWRAP_PATH); null when there is none. */
function resolveCommand(command: string): string | null {
  return command.includes('/') && existsSync(command) ? command : null;
}

import { randomBytes } from 'node:crypto';
import { mkdir, readdir, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { agents, type AgentChange } from '@tessera/contracts';
import { Conflict, NotFound, type Logger } from '@tessera/kit';
import { resolveMcpServers, unresolvedOf } from '../domain/mcp';
import { digestOf, readAgent, UnreadableAgent, writeAgent, type ReadCache, type StoredAgent } from './agent-files';
import type { Layout } from './layout';
import type { AgentLocks } from './locks';
import type { VersionStore } from './versions';

export type Announce = (change: AgentChange) => void;

interface Edit {
  next: StoredAgent;
  change: agents.VersionChange;
  restoredFrom?: number;
}

const notFound = (name: string) => new NotFound(`no agent named "${name}"`);
const now = () => new Date().toISOString();

/**
 * Agents on disk. Every change runs under the agent's lock: read what the files hold, record a
 * hand edit found there as a version of its own, write the new files, record the new version,
 * and, once the lock is released, announce it. Reads take no lock (agent-files.ts).
 */
export class AgentStore {
  /** One entry per agent folder (bounded by the agents there are). */
  private readonly cache: ReadCache = new Map();

  constructor(
    private readonly layout: Layout,
    private readonly locks: AgentLocks,
    private readonly versions: VersionStore,
    private readonly announce: Announce,
    private readonly logger: Logger,
  ) {}

  /** The app's folders (an app's are otherwise made by its first write: reads of an app with no agents make nothing). */
  async init(): Promise<void> {
    await Promise.all([this.layout.agents, this.layout.versions, this.layout.trash].map((d) => mkdir(d, { recursive: true })));
  }

  /** Folders of the agents folder that can be agents (others, e.g. `My Agent`, are not reachable by the API); none before the app's first agent. */
  async names(): Promise<string[]> {
    const entries = await readdir(this.layout.agents, { withFileTypes: true }).catch((e: NodeJS.ErrnoException) => {
      if (e.code === 'ENOENT') return [];
      throw e;
    });
    return entries
      .filter((e) => e.isDirectory() && agents.AgentName.safeParse(e.name).success)
      .map((e) => e.name)
      .sort();
  }

  /** `ownLock`: the caller holds the agent's lock, so no writer can be half-way. */
  read(name: string, ownLock = false): Promise<StoredAgent | null> {
    return readAgent(this.layout.agentDir(name), name, ownLock ? async () => false : () => this.locks.held(name), this.cache);
  }

  async get(name: string): Promise<agents.Agent> {
    const s = await this.read(name);
    if (!s) throw notFound(name);
    return s.agent;
  }

  /** Every readable agent by name; one broken by a hand edit is left out (and logged), not the whole list. */
  async list(): Promise<agents.Agent[]> {
    const names = await this.names();
    const out: (agents.Agent | null)[] = new Array(names.length).fill(null);
    let next = 0;
    const worker = async () => {
      while (next < names.length) {
        const i = next++;
        try {
          out[i] = (await this.read(names[i]))?.agent ?? null;
        } catch (e) {
          if (!(e instanceof UnreadableAgent)) throw e;
          this.logger.warn('agent left out of the list', { agent: names[i], error: e.message });
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(16, names.length) }, worker));
    return out.filter((a): a is agents.Agent => a !== null);
  }

  create(body: agents.CreateAgentBody): Promise<agents.Agent> {
    return this.change(body.name, async (current) => {
      if (current) throw new Conflict(`an agent named "${body.name}" already exists`);
      const { names, servers: mcp } = await resolveMcpServers(body.mcp_servers, {}, this.layout.projectDir);
      const t = now();
      const agent = {
        name: body.name,
        description: body.description,
        system_prompt: body.system_prompt,
        mcp_servers: names,
        unresolved_mcp_servers: unresolvedOf(names, mcp),
        skills: body.skills,
        status: 'active' as const,
        created_at: t,
        updated_at: t,
      };
      await mkdir(this.layout.agentDir(body.name), { recursive: true });
      return { next: { agent, mcp, json: {} }, change: 'created' };
    });
  }

  /**
   * Neither a folder nor a history by that name: a change of it is a 404 before any lock is taken
   * (so a write to a name the app does not have makes nothing, not even the app's lock folder).
   */
  private async unknown(name: string): Promise<boolean> {
    return !(await exists(this.layout.agentDir(name))) && !(await this.versions.exists(name));
  }

  async update(name: string, patch: agents.UpdateAgentBody): Promise<agents.Agent> {
    if (await this.unknown(name)) throw notFound(name);
    return this.change(name, async (current) => {
      if (!current) throw notFound(name);
      const { names, servers: mcp } = patch.mcp_servers ? await resolveMcpServers(patch.mcp_servers, current.mcp, this.layout.projectDir) : { names: current.agent.mcp_servers, servers: current.mcp };
      const { mcp_servers: _refs, ...fields } = patch;
      const next = { ...current, mcp, agent: { ...current.agent, ...fields, mcp_servers: names, unresolved_mcp_servers: unresolvedOf(names, mcp), updated_at: now() } };
      return digestOf(next) === digestOf(current) ? null : { next, change: 'updated' };
    });
  }

  async setStatus(name: string, status: agents.AgentStatus): Promise<agents.Agent> {
    if (await this.unknown(name)) throw notFound(name);
    return this.change(name, async (current) => {
      if (!current) throw notFound(name);
      if (current.agent.status === status) return null;
      return { next: { ...current, agent: { ...current.agent, status, updated_at: now() } }, change: 'status' };
    });
  }

  /** Content of version `version` again, as a new version; the status stays what it is (a deleted agent comes back as it was). */
  async restore(name: string, version: number): Promise<agents.Agent> {
    if (!(await this.versions.exists(name))) throw new NotFound(`agent "${name}" has no version ${version}`);
    return this.change(name, async (current) => {
      const v = await this.versions.get(name, version);
      if (!v) throw new NotFound(`agent "${name}" has no version ${version}`);
      if (!v.agent) throw new Conflict(`version ${version} of agent "${name}" is its deletion: there is nothing to restore`);
      const t = now();
      const mcp = v.mcp ?? {};
      const agent = {
        ...v.agent,
        name,
        // Versions from before names were kept unresolved lack the field: agent.mcp.json was all there was.
        unresolved_mcp_servers: unresolvedOf(v.agent.mcp_servers, mcp),
        status: current?.agent.status ?? v.agent.status,
        created_at: current?.agent.created_at ?? v.agent.created_at,
        updated_at: t,
      };
      const next = { agent, mcp, json: current?.json ?? {} };
      if (current && digestOf(next) === digestOf(current)) return null;
      if (!current) await mkdir(this.layout.agentDir(name), { recursive: true });
      return { next, change: 'restored', restoredFrom: version };
    });
  }

  /** `check` runs under the lock before anything is removed (the sessions-in-use check). */
  async delete(name: string, check: () => Promise<void>): Promise<void> {
    if (await this.unknown(name)) throw notFound(name);
    const changes = await this.locks.with(name, async () => {
      const dir = this.layout.agentDir(name);
      let current: StoredAgent | null = null;
      try {
        current = await this.read(name, true);
      } catch (e) {
        // A hand edit broke it: it can still be deleted (that may be why it is being deleted).
        if (!(e instanceof UnreadableAgent)) throw e;
      }
      if (!current && !(await exists(join(dir, 'agent.json')))) throw notFound(name);
      await check();
      const found = current ? await this.catchUp(name, current) : null;
      const version = await this.versions.append(name, { saved_at: now(), change: 'deleted', agent: null, mcp: null }, null);
      // One rename takes the whole folder out of every reader's sight; the removal follows at leisure.
      await mkdir(this.layout.trash, { recursive: true });
      const gone = join(this.layout.trash, `${name}-${randomBytes(4).toString('hex')}`);
      await rename(dir, gone);
      void rm(gone, { recursive: true, force: true }).catch((e: Error) => this.logger.warn('could not remove a deleted agent folder', { path: gone, error: e.message }));
      return [...(found ? [found] : []), this.changeOf('deleted', name, version, 'api', null)];
    });
    changes.forEach(this.announce);
  }

  /** Files changed by hand (the watcher saw them): recorded as a version and announced, once, whichever instance sees it first. */
  async reconcile(name: string): Promise<AgentChange | null> {
    const change = await this.locks.with(name, async () => {
      try {
        return await this.catchUp(name, await this.read(name, true));
      } catch (e) {
        if (!(e instanceof UnreadableAgent)) throw e;
        this.logger.warn('agent files edited into something unreadable', { agent: name, error: e.message });
        return null;
      }
    });
    if (change) this.announce(change);
    return change;
  }

  async history(name: string, limit: number, before?: number): Promise<agents.AgentVersion[]> {
    if (!(await this.versions.exists(name)) && !(await this.read(name))) throw notFound(name);
    return this.versions.list(name, limit, before);
  }

  async version(name: string, version: number): Promise<agents.AgentVersion> {
    const v = await this.versions.get(name, version);
    if (!v) throw new NotFound(`agent "${name}" has no version ${version}`);
    const { mcp: _mcp, ...reply } = v;
    return reply;
  }

  private async change(name: string, edit: (current: StoredAgent | null) => Promise<Edit | null>): Promise<agents.Agent> {
    const { agent, changes } = await this.locks.with(name, async () => {
      const current = await this.read(name, true);
      // Whatever the files hold now becomes a version before this change: a hand edit is never lost from history.
      const found = await this.catchUp(name, current);
      const changes = found ? [found] : [];
      const e = await edit(current);
      if (!e) return { agent: current!.agent, changes };
      await writeAgent(this.layout.agentDir(name), e.next, current);
      const version = await this.versions.append(
        name,
        { saved_at: e.next.agent.updated_at, change: e.change, ...(e.restoredFrom !== undefined && { restored_from: e.restoredFrom }), agent: e.next.agent, mcp: e.next.mcp },
        digestOf(e.next),
      );
      changes.push(this.changeOf(current ? 'updated' : 'created', name, version, 'api', e.next.agent.status));
      return { agent: e.next.agent, changes };
    });
    changes.forEach(this.announce);
    return agent;
  }

  /** Records what the files hold when the history's newest version says otherwise (the caller holds the lock). */
  private async catchUp(name: string, current: StoredAgent | null): Promise<AgentChange | null> {
    const head = await this.versions.head(name);
    const digest = current ? digestOf(current) : null;
    if (digest === (head?.digest ?? null)) return null;
    if (!current) {
      const version = await this.versions.append(name, { saved_at: now(), change: 'deleted', agent: null, mcp: null }, null);
      return this.changeOf('deleted', name, version, 'files', null);
    }
    const version = await this.versions.append(name, { saved_at: now(), change: 'edited_by_hand', agent: current.agent, mcp: current.mcp }, digest);
    return this.changeOf(head?.digest ? 'updated' : 'created', name, version, 'files', current.agent.status);
  }

  private changeOf(kind: AgentChange['kind'], name: string, version: number, source: AgentChange['source'], status: agents.AgentStatus | null): AgentChange {
    return { kind, name, version, source, status, at: now() };
  }
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

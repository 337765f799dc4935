import { mkdir, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { agents } from '@tessera/contracts';
import { unresolvedOf } from '../domain/mcp';
import { pretty, writeAtomic } from './agent-files';
import type { Layout } from './layout';

/** A version as kept on disk: the reply's shape plus the MCP definitions, needed to restore it. */
export interface VersionFile extends agents.AgentVersion {
  mcp: Record<string, unknown> | null;
}

/** The newest version and what its content digests to (files that digest otherwise were edited by hand). */
export interface Head {
  version: number;
  digest: string | null;
}

const FILE = /^(\d{8,})\.json$/;
const fileOf = (version: number) => `${String(version).padStart(8, '0')}.json`;

/**
 * Every state an agent has been in, numbered from 1, kept after a delete (a past session's prompt
 * stays readable). Written by the holder of the agent's lock only, so numbers never collide.
 */
export class VersionStore {
  constructor(private readonly layout: Layout) {}

  async head(name: string): Promise<Head | null> {
    try {
      return JSON.parse(await readFile(join(this.layout.versionsDir(name), 'head.json'), 'utf8')) as Head;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
      // A lost head (hand-deleted, torn): the files say which is the newest.
      const newest = (await this.numbers(name))[0];
      return newest === undefined ? null : { version: newest, digest: null };
    }
  }

  /** Appends the next version (the caller holds the agent's lock). */
  async append(name: string, v: Omit<VersionFile, 'version'>, digest: string | null): Promise<number> {
    const dir = this.layout.versionsDir(name);
    await mkdir(dir, { recursive: true });
    const version = ((await this.head(name))?.version ?? 0) + 1;
    await writeAtomic(join(dir, fileOf(version)), pretty({ version, ...v }));
    await writeAtomic(join(dir, 'head.json'), pretty({ version, digest } satisfies Head));
    return version;
  }

  async get(name: string, version: number): Promise<VersionFile | null> {
    try {
      const v = JSON.parse(await readFile(join(this.layout.versionsDir(name), fileOf(version)), 'utf8')) as VersionFile;
      // Versions written before names were kept unresolved lack the field: every name had its definition then.
      if (v.agent && !Array.isArray(v.agent.unresolved_mcp_servers)) v.agent.unresolved_mcp_servers = unresolvedOf(v.agent.mcp_servers, v.mcp ?? {});
      return v;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw e;
    }
  }

  /** Newest first: up to `limit` versions older than `before`. */
  async list(name: string, limit: number, before?: number): Promise<agents.AgentVersion[]> {
    const numbers = (await this.numbers(name)).filter((n) => before === undefined || n < before).slice(0, limit);
    const found = await Promise.all(numbers.map((n) => this.get(name, n)));
    return found.filter((v): v is VersionFile => v !== null).map(({ mcp: _mcp, ...reply }) => reply);
  }

  async exists(name: string): Promise<boolean> {
    return (await this.head(name)) !== null;
  }

  private async numbers(name: string): Promise<number[]> {
    const names = await readdir(this.layout.versionsDir(name)).catch((e: NodeJS.ErrnoException) => {
      if (e.code === 'ENOENT') return [] as string[];
      throw e;
    });
    return names
      .map((f) => FILE.exec(f)?.[1])
      .filter((n): n is string => n !== undefined)
      .map(Number)
      .sort((a, b) => b - a);
  }
}

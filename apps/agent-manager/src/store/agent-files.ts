/**
 * One agent's files: a reader never sees half an agent, a writer never leaves half a file.
 *
 * Writes replace each file by a temporary file renamed over it, under the agent's lock (locks.ts),
 * agent.json last. Reads take no lock: they note every file's identity (inode, size, times),
 * read, then look again, and keep what they read only when the lock was free and nothing moved in
 * between; otherwise they read again. A write running at the second look holds the lock; one that
 * finished meanwhile renamed a file; so what is kept is one writer's agent, never two halves.
 * A hand edit (no lock) is one file at a time: it is read whole or read again.
 */
import { createHash, randomBytes } from 'node:crypto';
import { open, readFile, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { agents } from '@tessera/contracts';
import { HttpError, Unavailable } from '@tessera/kit';
import { namesAreKeys, unresolvedOf } from '../domain/mcp';

export const FILES = { json: 'agent.json', prompt: 'agent.system-prompt.md', mcp: 'agent.mcp.json', status: 'agent.status.json' } as const;
const ORDER = [FILES.json, FILES.prompt, FILES.mcp, FILES.status];

/** An agent as stored: the API's view, plus what the files hold beyond it (kept on every rewrite). */
export interface StoredAgent {
  agent: agents.Agent;
  /** `agent.mcp.json`'s `mcpServers`, entries as written (fields of other tools included). */
  mcp: Record<string, unknown>;
  /**
   * `agent.json` as written: fields of the command-line tools survive our rewrites. Its
   * `mcp_servers`, when there, lists every name of the agent's, those agent.mcp.json defines and
   * those nothing defines (written only when the names say more than agent.mcp.json's keys).
   */
  json: Record<string, unknown>;
}

/** A file edited into something that is not an agent: named, so that whoever edited it can fix it. */
export class UnreadableAgent extends HttpError {
  constructor(name: string, file: string, why: string) {
    super(409, 'AGENT_UNREADABLE', `agent "${name}" cannot be read: ${file}: ${why}; fix or rewrite the file`, { file });
  }
}

/**
 * How long a read waits for writers (the lock held, or files moving under it) before answering 503:
 * writes are short, but a busy machine with writers queued back to back can keep one waiting.
 */
const BUSY_READ_MS = 5_000;
/**
 * A file that does not parse may be a hand edit caught mid-write (an editor that saves in place
 * truncates, then writes; on a busy machine the two can be far apart): while some file changed
 * less than this long ago, read again before calling the agent broken. An old broken file fails at once.
 */
const EDIT_SETTLE_MS = 1_000;

/** What a settled read found, by folder, with the fingerprint it was found under. */
export type ReadCache = Map<string, { key: string; agent: StoredAgent | null }>;

/**
 * The agent in `dir`, or null when there is no agent.json. With `cache`: files whose every
 * identity is the one a settled read saw hold what it read (any write, renamed or in place, moves
 * an inode or a time), so a first look that matches needs no read, no lock look, no second look.
 */
export async function readAgent(dir: string, name: string, locked: () => Promise<boolean>, cache?: ReadCache): Promise<StoredAgent | null> {
  const started = Date.now();
  let busySince: number | null = null;
  for (let attempt = 1; ; attempt++) {
    const before = await fingerprint(dir);
    const hit = cache?.get(dir);
    if (hit && hit.key === before.key) return hit.agent;
    const texts = await Promise.all(ORDER.map((f) => readFile(join(dir, f), 'utf8').catch(absent)));
    const settled = !(await locked()) && (await fingerprint(dir)).key === before.key;
    if (settled) {
      try {
        const agent = texts[0] === null ? null : parseAgent(name, texts as [string, string | null, string | null, string | null], before.jsonMtime);
        cache?.set(dir, { key: before.key, agent });
        return agent;
      } catch (e) {
        const now = Date.now();
        if (!(e instanceof UnreadableAgent) || now - before.newestChange > EDIT_SETTLE_MS || now - started > 2 * EDIT_SETTLE_MS) throw e;
      }
    } else if (Date.now() - (busySince ??= Date.now()) > BUSY_READ_MS) {
      throw new Unavailable(`agent "${name}" is being written without pause; try again`);
    }
    await new Promise((r) => setTimeout(r, Math.min(2 * attempt, 25)));
  }
}

async function fingerprint(dir: string): Promise<{ key: string; jsonMtime: number; newestChange: number }> {
  const stats = await Promise.all(ORDER.map((f) => stat(join(dir, f)).catch(absent)));
  const key = stats.map((s) => (s ? `${s.ino}:${s.size}:${s.mtimeMs}:${s.ctimeMs}` : '-')).join('|');
  const newestChange = Math.max(0, ...stats.map((s) => s?.ctimeMs ?? 0));
  return { key, jsonMtime: stats[0]?.mtimeMs ?? Date.now(), newestChange };
}

function absent(e: NodeJS.ErrnoException): null {
  if (e.code === 'ENOENT' || e.code === 'ENOTDIR') return null;
  throw e;
}

/** Files the command-line tools wrote may lack what we add (skills, timestamps, status): defaults fill them. */
export function parseAgent(name: string, [jsonText, prompt, mcpText, statusText]: [string, string | null, string | null, string | null], mtimeMs: number): StoredAgent {
  const json = parseObject(name, FILES.json, jsonText);
  const fallbackTime = new Date(mtimeMs).toISOString();
  const description = json.description ?? '';
  if (typeof description !== 'string') throw new UnreadableAgent(name, FILES.json, '"description" must be a string');
  const skills = json.skills ?? [];
  if (!Array.isArray(skills) || !skills.every((s) => typeof s === 'string')) throw new UnreadableAgent(name, FILES.json, '"skills" must be an array of strings');
  let mcp: Record<string, unknown> = {};
  if (mcpText !== null) {
    const servers = parseObject(name, FILES.mcp, mcpText).mcpServers ?? {};
    if (!isObject(servers)) throw new UnreadableAgent(name, FILES.mcp, '"mcpServers" must be an object');
    mcp = servers;
  }
  let names = Object.keys(mcp);
  if (json.mcp_servers !== undefined) {
    const listed = json.mcp_servers;
    if (!Array.isArray(listed) || !listed.every((s) => typeof s === 'string')) throw new UnreadableAgent(name, FILES.json, '"mcp_servers" must be an array of strings');
    // A server added to agent.mcp.json by hand joins the list.
    names = [...new Set([...listed, ...names])];
  }
  let status: agents.AgentStatus = 'active';
  if (statusText !== null) {
    const s = parseObject(name, FILES.status, statusText).status;
    const parsed = agents.AgentStatus.safeParse(s);
    if (!parsed.success) throw new UnreadableAgent(name, FILES.status, '"status" must be "active" or "inactive"');
    status = parsed.data;
  }
  const time = (v: unknown) => (typeof v === 'string' && !Number.isNaN(Date.parse(v)) ? v : fallbackTime);
  return {
    agent: {
      name,
      description,
      system_prompt: prompt ?? '',
      mcp_servers: names,
      unresolved_mcp_servers: unresolvedOf(names, mcp),
      skills: skills as string[],
      status,
      created_at: time(json.created_at),
      updated_at: time(json.updated_at),
    },
    mcp,
    json,
  };
}

function parseObject(name: string, file: string, text: string): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new UnreadableAgent(name, file, `invalid JSON (${(e as Error).message.slice(0, 120)})`);
  }
  if (!isObject(v)) throw new UnreadableAgent(name, file, 'must hold a JSON object');
  return v;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/**
 * Writes `next` over `prev` (the caller holds the agent's lock): only the files whose content
 * changes, agent.json last, each through a temporary file renamed over it.
 */
export async function writeAgent(dir: string, next: StoredAgent, prev: StoredAgent | null): Promise<void> {
  const a = next.agent;
  if (!prev || prev.agent.system_prompt !== a.system_prompt) await writeAtomic(join(dir, FILES.prompt), a.system_prompt);
  if (!prev || stableJson(prev.mcp) !== stableJson(next.mcp)) {
    if (Object.keys(next.mcp).length > 0) await writeAtomic(join(dir, FILES.mcp), pretty({ mcpServers: next.mcp }));
    else await rm(join(dir, FILES.mcp), { force: true });
  }
  if (!prev || prev.agent.status !== a.status) await writeAtomic(join(dir, FILES.status), pretty({ status: a.status, updated_at: a.updated_at }));
  const { mcp_servers: _listed, ...kept } = next.json;
  const names = namesAreKeys(a.mcp_servers, next.mcp) ? {} : { mcp_servers: a.mcp_servers };
  const json = { ...kept, name: a.name, description: a.description, ...names, skills: a.skills, created_at: a.created_at, updated_at: a.updated_at };
  await writeAtomic(join(dir, FILES.json), pretty(json));
  await syncDir(dir);
}

/** Temporary names start with a dot: the watcher and the command-line tools skip them. */
export async function writeAtomic(path: string, text: string): Promise<void> {
  const tmp = join(dirname(path), `.${basename(path)}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
  const fh = await open(tmp, 'wx', 0o644);
  try {
    await fh.writeFile(text);
    // On disk before the rename: after a power loss the name points at the whole file, never an empty one.
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(tmp, path).catch(async (e) => {
    await rm(tmp, { force: true });
    throw e;
  });
}

/** The renames themselves on disk. */
export async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  await fh.sync().catch(() => undefined);
  await fh.close();
}

export function pretty(v: unknown): string {
  return JSON.stringify(v, null, 2) + '\n';
}

/** JSON with object keys sorted, so that equal values compare equal whatever order a hand edit wrote. */
export function stableJson(v: unknown): string {
  return JSON.stringify(v, (_k, x) => (isObject(x) ? Object.fromEntries(Object.entries(x).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) : x));
}

/**
 * What an agent is, for telling whether files changed: its content, not its timestamps. The names
 * count only when they say more than agent.mcp.json (so agents with every server defined keep the
 * digest their history recorded).
 */
export function digestOf(s: StoredAgent): string {
  const a = s.agent;
  const names = namesAreKeys(a.mcp_servers, s.mcp) ? [] : [a.mcp_servers];
  return createHash('sha256').update(stableJson([a.description, a.system_prompt, a.skills, a.status, s.mcp, ...names])).digest('hex');
}

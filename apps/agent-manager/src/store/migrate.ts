import { mkdir, readdir, rename, rmdir, stat } from 'node:fs/promises';
import lockfile from 'proper-lockfile';
import { agents } from '@tessera/contracts';
import type { Logger } from '@tessera/kit';
import type { ProjectLayout } from './layout';
import { AgentLocks } from './locks';

export interface Migrated {
  moved: string[];
  /** Names in both layouts: the old folder is left where it is, for a person to merge. */
  conflicts: string[];
}

/**
 * Before apps, every agent was the platform's: `.agent-orchestrator/agents/{name}/` and its
 * history `.agent-orchestrator/agent-versions/{name}/`. They become `app`'s (DEFAULT_APP_ID):
 * moved, folder by folder, to `.agent-orchestrator/apps/{app}/…`, before the watcher's first look.
 *
 * Idempotent and safe with several instances starting at once: one instance at a time moves
 * (a lock on the project, `migrate.lock`, waited for by the others, who then find nothing left),
 * each agent under its old lock (a writer of before finishes first), with renames (atomic), the
 * agent's folder before its history: a start interrupted between the two moves the history on the
 * next start, and no look at the agent happens before its history is back beside it.
 */
export async function migrateToApps(project: ProjectLayout, app: string, staleMs: number, logger: Logger): Promise<Migrated> {
  const legacy = project.legacy;
  const target = project.app(app);
  const out: Migrated = { moved: [], conflicts: [] };
  const listed = async (dir: string) => (await readdir(dir).catch(() => [] as string[])).filter((n) => agents.AgentName.safeParse(n).success);
  // Nothing of before: no lock to take (the usual start).
  if ((await listed(legacy.agents)).length === 0 && (await listed(legacy.versions)).length === 0) return out;

  await mkdir(project.root, { recursive: true });
  const release = await lockfile.lock(project.root, {
    realpath: false,
    lockfilePath: project.migrationLock,
    stale: staleMs,
    update: Math.floor(staleMs / 4),
    // Another instance moving many agents: wait for it (about a minute) rather than start beside it.
    retries: { retries: 600, factor: 1, minTimeout: 100, maxTimeout: 100 },
    onCompromised: (e) => logger.warn('migration lock compromised', { error: e.message }),
  });
  try {
    const names = [...new Set([...(await listed(legacy.agents)), ...(await listed(legacy.versions))])].sort();
    if (names.length === 0) return out;
    await Promise.all([target.agents, target.versions].map((d) => mkdir(d, { recursive: true })));
    const locks = new AgentLocks(legacy, staleMs, logger);
    for (const name of names) {
      await locks.with(name, async () => {
        const agentHere = await exists(legacy.agentDir(name));
        const historyHere = await exists(legacy.versionsDir(name));
        const agentThere = await exists(target.agentDir(name));
        const historyThere = await exists(target.versionsDir(name));
        // The app has its own agent or history of that name: two of them, nothing moved.
        if ((agentHere && agentThere) || (historyHere && historyThere)) return void out.conflicts.push(name);
        if (agentHere) await rename(legacy.agentDir(name), target.agentDir(name));
        if (historyHere) await rename(legacy.versionsDir(name), target.versionsDir(name));
        out.moved.push(name);
      });
    }
    // Empty old folders go; ones still holding something (a conflict, a folder that is no agent) stay.
    for (const dir of [legacy.agents, legacy.versions]) await rmdir(dir).catch(() => undefined);
  } finally {
    await release().catch((e: Error) => logger.warn('migration lock release failed', { error: e.message }));
  }
  if (out.moved.length) logger.info('agents of before apps moved into the default app', { app_id: app, agents: out.moved });
  if (out.conflicts.length)
    logger.warn('agents in both the old layout and the default app were left in .agent-orchestrator/agents/: merge them by hand', { app_id: app, agents: out.conflicts });
  return out;
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

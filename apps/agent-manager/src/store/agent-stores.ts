import { readdir } from 'node:fs/promises';
import { agents, type AgentChange } from '@tessera/contracts';
import type { Logger } from '@tessera/kit';
import { AgentStore } from './agent-store';
import type { ProjectLayout } from './layout';
import { AgentLocks } from './locks';
import { VersionStore } from './versions';

/**
 * Every app's agents: one AgentStore per app, on its own folder (layout.ts), with its own locks,
 * history and read cache. Nothing of one app is reachable through another's store: a name is
 * looked up only in the app the request acts in.
 */
export class AgentStores {
  private readonly stores = new Map<string, AgentStore>();

  constructor(
    private readonly project: ProjectLayout,
    private readonly lockStaleMs: number,
    private readonly announce: (change: agents.AgentChangeAnnouncement) => void,
    private readonly logger: Logger,
  ) {}

  /** The app's store (the app id is validated by the caller; layout.ts refuses anything else). */
  of(app: string): AgentStore {
    let store = this.stores.get(app);
    if (!store) {
      const layout = this.project.app(app);
      store = new AgentStore(layout, new AgentLocks(layout, this.lockStaleMs, this.logger), new VersionStore(layout), (c: AgentChange) => this.announce({ ...c, app_id: app }), this.logger.child({ app_id: app }));
      this.stores.set(app, store);
    }
    return store;
  }

  /** Apps with a folder: those that have, or had, agents. */
  async apps(): Promise<string[]> {
    const entries = await readdir(this.project.apps, { withFileTypes: true }).catch((e: NodeJS.ErrnoException) => {
      if (e.code === 'ENOENT') return [];
      throw e;
    });
    return entries
      .filter((e) => e.isDirectory() && agents.AgentAppId.safeParse(e.name).success)
      .map((e) => e.name)
      .sort();
  }
}

import { mkdir, readdir } from 'node:fs/promises';
import { relative, sep } from 'node:path';
import { watch, type FSWatcher } from 'chokidar';
import { agents } from '@tessera/contracts';
import type { Logger } from '@tessera/kit';
import type { AgentStores } from '../store/agent-stores';
import type { ProjectLayout } from '../store/layout';

/** File events of one agent come in bursts (an editor's save, a tool writing four files): one look after the burst. */
const SETTLE_MS = 60;

/**
 * Picks up the files of every app (`.agent-orchestrator/apps/{app}/agents/{name}/`) edited by hand or by the command-line tools while the service runs: a file
 * event schedules a look at its agent (AgentStore.reconcile records and announces a change, once
 * across instances); a periodic pass catches what events missed (overflowing queues, network
 * file systems), and a first pass at start catches what changed while no instance ran.
 */
export class AgentWatcher {
  private watcher: FSWatcher | null = null;
  /** By `{app}/{name}`. */
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private readonly running = new Set<Promise<unknown>>();
  private sweep: NodeJS.Timeout | null = null;
  private closed = false;

  constructor(
    private readonly project: ProjectLayout,
    private readonly stores: AgentStores,
    private readonly logger: Logger,
    private readonly opts: { pollMs: number; reconcileIntervalMs: number },
  ) {}

  async start(): Promise<void> {
    await this.reconcileAll();
    await mkdir(this.project.apps, { recursive: true });
    const w = watch(this.project.apps, {
      ignoreInitial: true,
      // {app}/agents/{name}/{file}
      depth: 3,
      // Temporary files of atomic writes (ours and editors') start with a dot; an app's history, locks and trash are ours.
      ignored: (path) => {
        const parts = relative(this.project.apps, path).split(sep);
        return parts.at(-1)!.startsWith('.') || (parts.length >= 2 && parts[1] !== 'agents');
      },
      usePolling: this.opts.pollMs > 0,
      interval: this.opts.pollMs || undefined,
    });
    w.on('all', (_event, path) => this.schedule(path));
    w.on('error', (e) => this.logger.warn('file watcher error', { error: (e as Error).message }));
    await new Promise<void>((resolve) => w.once('ready', () => resolve()));
    this.watcher = w;
    if (this.opts.reconcileIntervalMs > 0) {
      this.sweep = setInterval(() => void this.track(this.reconcileAll()), this.opts.reconcileIntervalMs);
      this.sweep.unref();
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.sweep) clearInterval(this.sweep);
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
    await this.watcher?.close();
    await Promise.allSettled([...this.running]);
  }

  /** Every app's agents on disk and agents whose history says they exist: a folder removed by hand is a deletion. */
  async reconcileAll(): Promise<void> {
    for (const app of await this.stores.apps()) {
      const store = this.stores.of(app);
      const known = await readdir(this.project.app(app).versions).catch(() => [] as string[]);
      const names = new Set([...(await store.names()), ...known.filter((n) => agents.AgentName.safeParse(n).success)]);
      for (const name of names) {
        if (this.closed) return;
        await store.reconcile(name).catch((e: Error) => this.logger.warn('could not look at an agent', { app_id: app, agent: name, error: e.message }));
      }
    }
  }

  private schedule(path: string): void {
    const [app, folder, name] = relative(this.project.apps, path).split(sep);
    if (folder !== 'agents' || !name || this.closed || !agents.AgentAppId.safeParse(app).success || !agents.AgentName.safeParse(name).success) return;
    const key = `${app}/${name}`;
    clearTimeout(this.timers.get(key));
    this.timers.set(
      key,
      setTimeout(() => {
        this.timers.delete(key);
        void this.track(this.stores.of(app).reconcile(name).catch((e: Error) => this.logger.warn('could not look at an edited agent', { app_id: app, agent: name, error: e.message })));
      }, SETTLE_MS),
    );
  }

  private track(p: Promise<unknown>): Promise<unknown> {
    this.running.add(p);
    void p.finally(() => this.running.delete(p));
    return p;
  }
}

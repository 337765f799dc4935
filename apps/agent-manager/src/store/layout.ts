import { join } from 'node:path';
import { agents } from '@tessera/contracts';

/**
 * Where one app's agents live. Within an app's directory, the layout is document 001 §2.4's
 * `.agent-orchestrator/` one (the command-line tools' agents folder); history and locks sit beside
 * it, so that a tool listing the agents folder sees agents only.
 *
 *   {root}/agents/{name}/agent.json, agent.system-prompt.md, agent.mcp.json, agent.status.json
 *   {root}/agent-versions/{name}/{n}.json, head.json
 *   {root}/locks/{name}.lock
 *   {root}/trash/            deleted agents on their way out (renamed here, then removed)
 *
 * `root` is `{project}/.agent-orchestrator/apps/{app}` (ProjectLayout.app); the folders that
 * predate apps, `{project}/.agent-orchestrator/` itself, are only read to move them (migrate.ts).
 */
export class Layout {
  readonly agents: string;
  readonly versions: string;
  readonly locks: string;
  readonly trash: string;

  constructor(
    readonly projectDir: string,
    readonly root: string,
  ) {
    this.agents = join(root, 'agents');
    this.versions = join(root, 'agent-versions');
    this.locks = join(root, 'locks');
    this.trash = join(root, 'trash');
  }

  agentDir(name: string): string {
    return join(this.agents, checked(name));
  }

  versionsDir(name: string): string {
    return join(this.versions, checked(name));
  }

  lockFile(name: string): string {
    return join(this.locks, `${checked(name)}.lock`);
  }
}

/**
 * The project directory: one folder per app under `.agent-orchestrator/apps/`, each holding the
 * document's layout. A name is an app's own: the same name in two apps is two agents.
 *
 *   {project}/.agent-orchestrator/apps/{app}/agents/{name}/…
 *   {project}/.agent-orchestrator/agents/{name}/…     before apps: moved into DEFAULT_APP_ID at start
 *   {project}/.agent-orchestrator/migrate.lock        held while an instance moves them
 */
export class ProjectLayout {
  readonly root: string;
  readonly apps: string;
  /** The single-app layout of before: `.agent-orchestrator/agents/` and its history. */
  readonly legacy: Layout;
  readonly migrationLock: string;

  constructor(readonly projectDir: string) {
    this.root = join(projectDir, '.agent-orchestrator');
    this.apps = join(this.root, 'apps');
    this.legacy = new Layout(projectDir, this.root);
    this.migrationLock = join(this.root, 'migrate.lock');
  }

  app(appId: string): Layout {
    return new Layout(this.projectDir, join(this.apps, checkedApp(appId)));
  }
}

/** Routes validate names first; this is the last line: no path is ever built from anything else. */
function checked(name: string): string {
  if (!agents.AgentName.safeParse(name).success) throw new Error(`refusing a path for the agent name ${JSON.stringify(name)}`);
  return name;
}

function checkedApp(app: string): string {
  if (!agents.AgentAppId.safeParse(app).success) throw new Error(`refusing a path for the app id ${JSON.stringify(app)}`);
  return app;
}

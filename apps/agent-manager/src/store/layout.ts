import { join } from 'node:path';
import { agents } from '@tessera/contracts';

/**
 * Where everything lives under the project directory. The agents folder is the command-line
 * tools' layout (document 001 §2.4); history and locks sit beside it, so that a tool listing the
 * agents folder sees agents only.
 *
 *   .agent-orchestrator/agents/{name}/agent.json, agent.system-prompt.md, agent.mcp.json, agent.status.json
 *   .agent-orchestrator/agent-versions/{name}/{n}.json, head.json
 *   .agent-orchestrator/locks/{name}.lock
 *   .agent-orchestrator/trash/            deleted agents on their way out (renamed here, then removed)
 */
export class Layout {
  readonly root: string;
  readonly agents: string;
  readonly versions: string;
  readonly locks: string;
  readonly trash: string;

  constructor(readonly projectDir: string) {
    this.root = join(projectDir, '.agent-orchestrator');
    this.agents = join(this.root, 'agents');
    this.versions = join(this.root, 'agent-versions');
    this.locks = join(this.root, 'locks');
    this.trash = join(this.root, 'trash');
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

/** Routes validate names first; this is the last line: no path is ever built from anything else. */
function checked(name: string): string {
  if (!agents.AgentName.safeParse(name).success) throw new Error(`refusing a path for the agent name ${JSON.stringify(name)}`);
  return name;
}

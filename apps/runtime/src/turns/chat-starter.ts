import type { Prisma } from '../../prisma/generated/client';
import { mergeContext } from '../domain/context';
import { emptyState, type LoadedWorkflow } from '../engine/types';
import type { ChatRow, ChatStore } from '../store/chats';
import type { agents } from '@tessera/contracts';
import { Conflict, NotFound, Unavailable } from '@tessera/kit';
import { agentOfWorkflow } from '../blueprints/agent-workflows';
import { BlueprintRefusal } from '../engine/run-turn';

/** The app's agent of that name as the agent manager has it now; null when the app has none. */
export type AgentLookup = (app: string, name: string) => Promise<agents.Agent | null>;

export interface StartRequest {
  appId: string;
  userId: string;
  workflowName: string;
  /** Trusted backend context (service-authenticated callers only): kept as is. */
  backendContext: Record<string, unknown> | null | undefined;
  /** Client context: stored under `ui_` keys. */
  uiContext: Record<string, unknown> | null | undefined;
  clientRequestId?: string;
  forceNew?: boolean;
  /** A chat started from another chat's socket keeps that chat's backend context. */
  inheritContextFrom?: ChatRow;
  mode?: 'workflow' | 'general';
}

/** Starting a chat: workflow lookup, context variables (defaults, backend, ui_), idempotency. */
export class ChatStarter {
  constructor(
    private readonly chats: ChatStore,
    private readonly workflows: Map<string, LoadedWorkflow>,
    /** The agent manager (null: AGENTS_URL=off, and no agent can be chatted with). */
    private readonly agents: AgentLookup | null = null,
  ) {}

  async start(r: StartRequest): Promise<{ chat: ChatRow; reused: boolean }> {
    const wf = this.workflows.get(r.workflowName);
    if (!wf) throw new NotFound(`no workflow named "${r.workflowName}"`, { available: [...this.workflows.keys()] });
    const agent = agentOfWorkflow(wf.name);
    if (agent !== undefined) await this.assertChattable(r.appId, agent);
    const defaults = Object.fromEntries(
      Object.entries(wf.context_variables)
        .filter(([, v]) => v.default !== undefined)
        .map(([k, v]) => [k, v.default]),
    );
    const inherited = r.inheritContextFrom ? ((r.inheritContextFrom.context ?? {}) as Record<string, unknown>) : {};
    const context = mergeContext({ ...defaults, ...r.backendContext }, r.uiContext, inherited);
    const result = await this.chats.start({
      appId: r.appId,
      userId: r.userId,
      workflowName: wf.name,
      clientRequestId: r.clientRequestId,
      forceNew: r.forceNew,
      context,
      state: emptyState(wf.starting_agent) as unknown as Record<string, unknown>,
    });
    if (!result.reused && r.mode === 'general') result.chat = await this.chats.update(result.chat.id, { mode: 'general' } satisfies Prisma.ChatUpdateInput);
    return result;
  }

  /** A chat with an agent: the app's own agent (another app's is as missing as none), and active. */
  private async assertChattable(app: string, name: string): Promise<void> {
    const missing = () => new NotFound(`no agent named "${name}" in app "${app}"`);
    if (!this.agents) throw missing();
    let agent: agents.Agent | null;
    try {
      agent = await this.agents(app, name);
    } catch (e) {
      if (e instanceof BlueprintRefusal) throw new Unavailable(e.message);
      throw e;
    }
    if (!agent) throw missing();
    if (agent.status !== 'active')
      throw new Conflict(`agent "${name}" is inactive: an operator activates it (PATCH /api/agents/${name}/status) before a chat with it can start`, { agent: name, status: agent.status });
  }
}

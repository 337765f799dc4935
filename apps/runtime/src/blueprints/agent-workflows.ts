/**
 * A chat with an agent of the agent manager: the workflow `agent.<name>`, one agent running on the
 * chat's app's blueprint `<name>`. It is made, not loaded: which agents exist is each app's, and
 * changes while the runtime runs, so the name alone says what the workflow is, and the chat's start
 * asks the agent manager whether the app has that agent, active (ChatStarter).
 */
import { AGENT_WORKFLOW_PREFIX, agents, type ModelRef } from '@tessera/contracts';
import type { RuntimeConfig } from '../config';
import type { LoadedWorkflow } from '../engine/types';

/** The agent a workflow name is a chat with, or undefined for a workflow file's name. */
export function agentOfWorkflow(workflowName: string): string | undefined {
  if (!workflowName.startsWith(AGENT_WORKFLOW_PREFIX)) return undefined;
  const name = workflowName.slice(AGENT_WORKFLOW_PREFIX.length);
  return agents.AgentName.safeParse(name).success ? name : undefined;
}

export const agentWorkflowName = (agent: string): string => AGENT_WORKFLOW_PREFIX + agent;

/** The model an agent chat runs on: the configured model server, else a script that says so (no blueprint names a model). */
export function agentChatModel(config: Pick<RuntimeConfig, 'OPENAI_BASE_URL' | 'ANTHROPIC_API_KEY'>): (agent: string) => ModelRef {
  if (config.OPENAI_BASE_URL) return () => ({ provider: 'openai-compatible' });
  if (config.ANTHROPIC_API_KEY) return () => ({ provider: 'anthropic' });
  return (agent) => ({
    provider: 'scripted',
    script: [
      {
        text:
          `This is the agent "${agent}" of the agent manager, on its system prompt: "{{system_prompt}}". ` +
          'With no model server configured (OPENAI_BASE_URL or ANTHROPIC_API_KEY) it answers from a script. ' +
          'You said: "{{last_user_message}}". Your plan: {{context.user_tier|standard}}.',
      },
    ],
  });
}

export function agentWorkflow(agent: string, model: ModelRef): LoadedWorkflow {
  const name = agentWorkflowName(agent);
  return {
    name,
    description: `A chat with the agent "${agent}" of the agent manager (its system prompt, as the app's operators edit it)`,
    entry_point: false,
    initiator: 'user',
    starting_agent: agent,
    agents: [{ name: agent, description: '', blueprint: agent, model, tools: [], handoffs: [] }],
    ui_tools: [],
    context_variables: { user_tier: { description: "The user's plan, set by the backend that starts the chat" } },
    max_turn_steps: 8,
    multitask_strategy: 'enqueue',
    file: `(made for ${name})`,
  };
}

/**
 * The runtime's workflows by name: the files', and `agent.<name>` for any valid agent name. Iterating
 * yields the files only (GET /api/workflows, the pick of a general chat); an app's agents are listed
 * by GET /api/chats/{app_id}/agents. Every lookup by name (start, socket, turn, meta) finds both.
 */
export class Workflows extends Map<string, LoadedWorkflow> {
  constructor(
    files: Map<string, LoadedWorkflow>,
    private readonly modelFor: (agent: string) => ModelRef,
  ) {
    super(files);
  }

  override get(name: string): LoadedWorkflow | undefined {
    const file = super.get(name);
    if (file) return file;
    const agent = agentOfWorkflow(name);
    // Made on each lookup: any name can be asked for, so nothing is kept per name.
    return agent === undefined ? undefined : agentWorkflow(agent, this.modelFor(agent));
  }

  override has(name: string): boolean {
    return super.has(name) || agentOfWorkflow(name) !== undefined;
  }
}

/**
 * An agent's view of its workflow: its tools as the model sees them (UI tools + one handoff tool per
 * allowed target) and how a tool name the model called resolves. Built once per loaded workflow.
 */
import type { AgentDef, UiTool } from '@tessera/contracts';
import type { ToolSpec } from '../providers/types';
import type { LoadedWorkflow } from './types';
import { handoffToolName } from './workflows';

export type ResolvedTool = { kind: 'handoff'; to: string } | { kind: 'ui'; tool: UiTool } | { kind: 'unknown' };

export interface AgentView {
  def: AgentDef;
  tools: ToolSpec[];
  resolve(toolName: string): ResolvedTool;
}

const views = new WeakMap<LoadedWorkflow, Map<string, AgentView>>();

/** The agent named `name`, or undefined when the workflow has none by that name. */
export function agentView(workflow: LoadedWorkflow, name: string): AgentView | undefined {
  let byName = views.get(workflow);
  if (!byName) {
    byName = new Map(workflow.agents.map((a) => [a.name, buildView(workflow, a)]));
    views.set(workflow, byName);
  }
  return byName.get(name);
}

function buildView(workflow: LoadedWorkflow, def: AgentDef): AgentView {
  const byTool = new Map<string, ResolvedTool>();
  const tools: ToolSpec[] = [];
  for (const name of def.tools) {
    const tool = workflow.ui_tools.find((t) => t.name === name);
    if (!tool) continue; // the loader rejects this; a hand-built workflow just loses the tool
    byTool.set(name, { kind: 'ui', tool });
    tools.push({ name, description: tool.description || `Show the ${tool.component} component`, parameters: tool.input_schema });
  }
  for (const to of def.handoffs) {
    const target = workflow.agents.find((a) => a.name === to);
    const name = handoffToolName(to);
    byTool.set(name, { kind: 'handoff', to });
    tools.push({
      name,
      description: `Hand the conversation to the ${to} agent${target?.description ? `: ${target.description}` : ''}`,
      parameters: { type: 'object', properties: { reason: { type: 'string', description: 'Why the conversation moves' } } },
    });
  }
  const unknown: ResolvedTool = { kind: 'unknown' };
  return { def, tools, resolve: (toolName) => byTool.get(toolName) ?? unknown };
}

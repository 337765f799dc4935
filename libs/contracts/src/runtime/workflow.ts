import { z } from 'zod';
import { WorkflowFileName } from '../common/ids';

/**
 * A workflow as declared in `workflows/<name>/workflow.json`. Validated at start; an error names
 * the file and the failing field.
 */

export const ScriptedToolCall = z.object({
  tool: z.string().describe('Name of a tool of the agent (a UI tool or a handoff)'),
  args: z.record(z.string(), z.unknown()).default({}),
});

/** One scripted model reply: text (streamed word by word) and/or tool calls. */
export const ScriptedReply = z.object({
  when: z.string().optional().describe('Reply only when the last user message contains this (case-insensitive)'),
  text: z.string().optional().describe('May reference {{last_user_message}}, {{last_tool_response}} and {{context.<name>}}'),
  tool_calls: z.array(ScriptedToolCall).optional(),
});

export const ModelRef = z.object({
  provider: z.enum(['scripted', 'openai-compatible', 'anthropic']).default('scripted'),
  model: z.string().optional().describe('Model id for a real provider; defaults to the runtime config'),
  temperature: z.number().min(0).max(2).optional(),
  max_tokens: z.number().int().positive().optional(),
  /** Scripted provider: pause between streamed words (demos, and tests of streaming). */
  token_delay_ms: z.number().int().min(0).max(5_000).optional(),
  /** Scripted replies, tried in order; the first whose `when` matches is used. */
  script: z.array(ScriptedReply).optional(),
});

export const UiTool = z.object({
  name: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/),
  description: z.string().default(''),
  component: z.string().describe('Component id the client renders, e.g. ActionPlan'),
  input_schema: z.record(z.string(), z.unknown()).default({ type: 'object' }).describe('JSON Schema of the tool input'),
  awaits_response: z.boolean().default(true),
  display: z.enum(['inline', 'composer', 'artifact', 'modal']).default('inline'),
});

/**
 * What a message that arrives while a turn of its chat runs (or waits) does, LangGraph's
 * "double-texting" rule: `enqueue` runs it after (the default), `reject` refuses it (CHAT_BUSY,
 * 409), `interrupt` cuts the running turn off (what it said stays, in the conversation too) and
 * runs the new one, `rollback` cuts it off and drops the turn (its message and what it said leave
 * the conversation; the client drops them on `chat.run_complete {status: "rolled_back"}`).
 * With `interrupt` and `rollback`, messages still waiting are dropped as well: the newest wins.
 */
export const MultitaskStrategy = z.enum(['enqueue', 'reject', 'interrupt', 'rollback']);
export type MultitaskStrategy = z.infer<typeof MultitaskStrategy>;

export const AgentDef = z
  .object({
    name: z.string().regex(/^[A-Za-z_][A-Za-z0-9_-]*$/),
    description: z.string().default(''),
    system_prompt: z.string().optional(),
    blueprint: z.string().optional().describe('Name of an agent-manager blueprint providing the system prompt'),
    model: ModelRef.default({ provider: 'scripted' }),
    tools: z.array(z.string()).default([]).describe('Names of UI tools this agent may call'),
    handoffs: z.array(z.string()).default([]).describe('Agents this agent may hand off to'),
  })
  .refine((a) => a.system_prompt !== undefined || a.blueprint !== undefined, {
    message: 'an agent needs a system_prompt or a blueprint',
    path: ['system_prompt'],
  });

export const WorkflowFile = z
  .object({
    name: WorkflowFileName,
    description: z.string().default(''),
    entry_point: z.boolean().default(false),
    initiator: z.enum(['user', 'agent']).default('user').describe('Who speaks first: the user, or the agent on connect'),
    greeting: z.string().optional().describe('Prompt the first agent answers when it speaks first'),
    starting_agent: z.string(),
    agents: z.array(AgentDef).min(1),
    ui_tools: z.array(UiTool).default([]),
    context_variables: z
      .record(z.string(), z.object({ description: z.string().default(''), default: z.unknown().optional() }))
      .default({}),
    max_turn_steps: z.number().int().min(1).max(50).default(8),
    multitask_strategy: MultitaskStrategy.default('enqueue').describe('What a message sent while a turn runs does, unless the message says otherwise'),
  })
  .superRefine((w, ctx) => {
    const agents = new Set(w.agents.map((a) => a.name));
    const tools = new Set(w.ui_tools.map((t) => t.name));
    if (!agents.has(w.starting_agent))
      ctx.addIssue({ code: 'custom', path: ['starting_agent'], message: `no agent named "${w.starting_agent}"` });
    w.agents.forEach((a, i) => {
      a.tools.forEach((t, j) => {
        if (!tools.has(t)) ctx.addIssue({ code: 'custom', path: ['agents', i, 'tools', j], message: `no ui_tool named "${t}"` });
      });
      a.handoffs.forEach((h, j) => {
        if (!agents.has(h)) ctx.addIssue({ code: 'custom', path: ['agents', i, 'handoffs', j], message: `no agent named "${h}"` });
      });
    });
  });
export type WorkflowFile = z.infer<typeof WorkflowFile>;
export type AgentDef = z.infer<typeof AgentDef>;
export type UiTool = z.infer<typeof UiTool>;
export type ModelRef = z.infer<typeof ModelRef>;
export type ScriptedReply = z.infer<typeof ScriptedReply>;

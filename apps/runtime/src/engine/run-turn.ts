/**
 * One turn of a chat: the input joins the conversation, then the current agent's model is called
 * until it answers without tool calls, a UI tool awaits the user, the signal aborts, or the turn
 * runs out of steps. Everything the user sees goes through `emit`, awaited in order.
 *
 * `runTurn` resolves for every model, configuration and abort outcome (see `status`); it rejects
 * only when `emit` rejects, since then the caller cannot record the turn anyway.
 */
import { createHash } from 'node:crypto';
import type { Usage } from '@tessera/contracts';
import { isAbortError, safeErrorMessage } from '../providers/errors';
import { contextLookup, renderTemplate } from '../providers/template';
import type { ModelChunk, ModelRequest } from '../providers/types';
import { agentView, type AgentView } from './agents';
import { boundHistory } from './history';
import type { ConversationMessage, ConversationToolCall, LoadedWorkflow, RunTurnInput, RunTurnResult, TurnExtension, TurnTool } from './types';

/** `chat.error` codes the engine emits. */
export const EngineErrorCode = {
  ModelError: 'MODEL_ERROR',
  UnknownTool: 'UNKNOWN_TOOL',
  AgentNotFound: 'AGENT_NOT_FOUND',
  BlueprintError: 'BLUEPRINT_ERROR',
  /** The blueprint is deactivated in the agent manager: no new turns until it is active again. */
  BlueprintInactive: 'BLUEPRINT_INACTIVE',
  BlueprintNotFound: 'BLUEPRINT_NOT_FOUND',
  /** The agent manager did not answer: the turn may be retried. */
  BlueprintUnavailable: 'BLUEPRINT_UNAVAILABLE',
  MaxTurnSteps: 'MAX_TURN_STEPS',
  ToolCallNotFound: 'TOOL_CALL_NOT_FOUND',
  /** A budget of the app or the user is spent: the turn ends before its next model call. */
  BudgetExceeded: 'BUDGET_EXCEEDED',
} as const;

/**
 * Why a blueprint gives no prompt, with the `chat.error` code a client can act on (wait for an
 * operator, retry later); thrown by a `resolveBlueprint`.
 */
export class BlueprintRefusal extends Error {
  override readonly name = 'BlueprintRefusal';
  constructor(
    readonly code: (typeof EngineErrorCode)['BlueprintInactive' | 'BlueprintNotFound' | 'BlueprintUnavailable'],
    message: string,
  ) {
    super(message);
  }
}

/** The hidden prompt of a greeting turn when the workflow declares none. */
export const DEFAULT_GREETING = 'Greet the user and offer your help.';

type Awaiting = RunTurnResult['awaiting'];

export async function runTurn(input: RunTurnInput): Promise<RunTurnResult> {
  const { workflow, state, turnId, signal, emit, providers } = input;
  const context = withDefaults(workflow, input.context);
  const bound = (m: ConversationMessage[]) => (input.history ? boundHistory(m, input.history) : m);
  // The state a turn saves is bounded, so that a long chat's row (rewritten every turn) is too.
  const messages: ConversationMessage[] = bound(state.messages).slice();
  const usage: Usage = { ...state.usage };
  let agentName = state.current_agent;
  const ids = turnIds(turnId);
  const extensions = (input.extensions ?? []).flatMap((source) => source(context, state) ?? []);
  const ownTools = new Map<string, TurnTool>(extensions.flatMap((x) => x.tools.map((t) => [t.spec.name, t] as const)));
  const saved = (x: TurnExtension[]) => Object.assign({}, ...x.map((e) => e.saved())) as Partial<typeof state>;

  const end = (status: RunTurnResult['status'], awaiting: Awaiting = [], error?: string): RunTurnResult => ({
    state: { current_agent: agentName, messages: bound(messages), turns: state.turns + 1, usage, ...saved(extensions) },
    status,
    awaiting,
    ...(error === undefined ? {} : { error }),
  });
  const fail = async (code: string, message: string): Promise<RunTurnResult> => {
    await emit('chat.error', { error_code: code, message });
    return end('failed', [], message);
  };

  const turnInput = input.input;
  if (turnInput.kind === 'message') {
    answerPending(messages, { dismissed: true, reason: 'the user sent a message instead' });
    messages.push({ role: 'user', content: turnInput.text });
  } else if (turnInput.kind === 'greeting') {
    messages.push({ role: 'user', content: renderTemplate(workflow.greeting ?? DEFAULT_GREETING, contextLookup(context)) });
  } else {
    const answered = pendingToolCalls(messages).find(
      (p) => p.tool_call_id === turnInput.tool_call_id || (p.event_id !== '' && p.event_id === turnInput.event_id),
    );
    if (!answered) {
      const message = `No tool call "${turnInput.tool_call_id}" awaits a response`;
      await emit('chat.error', { error_code: EngineErrorCode.ToolCallNotFound, message });
      return { state, status: 'failed', awaiting: [], error: message };
    }
    messages.push({
      role: 'tool',
      tool_call_id: answered.tool_call_id,
      tool_name: answered.tool_name,
      content: JSON.stringify(turnInput.response),
    });
    // Every call of an assistant message needs its result before the model may speak again.
    const still = pendingToolCalls(messages);
    if (still.length > 0) return end('awaiting_input', still);
  }

  const blueprints = new Map<string, string>();
  for (let step = 0; step < workflow.max_turn_steps; step++) {
    if (signal.aborted) return end('stopped');
    const agent = agentView(workflow, agentName);
    if (!agent) return fail(EngineErrorCode.AgentNotFound, `Workflow "${workflow.name}" has no agent "${agentName}"`);

    let system: string;
    try {
      system = await systemPrompt(agent, context, input.resolveBlueprint, blueprints);
    } catch (e) {
      return fail(e instanceof BlueprintRefusal ? e.code : EngineErrorCode.BlueprintError, safeErrorMessage(e));
    }

    const ref = agent.def.model;
    // Asked before each call, never during one: a turn that crosses a budget stops at its next call.
    const admission = input.budget ? await input.budget.admit() : null;
    if (admission && !admission.ok) return fail(EngineErrorCode.BudgetExceeded, admission.message);
    let req: ModelRequest;
    let stream: AsyncIterable<ModelChunk>;
    try {
      const provider = providers.get(ref.provider);
      req = {
        model: ref.model ?? providers.defaultModel(ref.provider),
        system,
        messages,
        tools: ownTools.size ? [...agent.tools, ...[...ownTools.values()].map((t) => t.spec)] : agent.tools,
        temperature: ref.temperature,
        maxTokens: ref.max_tokens,
        declared: ref,
        context,
      };
      stream = provider.stream(req, signal);
    } catch (e) {
      await admission?.done(undefined, ref.model ?? '', ref.provider);
      return fail(EngineErrorCode.ModelError, safeErrorMessage(e));
    }

    // One model call: its text streams as one chat message.
    const it = stream[Symbol.asyncIterator]();
    let text = '';
    let messageId: string | undefined;
    let callUsage: Usage | undefined;
    let failure: unknown;
    const calls: { name: string; args: Record<string, unknown> }[] = [];
    let done = false;
    try {
      while (!signal.aborted) {
        let next: IteratorResult<ModelChunk>;
        try {
          next = await it.next();
        } catch (e) {
          done = true;
          failure = e;
          break;
        }
        if (next.done) {
          done = true;
          break;
        }
        const chunk = next.value;
        if (chunk.type === 'text-delta') {
          if (!chunk.text || signal.aborted) continue;
          messageId ??= ids.message();
          text += chunk.text;
          await emit('chat.text', { message_id: messageId, agent: agentName, role: 'assistant', delta: chunk.text, done: false });
        } else if (chunk.type === 'tool-call') {
          calls.push({ name: chunk.name, args: chunk.args });
        } else {
          callUsage = chunk.usage;
        }
      }
    } finally {
      // Stopped early (abort, or emit threw): let the provider close its request.
      if (!done) await it.return?.().catch(() => undefined);
      await admission?.done(callUsage, req.model, ref.provider);
    }

    if (messageId !== undefined)
      await emit('chat.text', { message_id: messageId, agent: agentName, role: 'assistant', delta: '', done: true, content: text });
    if (callUsage) {
      addUsage(usage, callUsage);
      await emit('chat.usage_delta', { ...callUsage, agent: agentName, model: req.model, provider: ref.provider });
    }
    if (signal.aborted || failure !== undefined) {
      // What the user saw stays in the conversation; tool calls of a cut-off reply are dropped.
      if (text) messages.push({ role: 'assistant', agent: agentName, content: text });
      if (signal.aborted) return end('stopped');
      const why = isAbortError(failure) ? 'the model call was aborted' : safeErrorMessage(failure);
      return fail(EngineErrorCode.ModelError, `Model call failed (${ref.provider}): ${why}`);
    }

    if (calls.length === 0) {
      if (text) messages.push({ role: 'assistant', agent: agentName, content: text });
      return end('completed');
    }
    const outcome = await handleToolCalls(agent, agentName, text, calls, messages, ids, emit, ownTools);
    agentName = outcome.agent;
    if (outcome.awaiting.length > 0) return end('awaiting_input', outcome.awaiting);
  }
  return fail(
    EngineErrorCode.MaxTurnSteps,
    `The turn stopped after ${workflow.max_turn_steps} model calls (max_turn_steps) without a final answer`,
  );
}

/** Appends the assistant message with its calls and the results of those that do not await the user. */
async function handleToolCalls(
  agent: AgentView,
  agentName: string,
  text: string,
  calls: { name: string; args: Record<string, unknown> }[],
  messages: ConversationMessage[],
  ids: TurnIds,
  emit: RunTurnInput['emit'],
  ownTools: ReadonlyMap<string, TurnTool>,
): Promise<{ agent: string; awaiting: Awaiting }> {
  const toolCalls: ConversationToolCall[] = calls.map((c) => ({ id: ids.toolCall(), name: c.name, args: c.args }));
  messages.push({ role: 'assistant', agent: agentName, content: text, tool_calls: toolCalls });
  const awaiting: Awaiting = [];
  let next = agentName;
  const result = (c: ConversationToolCall, content: string) =>
    messages.push({ role: 'tool', tool_call_id: c.id, tool_name: c.name, content });

  for (const call of toolCalls) {
    const own = ownTools.get(call.name);
    if (own) {
      result(call, JSON.stringify(await own.call(call.args, agentName, emit)));
      continue;
    }
    const tool = agent.resolve(call.name);
    if (tool.kind === 'handoff') {
      if (next !== agentName) {
        result(call, JSON.stringify({ error: `already handed off to ${next}` }));
        continue;
      }
      await emit('chat.custom_event', { kind: 'handoff', payload: { from: agentName, to: tool.to } });
      next = tool.to;
      result(call, JSON.stringify({ transferred_to: tool.to }));
    } else if (tool.kind === 'ui') {
      const t = tool.tool;
      call.event_id = ids.event();
      await emit('chat.tool_call', {
        event_id: call.event_id,
        tool_call_id: call.id,
        tool_name: t.name,
        component: t.component,
        agent: agentName,
        payload: call.args,
        awaiting_response: t.awaits_response,
        interaction_type: t.awaits_response ? 'input_request' : 'display',
        display: t.display,
      });
      if (t.awaits_response) awaiting.push({ event_id: call.event_id, tool_call_id: call.id, tool_name: t.name, agent: agentName });
      else result(call, 'displayed');
    } else {
      const message = `Agent "${agentName}" called unknown tool "${call.name}"`;
      await emit('chat.error', { error_code: EngineErrorCode.UnknownTool, message });
      result(call, JSON.stringify({ error: `unknown tool "${call.name}"` }));
    }
  }
  return { agent: next, awaiting };
}

async function systemPrompt(
  agent: AgentView,
  context: Record<string, unknown>,
  resolveBlueprint: RunTurnInput['resolveBlueprint'],
  cache: Map<string, string>,
): Promise<string> {
  const { blueprint, system_prompt } = agent.def;
  // A blueprint wins when blueprints can be resolved; a system_prompt beside it is the fallback.
  if (blueprint !== undefined && (resolveBlueprint || system_prompt === undefined)) {
    if (!resolveBlueprint)
      throw new Error(`Agent "${agent.def.name}" uses blueprint "${blueprint}" but this runtime has no blueprint source`);
    let prompt = cache.get(blueprint);
    if (prompt === undefined) {
      try {
        prompt = await resolveBlueprint(blueprint);
      } catch (e) {
        if (e instanceof BlueprintRefusal) throw new BlueprintRefusal(e.code, `Agent "${agent.def.name}": ${e.message}`);
        throw new Error(`Blueprint "${blueprint}" of agent "${agent.def.name}" could not be loaded: ${safeErrorMessage(e)}`);
      }
      cache.set(blueprint, prompt);
    }
    return renderTemplate(prompt, contextLookup(context));
  }
  return renderTemplate(system_prompt ?? '', contextLookup(context));
}

/** Tool calls of the last assistant message with tool calls that have no result yet. */
export function pendingToolCalls(messages: readonly ConversationMessage[]): Awaiting {
  const answered = new Set<string>();
  for (let i = messages.length - 1; i >= 0; i--) {
    const m = messages[i];
    if (m.role === 'tool') answered.add(m.tool_call_id);
    else if (m.role === 'assistant' && m.tool_calls?.length) {
      return m.tool_calls
        .filter((c) => !answered.has(c.id))
        .map((c) => ({ event_id: c.event_id ?? '', tool_call_id: c.id, tool_name: c.name, agent: m.agent }));
    } else return [];
  }
  return [];
}

const PARTS = ['cache_read_tokens', 'cache_write_tokens', 'reasoning_tokens'] as const;

/** A call's tokens added to the turn's: a part counts once some call reported it. */
export function addUsage(total: Usage, call: Usage): void {
  total.prompt_tokens += call.prompt_tokens;
  total.completion_tokens += call.completion_tokens;
  total.total_tokens += call.total_tokens;
  for (const k of PARTS) if (call[k] !== undefined) total[k] = (total[k] ?? 0) + call[k];
}

/** Gives every unanswered call a result, so the conversation stays valid for any provider. */
function answerPending(messages: ConversationMessage[], response: Record<string, unknown>): void {
  for (const p of pendingToolCalls(messages))
    messages.push({ role: 'tool', tool_call_id: p.tool_call_id, tool_name: p.tool_name, content: JSON.stringify(response) });
}

function withDefaults(workflow: LoadedWorkflow, context: Record<string, unknown>): Record<string, unknown> {
  let merged: Record<string, unknown> | undefined;
  for (const [name, v] of Object.entries(workflow.context_variables)) {
    if (v.default === undefined || context[name] !== undefined) continue;
    merged ??= { ...context };
    merged[name] = v.default;
  }
  return merged ?? context;
}

interface TurnIds {
  message(): string;
  event(): string;
  toolCall(): string;
}

/**
 * Ids derived from the turn id, so a re-run of the turn makes the same ones. Tool call ids are
 * ours, not the model's (some servers repeat or omit them), and fit every provider's id pattern.
 */
function turnIds(turnId: string): TurnIds {
  let m = 0;
  let e = 0;
  let c = 0;
  let prefix: string | undefined;
  return {
    message: () => `${turnId}:m${++m}`,
    event: () => `${turnId}:tc${++e}`,
    toolCall: () => {
      prefix ??= `call_${createHash('sha256').update(turnId).digest('base64url').slice(0, 12).replace(/-/g, '_')}`;
      return `${prefix}_${++c}`;
    },
  };
}

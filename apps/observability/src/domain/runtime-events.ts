import type { ObservedEvent, observability } from '@tessera/contracts';
import type { NormalizedEvent } from './event';
import type { CallUsage } from '@tessera/kit';

type Data = Record<string, unknown>;

const str = (v: unknown): string | null => (typeof v === 'string' ? v : null);

/** OpenTelemetry GenAI operation of a runtime timeline event. */
function operationOf(type: string): string {
  if (type === 'chat.tool_call' || type === 'chat.tool_call_complete' || type === 'chat.tool_call_dismiss' || type === 'chat.tool_response') return 'execute_tool';
  if (type === 'chat.text' || type === 'chat.usage_delta') return 'chat';
  return 'invoke_agent';
}

/**
 * What a runtime event says about the chat: a user's message starts a turn, a run's end ends or
 * stops it. A run that ends awaiting the user's answer to a UI tool leaves the chat running: it is
 * not finished, and an operator may stop it (the stop dismisses the pending tool call).
 */
function statusOf(type: string, d: Data): observability.SessionStatus | undefined {
  if (type === 'chat.text' && d.role === 'user') return 'running';
  if (type === 'chat.run_complete') return d.status === 'stopped' ? 'stopped' : d.status === 'awaiting_input' ? 'running' : 'finished';
  return undefined;
}

/**
 * A runtime chat event from the `observability-events` queue as the Ingestor takes it: the
 * session is the chat, `rt:<index>` makes a redelivered job idempotent, and the GenAI attributes
 * name the conversation, agent, operation and tokens. Tokens count from `chat.usage_delta` only:
 * `chat.usage_summary` repeats a turn's total.
 */
export function normalizeRuntime(o: ObservedEvent): NormalizedEvent {
  const d: Data = o.payload && typeof o.payload === 'object' && !Array.isArray(o.payload) ? (o.payload as Data) : {};
  // The user's own message is written as `agent: "user"`: it names no agent, so the session's agent
  // is the first one that answers (the session keeps the first agent name it is given).
  const agent = d.role === 'user' ? null : o.agent;
  const usage = o.type === 'chat.usage_delta' && o.usage ? usageOf(o.usage, d) : null;
  const attributes: Data = {
    'gen_ai.conversation.id': o.session_id,
    'gen_ai.operation.name': operationOf(o.type),
    'tessera.index': o.index,
  };
  if (agent) attributes['gen_ai.agent.name'] = agent;
  if (usage) {
    attributes['gen_ai.usage.input_tokens'] = usage.input;
    attributes['gen_ai.usage.output_tokens'] = usage.output;
    if (usage.cacheRead !== undefined) attributes['gen_ai.usage.cache_read.input_tokens'] = usage.cacheRead;
    if (usage.cacheWrite !== undefined) attributes['gen_ai.usage.cache_creation.input_tokens'] = usage.cacheWrite;
    if (usage.reasoning !== undefined) attributes['gen_ai.usage.reasoning.output_tokens'] = usage.reasoning;
    if (usage.model) attributes['gen_ai.request.model'] = usage.model;
    if (usage.provider) attributes['gen_ai.provider.name'] = usage.provider;
  }
  const toolName = str(d.tool_name);
  if (toolName) attributes['gen_ai.tool.name'] = toolName;
  if (typeof d.tool_call_id === 'string') attributes['gen_ai.tool.call.id'] = d.tool_call_id;
  // A streamed message's text is its delta; the last event also carries the whole message.
  const text = o.type === 'chat.text' ? (str(d.done ? d.content : d.delta) ?? str(d.delta)) : o.type === 'chat.print' ? str(d.content) : null;
  const at = new Date(o.timestamp);
  return {
    sessionId: o.session_id,
    eventType: o.type,
    eventId: `rt:${o.index}`,
    timestamp: Number.isNaN(at.getTime()) ? new Date() : at,
    source: 'runtime',
    appId: o.app_id,
    userId: o.user_id,
    agentName: agent,
    workflow: o.workflow_name,
    projectDir: null,
    sessionName: null,
    toolName,
    toolInput: o.type === 'chat.tool_call' ? d.payload : undefined,
    toolOutput: o.type === 'chat.tool_call_complete' ? d.response : o.type === 'chat.tool_response' ? d.content : undefined,
    error: o.type === 'chat.error' ? (str(d.message) ?? 'error') : null,
    exitCode: null,
    reason: str(d.reason),
    role: str(d.role),
    content: text === null ? null : [{ type: 'text', text }],
    userText: o.type === 'chat.text' && d.role === 'user' ? text : null,
    usage,
    attributes: { ...attributes, 'tessera.payload': d },
    sourceIndex: o.index,
    status: statusOf(o.type, d),
  };
}

/** A `chat.usage_delta`'s tokens with its model and provider (the runtime's names). */
function usageOf(u: NonNullable<ObservedEvent['usage']>, d: Data): CallUsage {
  return {
    input: u.prompt_tokens,
    output: u.completion_tokens,
    ...(u.cache_read_tokens !== undefined && { cacheRead: u.cache_read_tokens }),
    ...(u.cache_write_tokens !== undefined && { cacheWrite: u.cache_write_tokens }),
    ...(u.reasoning_tokens !== undefined && { reasoning: u.reasoning_tokens }),
    model: str(d.model),
    provider: str(d.provider),
  };
}

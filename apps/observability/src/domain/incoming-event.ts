import type { observability } from '@tessera/contracts';
import type { NormalizedEvent } from './event';

/** What an outside agent's event type says about its session. */
const STATUS_OF: Record<string, observability.SessionStatus> = { session_start: 'running', session_stop: 'finished' };

/**
 * A validated `POST /events` event as the Ingestor takes it. `defaultApp`: the app of the ingest
 * key it came with, for events that do not name one.
 */
export function normalizeIncoming(e: observability.IncomingEvent, defaultApp: string | null, now: Date): NormalizedEvent {
  const input = e.usage?.input_tokens ?? 0;
  const output = e.usage?.output_tokens ?? 0;
  const attributes: Record<string, unknown> = { 'gen_ai.conversation.id': e.session_id };
  if (e.agent_name) attributes['gen_ai.agent.name'] = e.agent_name;
  if (e.tool_name) {
    attributes['gen_ai.operation.name'] = 'execute_tool';
    attributes['gen_ai.tool.name'] = e.tool_name;
  }
  if (e.usage) {
    attributes['gen_ai.usage.input_tokens'] = input;
    attributes['gen_ai.usage.output_tokens'] = output;
    if (e.usage.model) attributes['gen_ai.request.model'] = e.usage.model;
  }
  return {
    sessionId: e.session_id,
    eventType: e.event_type,
    eventId: e.event_id ?? null,
    timestamp: e.timestamp === undefined ? now : new Date(e.timestamp),
    source: e.source ?? 'external',
    appId: e.app_id ?? defaultApp,
    userId: e.user_id ?? null,
    agentName: e.agent_name ?? null,
    workflow: e.workflow ?? null,
    projectDir: e.project_dir ?? null,
    sessionName: e.session_name ?? null,
    toolName: e.tool_name ?? null,
    toolInput: e.tool_input,
    toolOutput: e.tool_output,
    error: e.error ?? null,
    exitCode: e.exit_code ?? null,
    reason: e.reason ?? null,
    role: e.role ?? null,
    content: e.content ?? null,
    userText: e.role === 'user' ? textOf(e.content) : null,
    usage: e.usage
      ? {
          input,
          output,
          ...(e.usage.cache_read_tokens !== undefined && { cacheRead: e.usage.cache_read_tokens }),
          ...(e.usage.cache_write_tokens !== undefined && { cacheWrite: e.usage.cache_write_tokens }),
          ...(e.usage.reasoning_tokens !== undefined && { reasoning: e.usage.reasoning_tokens }),
          model: e.usage.model ?? null,
          provider: e.usage.provider ?? null,
        }
      : null,
    attributes,
    status: STATUS_OF[e.event_type],
  };
}

/** The text parts of a message's content, joined; null when it has none. */
function textOf(content: observability.IncomingEvent['content']): string | null {
  const parts = (content ?? []).flatMap((c) => (c.type === 'text' && typeof c.text === 'string' && c.text.trim() !== '' ? [c.text] : []));
  return parts.length ? parts.join(' ') : null;
}

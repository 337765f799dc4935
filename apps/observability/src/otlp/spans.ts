import type { AppScope } from '../domain/access';
import type { NormalizedEvent } from '../domain/event';
import type { OtlpTraceRequest } from './decode';
import { asArray, asObject, idHex, int64, jsonText, keyValues, LIMITS, nanosToMs, text, valueCount, type Json } from './values';

/**
 * OpenTelemetry spans as observability events, one per span, by the GenAI semantic conventions
 * (gen_ai.conversation.id is the session, gen_ai.operation.name the event type, gen_ai.usage.*
 * the tokens), with the names the Vercel AI SDK (`ai.*` spans) and OpenInference (OpenAI Agents
 * SDK, LangChain: `openinference.span.kind`) use where a span has no gen_ai.operation.name.
 * Pure: a span that cannot be read is rejected with its reason; nothing here throws.
 */

export interface SpanEvents {
  events: NormalizedEvent[];
  /**
   * Events of agent spans whose tokens count because no span below them in this request reports
   * any: a span below them stored by an earlier request may still (see `usageBelow`).
   */
  aggregateUsage: NormalizedEvent[];
  /** Per trace id, the conversation a span of the request named for it. */
  named: Map<string, string>;
  rejected: number;
  /** The first few distinct reasons, for the response's partialSuccess.errorMessage. */
  reasons: string[];
}

/** Resource attribute naming the Tessera app a resource's spans belong to. */
export const APP_ATTRIBUTE = 'tessera.app_id';

const VERCEL_OPERATIONS: Record<string, string> = {
  'ai.generateText': 'invoke_agent',
  'ai.streamText': 'invoke_agent',
  'ai.generateObject': 'invoke_agent',
  'ai.streamObject': 'invoke_agent',
  'ai.generateText.doGenerate': 'chat',
  'ai.streamText.doStream': 'chat',
  'ai.generateObject.doGenerate': 'chat',
  'ai.streamObject.doStream': 'chat',
  'ai.toolCall': 'execute_tool',
  'ai.embed.doEmbed': 'embeddings',
  'ai.embedMany.doEmbed': 'embeddings',
};
const OPENINFERENCE_OPERATIONS: Record<string, string> = { AGENT: 'invoke_agent', LLM: 'chat', TOOL: 'execute_tool', EMBEDDING: 'embeddings' };

/**
 * Operations whose gen_ai.usage.* sums their children's (an agent invocation reports the tokens
 * of the chats it ran): their tokens count only when no span below them reports any, else every
 * token would count twice.
 */
export const AGGREGATE_OPERATIONS = new Set(['invoke_agent', 'invoke_workflow', 'create_agent']);

/** Framework attributes kept next to the gen_ai.* ones: what names the model or call where gen_ai.* does not. */
const KEPT_ATTRIBUTES = ['ai.model.id', 'ai.model.provider', 'ai.telemetry.functionId', 'openinference.span.kind', 'llm.model_name', 'llm.token_count.prompt', 'llm.token_count.completion'];

/** Attributes whose token counts a span reports, in the order usageOf reads them. */
const INPUT_TOKENS = ['gen_ai.usage.input_tokens', 'gen_ai.usage.prompt_tokens', 'llm.token_count.prompt'];
const OUTPUT_TOKENS = ['gen_ai.usage.output_tokens', 'gen_ai.usage.completion_tokens', 'llm.token_count.completion'];
export const TOKEN_ATTRIBUTES = [...INPUT_TOKENS, ...OUTPUT_TOKENS];

/** Message attributes holding JSON as text: kept parsed, so their parts (tool calls among them) read as JSON. */
const MESSAGE_ATTRIBUTES = new Set(['gen_ai.input.messages', 'gen_ai.output.messages', 'gen_ai.system_instructions']);

/** Characters and values of attribute JSON one event keeps, all attributes together (JSON_LIMITS allows 10,000 values per field). */
const ATTRIBUTE_BUDGET = { chars: 256 * 1024, values: 8_000 };

interface SpanInput {
  span: Record<string, unknown>;
  attrs: Record<string, Json>;
  resource: Record<string, Json>;
  scopeName: string | null;
  traceId: string | null;
}

export function spansToEvents(request: OtlpTraceRequest, scope: AppScope): SpanEvents {
  const out: SpanEvents = { events: [], aggregateUsage: [], named: new Map(), rejected: 0, reasons: [] };
  const reject = (why: string) => {
    out.rejected++;
    if (out.reasons.length < 5 && !out.reasons.includes(why)) out.reasons.push(why);
  };

  const inputs: SpanInput[] = [];
  for (const rs of asArray(request.resourceSpans)) {
    const resource = keyValues(asObject(asObject(rs)?.resource)?.attributes).values;
    for (const ss of asArray(asObject(rs)?.scopeSpans)) {
      const scopeName = text(asObject(asObject(ss)?.scope)?.name, 256);
      for (const s of asArray(asObject(ss)?.spans)) {
        const span = asObject(s);
        if (!span) reject('a span is not an object');
        else inputs.push({ span, attrs: keyValues(span.attributes).values, resource, scopeName, traceId: idHex(span.traceId, 16) });
      }
    }
  }

  // Instrumentations often set gen_ai.conversation.id on the agent's span alone: its children
  // exported in the same request join the same session.
  const traceSessions = new Map<string, string>();
  for (const i of inputs) {
    const id = conversationId(i);
    if (id && i.traceId && !traceSessions.has(i.traceId)) traceSessions.set(i.traceId, id);
  }

  out.named = traceSessions;
  // Traces of which the request holds an agent span: that names their session, not the root span.
  const agentTraces = new Set(inputs.filter((i) => i.traceId && AGGREGATE_OPERATIONS.has(operationOf(i.span, i.attrs) ?? '')).map((i) => i.traceId));

  const started: { event: NormalizedEvent; at: number; depth: number }[] = [];
  const parents = new Map(inputs.map((i) => [idHex(i.span.spanId, 8), idHex(i.span.parentSpanId, 8)]));
  const links: SpanLink[] = [];
  for (const input of inputs) {
    try {
      const event = toEvent(input, scope, traceSessions, agentTraces);
      if (typeof event === 'string') reject(event);
      else {
        started.push({ event, at: nanosToMs(input.span.startTimeUnixNano)!, depth: depthOf(event.eventId, parents) });
        links.push({ spanId: event.eventId!, parentSpanId: parents.get(event.eventId) ?? null, reportsUsage: usageOf(input.attrs) !== null });
      }
    } catch {
      // Every reader above is total; this keeps a bug in one span from failing the request.
      reject('a span could not be read');
    }
  }
  for (const { event } of started) {
    if (event.usage === null || !AGGREGATE_OPERATIONS.has(event.eventType)) continue;
    if (usageBelow(event.eventId!, links)) event.usage = null;
    else out.aggregateUsage.push(event);
  }
  // In the order things started, which is what a timeline shows (exporters send spans as they
  // end); a parent before the child it started in the same instant (SDKs clock in milliseconds).
  out.events = started.sort((a, b) => a.at - b.at || a.depth - b.depth).map((s) => s.event);
  return out;
}

/** A span as the rule on agent spans' tokens sees it. */
export interface SpanLink {
  spanId: string;
  parentSpanId: string | null;
  reportsUsage: boolean;
}

/**
 * Whether a span below `spanId` (a child, a child's child, …) reports tokens. Bounded: the ids
 * are the client's, cycles included.
 */
export function usageBelow(spanId: string, links: SpanLink[]): boolean {
  const children = new Map<string, SpanLink[]>();
  for (const l of links) {
    if (l.parentSpanId === null) continue;
    const list = children.get(l.parentSpanId);
    if (list) list.push(l);
    else children.set(l.parentSpanId, [l]);
  }
  const seen = new Set([spanId]);
  const stack = [spanId];
  while (stack.length) {
    for (const child of children.get(stack.pop()!) ?? []) {
      if (seen.has(child.spanId)) continue;
      if (child.reportsUsage) return true;
      seen.add(child.spanId);
      stack.push(child.spanId);
    }
  }
  return false;
}

/** Ancestors of a span within the request (bounded: ids are the client's, cycles included). */
function depthOf(spanId: string | null, parents: Map<string | null, string | null>): number {
  let depth = 0;
  for (let id = parents.get(spanId); id && depth < 64; id = parents.get(id)) depth++;
  return depth;
}

function conversationId({ attrs, resource }: SpanInput): string | null {
  for (const v of [attrs['gen_ai.conversation.id'], resource['gen_ai.conversation.id'], attrs['session.id'], attrs['ai.telemetry.metadata.sessionId']]) {
    if (typeof v === 'string' && v.trim()) return v;
    if (typeof v === 'number') return String(v);
  }
  return null;
}

/** The event for one span, or why the span is rejected. */
function toEvent(input: SpanInput, scope: AppScope, traceSessions: Map<string, string>, agentTraces: Set<string | null>): NormalizedEvent | string {
  const { span, attrs, resource, traceId } = input;
  const spanId = idHex(span.spanId, 8);
  if (!traceId) return 'traceId must be 16 bytes, not all zero (32 hex characters)';
  if (!spanId) return 'spanId must be 8 bytes, not all zero (16 hex characters)';
  const start = nanosToMs(span.startTimeUnixNano);
  if (start === null) return 'startTimeUnixNano must be a time in nanoseconds since the epoch';
  const end = nanosToMs(span.endTimeUnixNano);

  const sessionId = conversationId(input) ?? traceSessions.get(traceId) ?? `otel:${traceId}`;
  if (sessionId.length > 256) return 'gen_ai.conversation.id must be at most 256 characters';

  const claimed = str(resource[APP_ATTRIBUTE], 128);
  let appId: string | null = claimed;
  if (scope !== '*') {
    if (claimed !== null && !scope.includes(claimed)) return `${APP_ATTRIBUTE} "${claimed}" is not an app this key may write`;
    appId = claimed ?? (scope.length === 1 ? scope[0] : null);
    if (appId === null) return `${APP_ATTRIBUTE} must name the app`;
  }

  const operation = operationOf(span, attrs);
  const tool = operation === 'execute_tool';
  const parentSpanId = idHex(span.parentSpanId, 8);
  const { role, content } = outputOf(attrs);
  const agentName = str(attrs['gen_ai.agent.name'] ?? attrs['ai.telemetry.functionId'], 256);
  const spanName = text(span.name, 512) || null;
  // Named by its agent; a trace without an agent span by its root span.
  const aggregate = operation !== null && AGGREGATE_OPERATIONS.has(operation);
  const sessionName = aggregate ? (agentName ?? spanName) : parentSpanId === null && !agentTraces.has(traceId) ? spanName : null;

  return {
    sessionId,
    eventType: operation ?? 'span',
    eventId: spanId,
    timestamp: new Date(start),
    source: 'otel',
    appId,
    userId: str(attrs['user.id'] ?? resource['user.id'] ?? attrs['enduser.id'] ?? attrs['ai.telemetry.metadata.userId'], 256),
    agentName,
    workflow: null,
    projectDir: null,
    sessionName,
    model: str(attrs['gen_ai.response.model'] ?? attrs['gen_ai.request.model'] ?? attrs['ai.response.model'] ?? attrs['ai.model.id'] ?? attrs['llm.model_name'], 256),
    toolName: str(attrs['gen_ai.tool.name'] ?? attrs['ai.toolCall.name'] ?? attrs['tool.name'], 256),
    ...(tool && {
      toolInput: jsonText(attrs['gen_ai.tool.call.arguments'] ?? attrs['ai.toolCall.args'] ?? attrs['input.value']),
      toolOutput: jsonText(attrs['gen_ai.tool.call.result'] ?? attrs['ai.toolCall.result'] ?? attrs['output.value']),
    }),
    error: errorOf(span),
    exitCode: null,
    reason: null,
    role,
    content,
    userText: firstUserText(attrs),
    usage: usageOf(attrs),
    attributes: attributesOf(input, {
      traceId,
      spanId,
      parentSpanId,
      // The start in full (timestamp keeps milliseconds): spans begun in the same millisecond still read in the order they started.
      startNanos: BigInt(typeof span.startTimeUnixNano === 'number' ? Math.floor(span.startTimeUnixNano) : (span.startTimeUnixNano as string)).toString(),
      durationMs: end !== null && end >= start ? Math.round((end - start) * 1000) / 1000 : null,
    }),
    // A trace's root span ends last: when it arrives, that run is over.
    ...(parentSpanId === null && { status: 'finished' as const }),
  };
}

function str(v: Json | undefined, max: number): string | null {
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  return typeof v === 'string' && v.length > 0 && v.length <= max ? v : null;
}

function operationOf(span: Record<string, unknown>, attrs: Record<string, Json>): string | null {
  const named = str(attrs['gen_ai.operation.name'], 128);
  if (named) return named;
  const name = typeof span.name === 'string' ? span.name : '';
  const vercel = VERCEL_OPERATIONS[str(attrs['ai.operationId'], 128) ?? name];
  if (vercel) return vercel;
  const kind = attrs['openinference.span.kind'];
  return (typeof kind === 'string' && OPENINFERENCE_OPERATIONS[kind.toUpperCase()]) || null;
}

export function usageOf(attrs: Record<string, Json>): NormalizedEvent['usage'] {
  const tokens = (...keys: string[]) => {
    for (const k of keys) {
      const n = typeof attrs[k] === 'string' ? int64(attrs[k]) : attrs[k];
      if (typeof n === 'number' && Number.isSafeInteger(n) && n >= 0) return n;
    }
    return null;
  };
  const input = tokens(...INPUT_TOKENS);
  const output = tokens(...OUTPUT_TOKENS);
  return input === null && output === null ? null : { input: input ?? 0, output: output ?? 0 };
}

/** Status ERROR (code 2) with its message, else the first recorded exception; null when the span went well. */
function errorOf(span: Record<string, unknown>): string | null {
  const status = asObject(span.status);
  const failed = status?.code === 2 || status?.code === 'STATUS_CODE_ERROR';
  let exception: string | null = null;
  for (const e of asArray(span.events).slice(0, LIMITS.spanEvents)) {
    const ev = asObject(e);
    if (ev?.name !== 'exception') continue;
    const a = keyValues(ev.attributes).values;
    const type = str(a['exception.type'], 256);
    const message = typeof a['exception.message'] === 'string' ? a['exception.message'] : null;
    exception = [type, message].filter(Boolean).join(': ') || 'exception';
    break;
  }
  const message = failed ? (text(status?.message, 16_000) || exception || 'error') : exception;
  return message ? message.slice(0, 16_000) : null;
}

/**
 * What the model answered, as an event's content: gen_ai.output.messages' parts (text, the tool
 * calls it asked for, tool results, reasoning), or the Vercel AI SDK's ai.response.text.
 */
function outputOf(attrs: Record<string, Json>): { role: string | null; content: Record<string, unknown>[] | null } {
  const messages = jsonText(attrs['gen_ai.output.messages']);
  if (Array.isArray(messages)) {
    const content: Record<string, unknown>[] = [];
    let role: string | null = null;
    for (const m of messages.slice(0, LIMITS.items)) {
      const msg = asObject(m);
      role ??= str(msg?.role as Json, 64);
      for (const p of asArray(msg?.parts).slice(0, LIMITS.items)) {
        const part = partOf(asObject(p));
        if (part && content.length < 200) content.push(part);
      }
    }
    if (content.length) return { role: role ?? 'assistant', content };
  }
  const response = attrs['ai.response.text'];
  if (typeof response === 'string' && response) return { role: 'assistant', content: [{ type: 'text', text: response }] };
  return { role: null, content: null };
}

/**
 * The text of the first user message among the span's input messages (gen_ai.input.messages: a
 * model call's input is the conversation so far, so its first user message is the session's).
 */
function firstUserText(attrs: Record<string, Json>): string | null {
  const messages = jsonText(attrs['gen_ai.input.messages']);
  if (!Array.isArray(messages)) return null;
  for (const m of messages.slice(0, LIMITS.items)) {
    const msg = asObject(m);
    if (msg?.role !== 'user') continue;
    const texts = asArray(msg.parts)
      .slice(0, LIMITS.items)
      .flatMap((p) => {
        const part = asObject(p);
        const t = part?.type === 'text' ? text(part.content) : null;
        return t ? [t] : [];
      });
    if (texts.length) return texts.join(' ');
  }
  return null;
}

/**
 * A message part of the GenAI conventions as content: text and reasoning as text, a tool call
 * with its id, name and arguments, a tool's response with its id; other kinds are left out.
 * The messages came through jsonText, so every value here is storable already.
 */
function partOf(part: Record<string, unknown> | null): Record<string, unknown> | null {
  const id = str(part?.id as Json, 256);
  switch (part?.type) {
    case 'text':
    case 'reasoning': {
      const t = text(part.content);
      return t ? { type: part.type, text: t } : null;
    }
    case 'tool_call':
      return { type: 'tool_call', ...(id && { id }), name: str(part.name as Json, 256), ...(part.arguments !== undefined && { arguments: jsonText(part.arguments as Json) ?? null }) };
    case 'tool_call_response':
      return { type: 'tool_call_response', ...(id && { id }), ...(part.response !== undefined && { response: jsonText(part.response as Json) ?? null }) };
    default:
      return null;
  }
}

function attributesOf(
  { span, attrs, resource, scopeName }: SpanInput,
  ids: { traceId: string; spanId: string; parentSpanId: string | null; startNanos: string; durationMs: number | null },
): Record<string, unknown> {
  const out: Record<string, unknown> = {
    trace_id: ids.traceId,
    span_id: ids.spanId,
    ...(ids.parentSpanId && { parent_span_id: ids.parentSpanId }),
    span_name: text(span.name, 512) ?? '',
    start_time_unix_nano: ids.startNanos,
    ...(ids.durationMs !== null && { duration_ms: ids.durationMs }),
    ...(typeof resource['service.name'] === 'string' && { 'service.name': resource['service.name'] }),
    ...(scopeName && { 'otel.scope.name': scopeName }),
  };
  const budget = { ...ATTRIBUTE_BUDGET };
  let dropped = 0;
  for (const [k, raw] of Object.entries(attrs)) {
    if (!k.startsWith('gen_ai.') && !KEPT_ATTRIBUTES.includes(k)) continue;
    const v = MESSAGE_ATTRIBUTES.has(k) ? (jsonText(raw) ?? null) : raw;
    const chars = JSON.stringify(v).length;
    const values = valueCount(v);
    if (chars > budget.chars || values > budget.values) {
      dropped++;
      continue;
    }
    budget.chars -= chars;
    budget.values -= values;
    out[k] = v;
  }
  if (dropped) out['otel.dropped_attributes'] = dropped;
  return out;
}

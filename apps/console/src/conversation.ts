/**
 * A session's stored events read as a conversation: turns, each opened by the user's message, with
 * the assistant's messages (streamed deltas joined), tool calls (call → answer), handoffs, errors,
 * model calls and how the turn ended. Three kinds of event land in a session and each is read as
 * far as it says: runtime chat events (their whole data in `attributes['tessera.payload']`),
 * outside agents' events (`POST /events`) and OpenTelemetry spans (`trace_id` / `span_id`).
 * Every event is referenced by exactly one item: what is not understood is a generic `event` item.
 */
import type { StoredEvent } from './types';

export interface Tokens {
  input: number;
  output: number;
  cacheRead?: number;
  cacheWrite?: number;
  reasoning?: number;
}

interface Base {
  /** `<kind>:<seq of its first event>`, unique in the session. */
  id: string;
  /** The events this item stands for, in the order received. */
  events: StoredEvent[];
  /** When it began (epoch ms). */
  at: number;
  /** Its place in an OpenTelemetry trace tree (ancestor spans in the turn); 0 elsewhere. */
  depth: number;
}
export interface MessageItem extends Base {
  kind: 'message';
  role: string;
  agent: string | null;
  text: string;
  /** A streamed message whose last part has not arrived yet. */
  open: boolean;
}
export interface ToolItem extends Base {
  kind: 'tool';
  name: string;
  callId: string | null;
  /** undefined: the call itself was not seen (an answer without its call). */
  args: unknown;
  answer: unknown;
  outcome: 'pending' | 'answered' | 'dismissed' | 'failed';
  /** Why it was dismissed, or its error. */
  note: string | null;
  end: number | null;
}
export interface HandoffItem extends Base {
  kind: 'handoff';
  from: string | null;
  to: string | null;
}
export interface ErrorItem extends Base {
  kind: 'error';
  code: string | null;
  message: string;
}
export interface ModelItem extends Base {
  kind: 'model';
  model: string | null;
  provider: string | null;
  agent: string | null;
  tokens: Tokens | null;
  /**
   * When the call ended. The runtime reports a call once it is over: it began when the step
   * before it ended (the turn's start, the previous call, a tool's answer), and `at` says so.
   */
  end: number;
  /** What the call answered, when only the call says it (an OpenTelemetry chat span). */
  text: string | null;
  error: string | null;
}
export interface EndItem extends Base {
  kind: 'end';
  status: string;
  reason: string | null;
}
export interface GenericItem extends Base {
  kind: 'event';
  label: string;
  text: string | null;
  error: string | null;
}
export type Item = MessageItem | ToolItem | HandoffItem | ErrorItem | ModelItem | EndItem | GenericItem;

export interface Turn {
  id: string;
  items: Item[];
  start: number;
  /** The end reported (run_complete, an agent span), else the last thing seen. */
  end: number;
  /** How it ended, as reported (completed, failed, stopped, awaiting_input, …); null while none says. */
  status: string | null;
  /** A turn opened by the answer to a tool call of an earlier turn: that tool's name. */
  resumedBy: string | null;
  /** OpenTelemetry: the user's message as the first model call's input gives it (no event of its own). */
  prompt: string | null;
}

type Data = Record<string, unknown>;
const obj = (v: unknown): Data | null => (v && typeof v === 'object' && !Array.isArray(v) ? (v as Data) : null);
const str = (v: unknown): string | null => (typeof v === 'string' ? v : null);
const int = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);
const timeOf = (e: StoredEvent) => {
  const t = Date.parse(e.timestamp);
  return Number.isNaN(t) ? 0 : t;
};

/** The text parts of an event's content, joined. */
export function contentText(e: StoredEvent): string {
  return (e.content ?? [])
    .map((c) => (typeof c.text === 'string' ? c.text : ''))
    .filter(Boolean)
    .join('\n');
}

/** gen_ai.usage.* of an event (runtime, outside agents and OpenTelemetry all write them). */
function tokensOf(a: Data): Tokens | null {
  const input = int(a['gen_ai.usage.input_tokens']);
  const output = int(a['gen_ai.usage.output_tokens']);
  if (input === undefined && output === undefined) return null;
  const t: Tokens = { input: input ?? 0, output: output ?? 0 };
  const parts = { cacheRead: 'gen_ai.usage.cache_read.input_tokens', cacheWrite: 'gen_ai.usage.cache_creation.input_tokens', reasoning: 'gen_ai.usage.reasoning.output_tokens' } as const;
  for (const [k, attr] of Object.entries(parts)) {
    const n = int(a[attr]);
    if (n !== undefined) t[k as keyof typeof parts] = n;
  }
  return t;
}

const MODEL_OPERATIONS = new Set(['chat', 'text_completion', 'generate_content']);
const AGENT_OPERATIONS = new Set(['invoke_agent', 'invoke_workflow', 'create_agent']);

class ConversationBuilder {
  readonly turns: Turn[] = [];
  private current: Turn | null = null;
  /** Runtime messages by message_id, tool calls by tool_call_id and event_id: found in whichever turn they began. */
  private readonly messages = new Map<string, MessageItem>();
  private readonly tools = new Map<string, ToolItem>();
  /** Outside agents' pre_tool calls awaiting their post_tool, by tool name, oldest first. */
  private readonly pendingByName = new Map<string, ToolItem[]>();
  private readonly traces = new Map<string, Turn>();
  /** Where the current turn's next model call began (see ModelItem.end). */
  private stepStart = 0;
  /** The answer to an earlier turn's tool call that the next turn continues from. */
  private resume: { at: number; tool: string } | null = null;

  add(e: StoredEvent): void {
    const payload = obj(e.attributes?.['tessera.payload']);
    if (payload) return this.runtime(e, payload);
    const a = e.attributes ?? {};
    if (typeof a.trace_id === 'string' && typeof a.span_id === 'string') return this.otel(e, a, a.trace_id);
    this.external(e);
  }

  private open(at: number, resumedBy: string | null = null): Turn {
    const t: Turn = { id: `turn:${this.turns.length + 1}`, items: [], start: at, end: at, status: null, resumedBy, prompt: null };
    this.turns.push(t);
    this.current = t;
    this.stepStart = at;
    this.resume = null;
    return t;
  }
  private turn(at: number): Turn {
    if (this.current) return this.current;
    return this.resume ? this.open(this.resume.at, this.resume.tool) : this.open(at);
  }
  /** Where a model call reported at `at` began: the end of the step before it in its turn. */
  private stepFrom(at: number): number {
    this.turn(at);
    return Math.min(this.stepStart, at);
  }
  private push<T extends Item>(item: T, turn = this.turn(item.at)): T {
    turn.items.push(item);
    return item;
  }
  private generic(e: StoredEvent, label: string, text: string | null = null): void {
    this.push({ kind: 'event', id: `event:${e.seq}`, events: [e], at: timeOf(e), depth: 0, label, text, error: e.error });
  }
  private answered(tool: ToolItem, e: StoredEvent, answer: unknown, at: number): void {
    tool.events.push(e);
    tool.answer = answer;
    tool.outcome = e.error ? 'failed' : 'answered';
    tool.note = e.error;
    tool.end = at;
    if (this.current?.items.includes(tool)) this.stepStart = at;
    // A turn that ended awaiting this answer is continued by the next one.
    else if (!this.current) this.resume = { at, tool: tool.name };
  }

  private runtime(e: StoredEvent, p: Data): void {
    const at = timeOf(e);
    const callId = str(p.tool_call_id);
    const eventId = str(p.event_id);
    const findTool = () => (callId ? this.tools.get(callId) : undefined) ?? (eventId ? this.tools.get(eventId) : undefined);
    switch (e.event_type) {
      case 'chat.text': {
        const id = str(p.message_id);
        const whole = p.done === true ? str(p.content) : null;
        const known = id ? this.messages.get(id) : undefined;
        if (known) {
          known.events.push(e);
          known.text = whole ?? known.text + (str(p.delta) ?? '');
          if (p.done === true) known.open = false;
          return;
        }
        const role = str(p.role) ?? e.role ?? 'assistant';
        if (role === 'user') this.open(at);
        const m = this.push<MessageItem>({
          kind: 'message',
          id: `message:${e.seq}`,
          events: [e],
          at,
          depth: 0,
          role,
          agent: role === 'user' ? null : (str(p.agent) ?? e.agent_name),
          text: whole ?? str(p.delta) ?? contentText(e),
          open: p.done !== true && id !== null,
        });
        if (id) this.messages.set(id, m);
        return;
      }
      case 'chat.tool_call': {
        const t = this.push<ToolItem>({ kind: 'tool', id: `tool:${e.seq}`, events: [e], at, depth: 0, name: str(p.tool_name) ?? e.tool_name ?? 'tool', callId, args: p.payload ?? e.tool_input, answer: undefined, outcome: 'pending', note: null, end: null });
        if (callId) this.tools.set(callId, t);
        if (eventId) this.tools.set(eventId, t);
        return;
      }
      case 'chat.tool_call_complete':
      case 'chat.tool_response': {
        const answer = e.event_type === 'chat.tool_response' ? (p.content ?? e.tool_output) : (p.response ?? e.tool_output);
        const known = findTool();
        if (known) return this.answered(known, e, answer, at);
        const t = this.push<ToolItem>({ kind: 'tool', id: `tool:${e.seq}`, events: [], at, depth: 0, name: str(p.tool_name) ?? e.tool_name ?? 'tool', callId, args: undefined, answer: undefined, outcome: 'pending', note: null, end: null });
        if (callId) this.tools.set(callId, t);
        return this.answered(t, e, answer, at);
      }
      case 'chat.tool_call_dismiss': {
        const known = findTool();
        if (!known) return this.generic(e, 'tool call dismissed', str(p.reason));
        known.events.push(e);
        known.outcome = 'dismissed';
        known.note = str(p.reason) ?? e.reason;
        known.end = at;
        return;
      }
      case 'chat.custom_event': {
        const data = obj(p.payload) ?? {};
        if (p.kind === 'handoff') {
          this.push<HandoffItem>({ kind: 'handoff', id: `handoff:${e.seq}`, events: [e], at, depth: 0, from: str(data.from), to: str(data.to) });
          this.stepStart = at;
          return;
        }
        return this.generic(e, str(p.kind) ?? 'custom event', JSON.stringify(data));
      }
      case 'chat.usage_delta': {
        const tokens = tokensOf(e.attributes) ?? { input: int(p.prompt_tokens) ?? 0, output: int(p.completion_tokens) ?? 0 };
        this.push<ModelItem>({ kind: 'model', id: `model:${e.seq}`, events: [e], at: this.stepFrom(at), depth: 0, model: str(p.model) ?? e.model, provider: str(p.provider), agent: str(p.agent) ?? e.agent_name, tokens, end: at, text: null, error: null });
        this.stepStart = at;
        return;
      }
      case 'chat.error':
        return void this.push<ErrorItem>({ kind: 'error', id: `error:${e.seq}`, events: [e], at, depth: 0, code: str(p.error_code), message: str(p.message) ?? e.error ?? 'error' });
      case 'chat.run_complete': {
        const turn = this.turn(at);
        const status = str(p.status) ?? 'completed';
        this.push<EndItem>({ kind: 'end', id: `end:${e.seq}`, events: [e], at, depth: 0, status, reason: str(p.reason) ?? e.reason }, turn);
        turn.status = status;
        turn.end = at;
        this.current = null;
        return;
      }
      case 'chat.usage_summary':
        return this.generic(e, 'tokens so far', `${int(p.prompt_tokens) ?? 0} in / ${int(p.completion_tokens) ?? 0} out`);
      case 'chat.print':
        return this.generic(e, 'print', str(p.content));
      default:
        return this.generic(e, e.event_type, contentText(e) || null);
    }
  }

  private external(e: StoredEvent): void {
    const at = timeOf(e);
    const tokens = tokensOf(e.attributes ?? {});
    switch (e.event_type) {
      case 'message': {
        const role = e.role ?? 'assistant';
        if (role === 'user') this.open(at);
        this.push<MessageItem>({ kind: 'message', id: `message:${e.seq}`, events: [e], at, depth: 0, role, agent: role === 'user' ? null : e.agent_name, text: contentText(e), open: false });
        return;
      }
      case 'pre_tool': {
        const name = e.tool_name ?? 'tool';
        const t = this.push<ToolItem>({ kind: 'tool', id: `tool:${e.seq}`, events: [e], at, depth: 0, name, callId: null, args: e.tool_input, answer: undefined, outcome: 'pending', note: null, end: null });
        this.pendingByName.set(name, [...(this.pendingByName.get(name) ?? []), t]);
        return;
      }
      case 'post_tool': {
        const name = e.tool_name ?? 'tool';
        const known = this.pendingByName.get(name)?.shift();
        if (known) return this.answered(known, e, e.tool_output, at);
        const t = this.push<ToolItem>({ kind: 'tool', id: `tool:${e.seq}`, events: [], at, depth: 0, name, callId: null, args: undefined, answer: undefined, outcome: 'pending', note: null, end: null });
        return this.answered(t, e, e.tool_output, at);
      }
      case 'session_start':
        return this.generic(e, 'session started');
      case 'session_stop':
        return this.generic(e, 'session stopped', e.reason);
      default:
        if (tokens) {
          this.push<ModelItem>({ kind: 'model', id: `model:${e.seq}`, events: [e], at: this.stepFrom(at), depth: 0, model: e.model ?? str(e.attributes['gen_ai.request.model']), provider: str(e.attributes['gen_ai.provider.name']), agent: e.agent_name, tokens, end: at, text: contentText(e) || null, error: e.error });
          this.stepStart = at;
          return;
        }
        if (e.event_type === 'error' && e.error) return void this.push<ErrorItem>({ kind: 'error', id: `error:${e.seq}`, events: [e], at, depth: 0, code: e.exit_code === null ? null : `exit ${e.exit_code}`, message: e.error });
        return this.generic(e, e.event_type, contentText(e) || e.reason || null);
    }
  }

  /** One span: a turn is a trace (its spans may arrive in any order, late ones join it). */
  private otel(e: StoredEvent, a: Data, traceId: string): void {
    let turn = this.traces.get(traceId);
    if (!turn) {
      turn = this.open(timeOf(e));
      this.traces.set(traceId, turn);
    }
    const nanos = str(a.start_time_unix_nano);
    const at = nanos && /^\d+$/.test(nanos) ? Number(BigInt(nanos) / 1000n) / 1000 : timeOf(e);
    const end = at + (int(a.duration_ms) ?? 0);
    const operation = str(a['gen_ai.operation.name']) ?? e.event_type;
    const base = { events: [e], at, depth: 0 };
    if (MODEL_OPERATIONS.has(operation)) {
      this.push<ModelItem>({ kind: 'model', id: `model:${e.seq}`, ...base, model: e.model, provider: str(a['gen_ai.provider.name']) ?? str(a['gen_ai.system']), agent: e.agent_name, tokens: tokensOf(a), end, text: contentText(e) || null, error: e.error }, turn);
    } else if (operation === 'execute_tool') {
      this.push<ToolItem>({ kind: 'tool', id: `tool:${e.seq}`, ...base, name: e.tool_name ?? 'tool', callId: str(a['gen_ai.tool.call.id']), args: e.tool_input, answer: e.tool_output, outcome: e.error ? 'failed' : 'answered', note: e.error, end }, turn);
    } else {
      const label = AGENT_OPERATIONS.has(operation) ? `${operation}${e.agent_name ? ` · ${e.agent_name}` : ''}` : str(a.span_name) || operation;
      this.push<GenericItem>({ kind: 'event', id: `event:${e.seq}`, ...base, label, text: contentText(e) || null, error: e.error }, turn);
      // A trace's root span ends last: the turn is over, and how it went is the root's.
      if (typeof a.parent_span_id !== 'string') {
        turn.status = e.error ? 'failed' : 'completed';
        turn.end = Math.max(turn.end, end);
      }
    }
  }

  finish(): Turn[] {
    for (const t of this.turns) {
      const spans = t.items.some((i) => typeof i.events[0]?.attributes?.span_id === 'string');
      if (spans) arrangeTrace(t);
      for (const i of t.items) t.start = Math.min(t.start, i.at);
      if (t.status !== null && !spans) continue;
      for (const i of t.items) {
        for (const e of i.events) t.end = Math.max(t.end, timeOf(e));
        if ('end' in i && i.end !== null) t.end = Math.max(t.end, i.end);
      }
    }
    return this.turns;
  }
}

/** A trace's items in the order they started, each as deep as its ancestor spans; the prompt from its first model call. */
function arrangeTrace(t: Turn): void {
  t.items.sort((x, y) => x.at - y.at);
  const parents = new Map<string, string | null>();
  for (const i of t.items) {
    const a = i.events[0]?.attributes ?? {};
    if (typeof a.span_id === 'string') parents.set(a.span_id, typeof a.parent_span_id === 'string' ? a.parent_span_id : null);
  }
  for (const i of t.items) {
    let depth = 0;
    for (let p = parents.get(String(i.events[0]?.attributes?.span_id)); p && parents.has(p) && depth < 64; p = parents.get(p)) depth++;
    i.depth = depth;
  }
  for (const i of t.items) {
    const prompt = lastUserMessage(i.events[0]?.attributes?.['gen_ai.input.messages']);
    if (prompt !== null) {
      t.prompt = prompt;
      break;
    }
  }
}

/** The last user message of gen_ai.input.messages (`[{role, parts: [{type: 'text', content}]}]`, or `content` as text). */
export function lastUserMessage(messages: unknown): string | null {
  if (!Array.isArray(messages)) return null;
  for (let i = messages.length - 1; i >= 0; i--) {
    const m = obj(messages[i]);
    if (m?.role !== 'user') continue;
    if (typeof m.content === 'string') return m.content;
    const parts = Array.isArray(m.parts) ? m.parts : [];
    const text = parts.map((p) => (obj(p)?.type === 'text' ? (str(obj(p)!.content) ?? '') : '')).join('');
    if (text) return text;
  }
  return null;
}

/** A session's events, in the order stored, as turns. */
export function toConversation(events: readonly StoredEvent[]): Turn[] {
  const b = new ConversationBuilder();
  for (const e of events) b.add(e);
  return b.finish();
}

/** Time of a turn spent in model calls and tools, as bars over the turn (fractions of it). */
export interface Bar {
  item: ModelItem | ToolItem;
  offset: number;
  width: number;
  ms: number;
}
export function waterfall(t: Turn): Bar[] {
  const span = Math.max(1, t.end - t.start);
  return t.items.flatMap((i) => {
    if (i.kind !== 'model' && i.kind !== 'tool') return [];
    const end = Math.min(i.end ?? t.end, t.end);
    const from = Math.max(t.start, Math.min(i.at, end));
    return [{ item: i, offset: (from - t.start) / span, width: Math.max(0, end - from) / span, ms: i.end === null ? end - from : i.end - i.at }];
  });
}

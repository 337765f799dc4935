import fc from 'fast-check';
import { toConversation, waterfall, type Item, type ModelItem, type ToolItem, type Turn } from './conversation';
import type { StoredEvent } from './types';

const T0 = Date.parse('2026-12-06T10:00:00.000Z');
let seq = 0;
beforeEach(() => void (seq = 0));

/** A stored event with observability's defaults: what the HTTP API and the live socket return. */
function stored(type: string, at: number, fields: Partial<StoredEvent> = {}): StoredEvent {
  seq++;
  return {
    seq,
    session_id: 's-1',
    event_type: type,
    event_id: null,
    timestamp: new Date(T0 + at).toISOString(),
    received_at: new Date(T0 + at).toISOString(),
    agent_name: null,
    model: null,
    tool_name: null,
    error: null,
    exit_code: null,
    reason: null,
    role: null,
    content: null,
    attributes: {},
    ...fields,
  };
}

/** A runtime chat event as observability stores it (apps/observability/src/domain/runtime-events.ts). */
function rt(type: string, at: number, d: Record<string, unknown>): StoredEvent {
  const text = type === 'chat.text' ? String(d.done ? d.content : d.delta) : null;
  const usage =
    type === 'chat.usage_delta'
      ? { 'gen_ai.usage.input_tokens': d.prompt_tokens, 'gen_ai.usage.output_tokens': d.completion_tokens, 'gen_ai.request.model': d.model }
      : {};
  return stored(type, at, {
    event_id: `rt:${seq + 1}`,
    agent_name: d.role === 'user' ? null : ((d.agent as string) ?? null),
    tool_name: (d.tool_name as string) ?? null,
    tool_input: type === 'chat.tool_call' ? d.payload : undefined,
    tool_output: type === 'chat.tool_call_complete' ? d.response : undefined,
    error: type === 'chat.error' ? String(d.message) : null,
    role: (d.role as string) ?? null,
    content: text === null ? null : [{ type: 'text', text }],
    attributes: { 'gen_ai.conversation.id': 's-1', ...usage, 'tessera.payload': d },
  });
}

/** A message streamed as the engine streams it: deltas, then an empty delta with done and the whole content. */
function streamed(id: string, agent: string, pieces: string[], at: number, step = 10): StoredEvent[] {
  return [
    ...pieces.map((delta, i) => rt('chat.text', at + i * step, { message_id: id, agent, role: 'assistant', delta, done: false })),
    rt('chat.text', at + pieces.length * step, { message_id: id, agent, role: 'assistant', delta: '', done: true, content: pieces.join('') }),
  ];
}
const user = (id: string, text: string, at: number) => rt('chat.text', at, { message_id: `${id}:user`, agent: 'user', role: 'user', delta: text, done: true, content: text });
const usage = (at: number, input: number, output: number, agent = 'concierge') => rt('chat.usage_delta', at, { prompt_tokens: input, completion_tokens: output, total_tokens: input + output, agent, model: 'scripted-1', provider: 'scripted' });
const runComplete = (at: number, status: string, turn = 'in-1') => rt('chat.run_complete', at, { turn_id: turn, status });

const shape = (turns: Turn[]) =>
  turns.map((t) => ({
    status: t.status,
    items: t.items.map((i) => (i.kind === 'message' ? `${i.role}: ${i.text}` : i.kind === 'tool' ? `tool ${i.name} ${i.outcome}` : i.kind === 'end' ? `end ${i.status}` : i.kind === 'model' ? `model ${i.model} ${i.tokens?.input}/${i.tokens?.output}` : i.kind === 'handoff' ? `handoff ${i.from}→${i.to}` : i.kind === 'error' ? `error ${i.code}: ${i.message}` : `${i.label}${i.text ? `: ${i.text}` : ''}`)),
  }));
const referenced = (turns: Turn[]) => turns.flatMap((t) => t.items.flatMap((i: Item) => i.events.map((e) => e.seq)));

describe('runtime chats', () => {
  it('reads a turn with a UI tool as the user, one message per message_id, the tool with its question and answer, and the next turn continuing from the answer', () => {
    const reply = 'Happy to help with that. First, one quick question.';
    const events = [
      user('in-1', 'I need help', 0),
      ...streamed('in-1:m1', 'concierge', reply.split(/(?<= )/), 100),
      usage(300, 120, 12),
      rt('chat.tool_call', 310, { event_id: 'in-1:tc1', tool_call_id: 'call_1', tool_name: 'ask_user', component: 'UserInputRequest', agent: 'concierge', payload: { question: 'What name should I call you?' }, awaiting_response: true, interaction_type: 'input_request', display: 'composer' }),
      rt('chat.usage_summary', 320, { prompt_tokens: 120, completion_tokens: 12, total_tokens: 132, turns: 1 }),
      runComplete(330, 'awaiting_input'),
      rt('chat.tool_call_complete', 5_330, { event_id: 'in-1:tc1', tool_call_id: 'call_1', tool_name: 'ask_user', response: { answer: 'Ada' } }),
      ...streamed('in-2:m1', 'concierge', ['Nice to meet you, ', 'Ada!'], 5_400),
      usage(5_500, 150, 8),
      runComplete(5_510, 'completed', 'in-2'),
    ];
    const turns = toConversation(events);
    expect(shape(turns)).toEqual([
      { status: 'awaiting_input', items: ['user: I need help', `assistant: ${reply}`, 'model scripted-1 120/12', 'tool ask_user answered', 'tokens so far: 120 in / 12 out', 'end awaiting_input'] },
      { status: 'completed', items: ['assistant: Nice to meet you, Ada!', 'model scripted-1 150/8', 'end completed'] },
    ]);
    const tool = turns[0].items[3] as ToolItem;
    expect(tool).toMatchObject({ args: { question: 'What name should I call you?' }, answer: { answer: 'Ada' }, at: T0 + 310, end: T0 + 5_330 });
    expect(turns[1]).toMatchObject({ resumedBy: 'ask_user', start: T0 + 5_330, end: T0 + 5_510 });
    expect(turns[0]).toMatchObject({ start: T0, end: T0 + 330 });
    // The model call began with the turn and ended when it reported its tokens.
    expect(turns[0].items[2]).toMatchObject({ at: T0, end: T0 + 300, agent: 'concierge' });
    // The second turn's model call began at the answer.
    expect(turns[1].items[1]).toMatchObject({ at: T0 + 5_330, end: T0 + 5_500 });
    expect(referenced(turns).sort((a, b) => a - b)).toEqual(events.map((e) => e.seq));
  });

  it('reads a handoff, a second agent’s message, an error and a failed turn', () => {
    const events = [
      user('in-1', 'a billing question', 0),
      ...streamed('in-1:m1', 'triage', ['I will transfer ', 'you.'], 10),
      usage(50, 40, 6, 'triage'),
      rt('chat.custom_event', 60, { kind: 'handoff', payload: { from: 'triage', to: 'specialist' } }),
      ...streamed('in-1:m2', 'specialist', ['Your invoice ', 'is paid.'], 70),
      usage(120, 60, 5, 'specialist'),
      rt('chat.error', 130, { error_code: 'MODEL_ERROR', message: 'Model call failed (scripted): boom' }),
      runComplete(140, 'failed'),
    ];
    const turns = toConversation(events);
    expect(shape(turns)).toEqual([
      {
        status: 'failed',
        items: ['user: a billing question', 'assistant: I will transfer you.', 'model scripted-1 40/6', 'handoff triage→specialist', 'assistant: Your invoice is paid.', 'model scripted-1 60/5', 'error MODEL_ERROR: Model call failed (scripted): boom', 'end failed'],
      },
    ]);
    expect((turns[0].items[4] as { agent: string }).agent).toBe('specialist');
    // The specialist's call began at the handoff.
    expect(turns[0].items[5]).toMatchObject({ at: T0 + 60, end: T0 + 120 });
  });

  it('keeps a message still streaming open, and a turn without its end unfinished', () => {
    const turns = toConversation([user('in-1', 'tell me a story', 0), ...streamed('in-1:m1', 'narrator', ['Once ', 'upon ', 'a time'], 10).slice(0, 3)]);
    expect(turns).toHaveLength(1);
    expect(turns[0].status).toBeNull();
    expect(turns[0].items[1]).toMatchObject({ kind: 'message', text: 'Once upon a time', open: true });
    expect(turns[0].end).toBe(T0 + 30);
  });

  it('shows what it does not know as a generic event, and an answer to an unseen call as a tool of its own', () => {
    const turns = toConversation([
      user('in-1', 'hi', 0),
      rt('chat.attachment_uploaded', 5, { attachment_id: 'a1', filename: 'x.txt' }),
      rt('chat.custom_event', 6, { kind: 'checkpoint', payload: { step: 2 } }),
      rt('chat.tool_call_complete', 7, { event_id: 'e-9', tool_call_id: 'call_9', tool_name: 'lookup', response: { ok: true } }),
      rt('chat.tool_call_dismiss', 8, { event_id: 'e-10', tool_call_id: 'call_10', reason: 'chat stopped' }),
    ]);
    expect(shape(turns)[0].items).toEqual(['user: hi', 'chat.attachment_uploaded', 'checkpoint: {"step":2}', 'tool lookup answered', 'tool call dismissed: chat stopped']);
    expect(turns[0].items[3]).toMatchObject({ args: undefined, answer: { ok: true } });
  });
});

describe('outside agents (POST /events)', () => {
  it('pairs pre_tool and post_tool by tool name in order, and a user message opens each turn', () => {
    const events = [
      stored('session_start', 0, { agent_name: 'claude-code' }),
      stored('message', 10, { role: 'user', content: [{ type: 'text', text: 'fix the build' }] }),
      stored('pre_tool', 20, { tool_name: 'Bash', tool_input: { command: 'npm test' } }),
      stored('pre_tool', 25, { tool_name: 'Read', tool_input: { file: 'a.ts' } }),
      stored('pre_tool', 30, { tool_name: 'Bash', tool_input: { command: 'npm run lint' } }),
      stored('post_tool', 40, { tool_name: 'Bash', tool_output: '3 failed', error: 'exit 1', exit_code: 1 }),
      stored('post_tool', 45, { tool_name: 'Read', tool_output: 'export {}' }),
      stored('post_tool', 50, { tool_name: 'Bash', tool_output: 'clean' }),
      stored('message', 60, { role: 'assistant', agent_name: 'claude-code', content: [{ type: 'text', text: 'Three tests fail.' }] }),
      stored('notification', 65, { reason: 'waiting for input' }),
      stored('message', 70, { role: 'user', content: [{ type: 'text', text: 'thanks' }] }),
      stored('session_stop', 80, { reason: 'user quit' }),
    ];
    const turns = toConversation(events);
    expect(shape(turns)).toEqual([
      { status: null, items: ['session started'] },
      { status: null, items: ['user: fix the build', 'tool Bash failed', 'tool Read answered', 'tool Bash answered', 'assistant: Three tests fail.', 'notification: waiting for input'] },
      { status: null, items: ['user: thanks', 'session stopped: user quit'] },
    ]);
    const [first, read, second] = turns[1].items.slice(1, 4) as ToolItem[];
    expect([first.args, first.answer, first.note, first.end! - first.at]).toEqual([{ command: 'npm test' }, '3 failed', 'exit 1', 20]);
    expect([read.args, read.answer]).toEqual([{ file: 'a.ts' }, 'export {}']);
    expect([second.args, second.answer, second.end! - second.at]).toEqual([{ command: 'npm run lint' }, 'clean', 20]);
    expect(turns[1]).toMatchObject({ start: T0 + 10, end: T0 + 65 });
  });

  it('counts an event with usage as a model call', () => {
    const turns = toConversation([
      stored('message', 0, { role: 'user', content: [{ type: 'text', text: 'q' }] }),
      stored('llm_call', 900, { model: 'gpt-4o-mini', attributes: { 'gen_ai.usage.input_tokens': 30, 'gen_ai.usage.output_tokens': 4, 'gen_ai.usage.cache_read.input_tokens': 10 } }),
    ]);
    expect(turns[0].items[1]).toMatchObject({ kind: 'model', model: 'gpt-4o-mini', tokens: { input: 30, output: 4, cacheRead: 10 }, at: T0, end: T0 + 900 });
  });
});

describe('OpenTelemetry sessions', () => {
  const span = (op: string, id: string, parent: string | null, start: number, ms: number, fields: Partial<StoredEvent> = {}, attrs: Record<string, unknown> = {}) =>
    stored(op, start, {
      ...fields,
      attributes: { trace_id: 't1', span_id: id, ...(parent && { parent_span_id: parent }), span_name: `${op} span`, start_time_unix_nano: String(BigInt(T0 + start) * 1_000_000n), duration_ms: ms, 'gen_ai.operation.name': op, ...attrs },
    });

  it('reads a trace as a turn: spans in the order they started (the root arrives last), nested, the prompt from the model call’s input', () => {
    const input = [{ role: 'system', parts: [{ type: 'text', content: 'be brief' }] }, { role: 'user', parts: [{ type: 'text', content: 'weather in Paris?' }] }];
    const events = [
      span('chat', 'c1', 'a1', 10, 400, { model: 'gpt-4o', role: 'assistant', content: [{ type: 'tool_call', name: 'weather' }] }, { 'gen_ai.input.messages': input, 'gen_ai.usage.input_tokens': 50, 'gen_ai.usage.output_tokens': 9 }),
      span('execute_tool', 'x1', 'a1', 420, 80, { tool_name: 'weather', tool_input: { city: 'Paris' }, tool_output: { c: 21 } }),
      span('chat', 'c2', 'a1', 510, 300, { model: 'gpt-4o', role: 'assistant', content: [{ type: 'text', text: 'It is 21 °C.' }] }, { 'gen_ai.usage.input_tokens': 70, 'gen_ai.usage.output_tokens': 8 }),
      span('invoke_agent', 'a1', null, 0, 820, { agent_name: 'Weather' }),
    ];
    const [turn, ...rest] = toConversation(events);
    expect(rest).toEqual([]);
    expect(turn).toMatchObject({ prompt: 'weather in Paris?', status: 'completed', start: T0, end: T0 + 820 });
    expect(shape([turn])[0].items).toEqual(['invoke_agent · Weather', 'model gpt-4o 50/9', 'tool weather answered', 'model gpt-4o 70/8']);
    expect(turn.items.map((i) => i.depth)).toEqual([0, 1, 1, 1]);
    expect((turn.items[3] as ModelItem).text).toBe('It is 21 °C.');
    expect(waterfall(turn).map((b) => [b.item.kind, b.offset, b.width])).toEqual([
      ['model', 10 / 820, 400 / 820],
      ['tool', 420 / 820, 80 / 820],
      ['model', 510 / 820, 300 / 820],
    ]);
  });

  it('is running until its root span arrives; a failed root fails the turn', () => {
    expect(toConversation([span('chat', 'c1', 'a1', 0, 10)])[0].status).toBeNull();
    const failed = toConversation([span('invoke_agent', 'a1', null, 0, 10, { error: 'rate limited' })]);
    expect(failed[0].status).toBe('failed');
  });
});

describe('properties', () => {
  it('joins any split of a text into deltas back into the text, one message, with or without the closing content', () => {
    fc.assert(
      fc.property(fc.string({ minLength: 1 }), fc.array(fc.nat(), { maxLength: 12 }), fc.boolean(), (text, cuts, closed) => {
        seq = 0;
        const at = [...new Set(cuts.map((c) => c % (text.length + 1)))].sort((a, b) => a - b);
        const pieces = [0, ...at, text.length].slice(1).map((end, i, ends) => text.slice(i === 0 ? 0 : ends[i - 1], end));
        const events = streamed('m1', 'a', pieces, 0);
        if (!closed) events.pop();
        const turns = toConversation([user('in-1', 'go', 0), ...events]);
        const messages = turns.flatMap((t) => t.items).filter((i) => i.kind === 'message' && i.role === 'assistant');
        expect(messages).toHaveLength(1);
        expect(messages[0]).toMatchObject({ text, open: !closed });
      }),
    );
  });

  /** Any mix of the three kinds of events, in any order, some of them unknown to the reader. */
  const anyEvent = fc.oneof(
    fc.record({ type: fc.constantFrom('chat.text', 'chat.text', 'chat.text', 'chat.tool_call', 'chat.tool_call', 'chat.tool_call_complete', 'chat.tool_response', 'chat.tool_call_dismiss', 'chat.custom_event', 'chat.usage_delta', 'chat.error', 'chat.run_complete', 'chat.usage_summary', 'chat.weird'), id: fc.constantFrom('a', 'b', 'c'), role: fc.constantFrom('user', 'assistant'), done: fc.boolean(), kind: fc.constantFrom('handoff', 'other') }).map(
      (r) => (at: number) => rt(r.type, at, { message_id: r.id, tool_call_id: r.id, event_id: r.id, role: r.role, delta: 'x', done: r.done, content: 'xx', kind: r.kind, payload: {}, status: 'completed', tool_name: 't' }),
    ),
    fc.record({ type: fc.constantFrom('message', 'pre_tool', 'post_tool', 'session_start', 'session_stop', 'error', 'custom'), tool: fc.constantFrom('A', 'B'), role: fc.constantFrom('user', 'assistant'), error: fc.option(fc.constant('bad')), usage: fc.boolean() }).map(
      (r) => (at: number) => stored(r.type, at, { tool_name: r.tool, role: r.role, error: r.error, attributes: r.usage ? { 'gen_ai.usage.input_tokens': 1 } : {} }),
    ),
    fc.record({ op: fc.constantFrom('chat', 'execute_tool', 'invoke_agent', 'span'), trace: fc.constantFrom('t1', 't2'), span: fc.constantFrom('s1', 's2', 's3', 's4'), parent: fc.option(fc.constantFrom('s1', 's2', 's3', 's4')) }).map(
      (r) => (at: number) => stored(r.op, at, { attributes: { trace_id: r.trace, span_id: r.span, ...(r.parent && { parent_span_id: r.parent }), 'gen_ai.operation.name': r.op, duration_ms: 5 } }),
    ),
  );

  it('loses no event: every event is referenced by exactly one item, whatever the mix and order', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(anyEvent, fc.integer({ min: 0, max: 10_000 })), { minLength: 1, maxLength: 80, size: 'medium' }), (made) => {
        seq = 0;
        const events = made.map(([make, at]) => make(at));
        const turns = toConversation(events);
        expect(referenced(turns).sort((a, b) => a - b)).toEqual(events.map((e) => e.seq));
        for (const t of turns) {
          expect(t.end).toBeGreaterThanOrEqual(t.start);
          for (const b of waterfall(t)) {
            expect(b.offset).toBeGreaterThanOrEqual(0);
            expect(b.offset + b.width).toBeLessThanOrEqual(1 + 1e-9);
          }
        }
      }),
      { numRuns: 300 },
    );
  });

  it('opens one turn per user message of a runtime chat, each starting with that message', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.string({ minLength: 1, maxLength: 20 }), fc.array(fc.string({ minLength: 1, maxLength: 5 }), { minLength: 1, maxLength: 5 }), fc.constantFrom('completed', 'failed', 'stopped')), { minLength: 1, maxLength: 6 }), (chat) => {
        seq = 0;
        let at = 0;
        const events = chat.flatMap(([said, reply, status], n) => [user(`in-${n}`, said, (at += 10)), ...streamed(`in-${n}:m1`, 'a', reply, (at += 10)), usage((at += 100), 1, 1), runComplete((at += 10), status, `in-${n}`)]);
        const turns = toConversation(events);
        expect(turns.map((t) => [t.items[0], t.items[1], t.status])).toEqual(
          chat.map(([said, reply, status]) => [expect.objectContaining({ role: 'user', text: said }), expect.objectContaining({ role: 'assistant', text: reply.join('') }), status]),
        );
      }),
    );
  });
});

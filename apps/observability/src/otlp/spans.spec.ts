import { JSON_LIMITS, jsonProblems } from '@tessera/contracts';
import fc from 'fast-check';
import type { OtlpTraceRequest } from './decode';
import { spansToEvents, usageBelow } from './spans';

const TRACE = '0af7651916cd43dd8448eb211c80319c';
const ROOT = 'b7ad6b7169203331';
const CHAT = '00f067aa0ba902b7';
const TOOL = '53995c3f42cd8ad8';
const T0 = 1_764_000_000_000; // ms

type Attr = string | number | boolean | { kv: unknown } | unknown[];
const value = (v: Attr): unknown =>
  typeof v === 'string'
    ? { stringValue: v }
    : typeof v === 'boolean'
      ? { boolValue: v }
      : typeof v === 'number'
        ? Number.isInteger(v)
          ? { intValue: String(v) }
          : { doubleValue: v }
        : Array.isArray(v)
          ? { arrayValue: { values: v.map((x) => value(x as Attr)) } }
          : v.kv;
const attrs = (a: Record<string, Attr>) => Object.entries(a).map(([key, v]) => ({ key, value: value(v) }));

function span(spanId: string, name: string, a: Record<string, Attr>, over: Record<string, unknown> = {}) {
  const offset = { [ROOT]: 0, [CHAT]: 10, [TOOL]: 500 }[spanId] ?? 0;
  return {
    traceId: TRACE,
    spanId,
    ...(spanId !== ROOT && { parentSpanId: ROOT }),
    name,
    kind: 1,
    startTimeUnixNano: String(BigInt(T0 + offset) * 1_000_000n),
    endTimeUnixNano: String(BigInt(T0 + offset + 250) * 1_000_000n + 500n),
    attributes: attrs(a),
    status: {},
    ...over,
  };
}

function request(spans: unknown[], resource: Record<string, Attr> = { 'service.name': 'support-bot' }): OtlpTraceRequest {
  return { resourceSpans: [{ resource: { attributes: attrs(resource) }, scopeSpans: [{ scope: { name: 'agent-sdk' }, spans }] }] };
}

/** An agent run by the GenAI conventions, in the order an exporter sends it (children end first). */
const agentRun = () => [
  span(CHAT, 'chat gpt-4o', {
    'gen_ai.operation.name': 'chat',
    'gen_ai.request.model': 'gpt-4o',
    'gen_ai.response.model': 'gpt-4o-2024-08-06',
    'gen_ai.usage.input_tokens': 120,
    'gen_ai.usage.output_tokens': 30,
    'gen_ai.output.messages': JSON.stringify([{ role: 'assistant', parts: [{ type: 'text', content: 'Let me look that up.' }, { type: 'tool_call', id: 'call_1', name: 'lookup' }] }]),
    'http.url': 'https://api.example/v1/chat',
  }),
  span(TOOL, 'execute_tool lookup', {
    'gen_ai.operation.name': 'execute_tool',
    'gen_ai.tool.name': 'lookup',
    'gen_ai.tool.call.id': 'call_1',
    'gen_ai.tool.call.arguments': '{"order":"A-17"}',
    'gen_ai.tool.call.result': '{"status":"shipped"}',
  }),
  span(ROOT, 'invoke_agent Support', {
    'gen_ai.operation.name': 'invoke_agent',
    'gen_ai.agent.name': 'Support',
    'gen_ai.conversation.id': 'conv-42',
    'gen_ai.usage.input_tokens': 120,
    'gen_ai.usage.output_tokens': 30,
  }),
];

describe('spansToEvents', () => {
  it('turns a GenAI agent run into one session: an event per span in start order, usage counted once', () => {
    const { events, rejected } = spansToEvents(request(agentRun()), '*');
    expect(rejected).toBe(0);
    expect(events.map((e) => [e.eventType, e.eventId, e.sessionId])).toEqual([
      ['invoke_agent', ROOT, 'conv-42'],
      ['chat', CHAT, 'conv-42'],
      ['execute_tool', TOOL, 'conv-42'],
    ]);
    const [agent, chat, tool] = events;
    // The agent's span sums its chat's tokens: they count once, on the chat.
    expect(agent).toMatchObject({ source: 'otel', agentName: 'Support', sessionName: 'Support', usage: null, status: 'finished', timestamp: new Date(T0), error: null });
    expect(chat).toMatchObject({
      usage: { input: 120, output: 30 },
      model: 'gpt-4o-2024-08-06',
      sessionName: null,
      role: 'assistant',
      content: [
        { type: 'text', text: 'Let me look that up.' },
        { type: 'tool_call', id: 'call_1', name: 'lookup' },
      ],
    });
    expect(chat.status).toBeUndefined();
    expect(tool.model).toBeNull();
    expect(tool).toMatchObject({ toolName: 'lookup', toolInput: { order: 'A-17' }, toolOutput: { status: 'shipped' } });
    expect(chat.attributes).toEqual({
      trace_id: TRACE,
      span_id: CHAT,
      parent_span_id: ROOT,
      span_name: 'chat gpt-4o',
      start_time_unix_nano: String(BigInt(T0 + 10) * 1_000_000n),
      duration_ms: 250,
      'service.name': 'support-bot',
      'otel.scope.name': 'agent-sdk',
      'gen_ai.operation.name': 'chat',
      'gen_ai.request.model': 'gpt-4o',
      'gen_ai.response.model': 'gpt-4o-2024-08-06',
      'gen_ai.usage.input_tokens': 120,
      'gen_ai.usage.output_tokens': 30,
      'gen_ai.output.messages': [{ role: 'assistant', parts: [{ type: 'text', content: 'Let me look that up.' }, { type: 'tool_call', id: 'call_1', name: 'lookup' }] }],
    });
  });

  it("keeps every kind of message part a model call reports: text, reasoning, tool calls with their arguments, tool results", () => {
    const output = [
      { role: 'assistant', parts: [{ type: 'reasoning', content: 'The user wants an order.' }, { type: 'tool_call', id: 'c1', name: 'lookup', arguments: { order: 'A-17' } }, { type: 'tool_call', name: 'audit', arguments: '{"n":1}' }, { type: 'image', uri: 'x' }] },
    ];
    const input = [{ role: 'tool', parts: [{ type: 'tool_call_response', id: 'c0', response: { ok: true } }] }];
    const [e] = spansToEvents(request([span(CHAT, 'chat', { 'gen_ai.operation.name': 'chat', 'gen_ai.output.messages': JSON.stringify(output), 'gen_ai.input.messages': JSON.stringify(input) })]), '*').events;
    expect(e.content).toEqual([
      { type: 'reasoning', text: 'The user wants an order.' },
      { type: 'tool_call', id: 'c1', name: 'lookup', arguments: { order: 'A-17' } },
      { type: 'tool_call', name: 'audit', arguments: { n: 1 } },
    ]);
    // The messages stay in the attributes too, as JSON rather than text.
    expect(e.attributes).toMatchObject({ 'gen_ai.input.messages': input, 'gen_ai.output.messages': output });
  });

  it("counts an agent span's tokens only when no span below it reports any", () => {
    const agentOnly = agentRun().map((s) => (s.spanId === CHAT ? { ...s, attributes: s.attributes.filter((a) => !a.key.startsWith('gen_ai.usage.')) } : s));
    const { events, aggregateUsage } = spansToEvents(request(agentOnly), '*');
    expect(events.map((e) => [e.eventType, e.usage])).toEqual([
      ['invoke_agent', { input: 120, output: 30 }],
      ['chat', null],
      ['execute_tool', null],
    ]);
    // Provisional: a span below it sent in an earlier export may still report tokens.
    expect(aggregateUsage).toEqual([events[0]]);

    const links = [
      { spanId: 'agent', parentSpanId: null, reportsUsage: true },
      { spanId: 'inner', parentSpanId: 'agent', reportsUsage: false },
      { spanId: 'chat', parentSpanId: 'inner', reportsUsage: true },
      { spanId: 'loop-a', parentSpanId: 'loop-b', reportsUsage: false },
      { spanId: 'loop-b', parentSpanId: 'loop-a', reportsUsage: false },
    ];
    expect(usageBelow('agent', links)).toBe(true); // a grandchild
    expect(usageBelow('inner', links)).toBe(true);
    expect(usageBelow('chat', links)).toBe(false);
    expect(usageBelow('loop-a', links)).toBe(false); // a cycle ends
  });

  it('names the session after its agent, else after the root span of a trace without one', () => {
    const [agent] = spansToEvents(request([span(ROOT, 'invoke_agent', { 'gen_ai.operation.name': 'invoke_agent' })]), '*').events;
    expect(agent.sessionName).toBe('invoke_agent');
    const plain = spansToEvents(request([span(ROOT, 'POST /support', {}), span(CHAT, 'chat', { 'gen_ai.operation.name': 'chat' })]), '*').events;
    expect(plain.map((e) => e.sessionName)).toEqual(['POST /support', null]);
    const withAgent = spansToEvents(request([span(ROOT, 'POST /support', {}), span(CHAT, 'agent', { 'gen_ai.operation.name': 'invoke_agent', 'gen_ai.agent.name': 'Support' })]), '*').events;
    expect(withAgent.map((e) => e.sessionName)).toEqual([null, 'Support']);
  });

  it('groups a trace by the conversation id one of its spans carries, else by the resource, else by the trace', () => {
    const onlyRoot = spansToEvents(request(agentRun().map((s) => (s.spanId === ROOT ? s : { ...s, attributes: s.attributes.filter((a) => a.key !== 'gen_ai.conversation.id') }))), '*');
    expect(new Set(onlyRoot.events.map((e) => e.sessionId))).toEqual(new Set(['conv-42']));

    const byResource = spansToEvents(request([span(CHAT, 'chat', {})], { 'gen_ai.conversation.id': 'conv-r' }), '*');
    expect(byResource.events[0].sessionId).toBe('conv-r');

    const byTrace = spansToEvents(request([span(CHAT, 'GET /orders', {})]), '*');
    expect(byTrace.events[0]).toMatchObject({ sessionId: `otel:${TRACE}`, eventType: 'span' });
  });

  it('reads the Vercel AI SDK spans and OpenInference span kinds', () => {
    const vercel = spansToEvents(
      request([
        span(ROOT, 'ai.generateText', { 'ai.operationId': 'ai.generateText', 'ai.telemetry.functionId': 'support-chat', 'ai.telemetry.metadata.sessionId': 'thread-9', 'ai.usage.promptTokens': 99 }),
        span(CHAT, 'ai.generateText.doGenerate', { 'ai.operationId': 'ai.generateText.doGenerate', 'ai.telemetry.metadata.sessionId': 'thread-9', 'gen_ai.usage.input_tokens': 7, 'gen_ai.usage.output_tokens': 3, 'ai.response.text': 'Hi!' }),
        span(TOOL, 'ai.toolCall', { 'ai.operationId': 'ai.toolCall', 'ai.telemetry.metadata.sessionId': 'thread-9', 'ai.toolCall.name': 'weather', 'ai.toolCall.args': '{"city":"Oslo"}', 'ai.toolCall.result': '"sunny"' }),
      ]),
      '*',
    );
    expect(vercel.events.map((e) => [e.eventType, e.sessionId, e.agentName])).toEqual([
      ['invoke_agent', 'thread-9', 'support-chat'],
      ['chat', 'thread-9', null],
      ['execute_tool', 'thread-9', null],
    ]);
    expect(vercel.events[0].usage).toBeNull();
    expect(vercel.events[1]).toMatchObject({ usage: { input: 7, output: 3 }, content: [{ type: 'text', text: 'Hi!' }] });
    expect(vercel.events[2]).toMatchObject({ toolName: 'weather', toolInput: { city: 'Oslo' }, toolOutput: '"sunny"' });

    const oi = spansToEvents(request([span(CHAT, 'ChatCompletion', { 'openinference.span.kind': 'LLM', 'session.id': 's-1', 'llm.token_count.prompt': 5, 'llm.token_count.completion': 2 })]), '*');
    expect(oi.events[0]).toMatchObject({ eventType: 'chat', sessionId: 's-1', usage: { input: 5, output: 2 } });
  });

  it('reports failures from the span status and from exception events', () => {
    const failed = span(CHAT, 'chat', {}, { status: { code: 2, message: 'rate limited' } });
    const thrown = span(TOOL, 'tool', {}, { events: [{ name: 'exception', attributes: attrs({ 'exception.type': 'TypeError', 'exception.message': 'x is undefined' }) }] });
    const named = span(ROOT, 'agent', {}, { status: { code: 'STATUS_CODE_ERROR' } });
    const { events } = spansToEvents(request([failed, thrown, named]), '*');
    expect(events.map((e) => e.error)).toEqual(['error', 'rate limited', 'TypeError: x is undefined']);
  });

  it('takes the app from tessera.app_id within what the key may write, and rejects spans of other apps', () => {
    const run = (resource: Record<string, Attr>, scope: '*' | string[]) => spansToEvents(request([span(CHAT, 'chat', {})], resource), scope);
    expect(run({ 'tessera.app_id': 'shop' }, '*').events[0].appId).toBe('shop');
    expect(run({}, '*').events[0].appId).toBeNull();
    expect(run({}, ['shop']).events[0].appId).toBe('shop');
    expect(run({ 'tessera.app_id': 'shop' }, ['shop']).events[0].appId).toBe('shop');
    const other = run({ 'tessera.app_id': 'bank' }, ['shop']);
    expect(other).toMatchObject({ events: [], rejected: 1, reasons: ['tessera.app_id "bank" is not an app this key may write'] });
  });

  it('rejects a span without usable ids or start time, keeps the rest, and says why', () => {
    const spans = [
      span(CHAT, 'ok', {}),
      span('0000000000000000', 'zero span id', {}),
      { ...span(TOOL, 'bad trace', {}), traceId: 'xyz' },
      { ...span(TOOL, 'no start', {}), startTimeUnixNano: undefined },
      { ...span(TOOL, 'epoch', {}), startTimeUnixNano: '0' },
      'not a span',
      null,
    ];
    const { events, rejected, reasons } = spansToEvents(request(spans), '*');
    expect(events.map((e) => e.attributes.span_name)).toEqual(['ok']);
    expect(rejected).toBe(6);
    expect(reasons).toEqual([
      'a span is not an object',
      'spanId must be 8 bytes, not all zero (16 hex characters)',
      'traceId must be 16 bytes, not all zero (32 hex characters)',
      'startTimeUnixNano must be a time in nanoseconds since the epoch',
    ]);
  });

  it('accepts base64 ids (protobuf JSON mapping) and numeric timestamps', () => {
    const s = { ...span(CHAT, 'b64', {}), traceId: Buffer.from(TRACE, 'hex').toString('base64'), spanId: Buffer.from(CHAT, 'hex').toString('base64'), startTimeUnixNano: T0 * 1e6 };
    const [e] = spansToEvents(request([s]), '*').events;
    expect(e).toMatchObject({ eventId: CHAT, sessionId: `otel:${TRACE}`, timestamp: new Date(T0) });
  });

  it('makes hostile text storable and bounds what it keeps', () => {
    const big = Array.from({ length: 100_000 }, (_, i) => i);
    const deep = Array.from({ length: 1_000 }).reduce<unknown>((inner) => ({ kvlistValue: { values: [{ key: 'k', value: inner }] } }), { stringValue: 'bottom' });
    const many = Array.from({ length: 50_000 }, (_, i) => ({ key: `gen_ai.x${i}`, value: { stringValue: 'v' } }));
    const s = span(
      CHAT,
      'na\u0000me',
      {
        'gen_ai.conversation.id': 'conv\u0000\uD800',
        'gen_ai.agent.name': 'a'.repeat(10_000),
        'gen_ai.big': big,
        'gen_ai.deep': { kv: deep },
        'gen_ai.long': 'x'.repeat(1_000_000),
        'gen_ai.usage.input_tokens': '99999999999999999999',
        'gen_ai.usage.output_tokens': -5,
      },
      {},
    );
    s.attributes.push(...many, { key: 'ke\u0000y', value: { stringValue: 'nul\u0000' } } as never, { nokey: true } as never, 17 as never);
    const { events, rejected } = spansToEvents(request([s]), '*');
    expect(rejected).toBe(0);
    const [e] = events;
    expect(e.sessionId).toBe('conv\uFFFD\uFFFD');
    expect(e.agentName).toBeNull(); // longer than a name may be
    expect(e.usage).toBeNull();
    expect(e.attributes.span_name).toBe('na\uFFFDme');
    expect(e.attributes['gen_ai.big']).toHaveLength(128);
    expect(JSON.stringify(e.attributes['gen_ai.deep'])).toContain('[nested too deep]');
    expect(e.attributes['gen_ai.long']).toMatch(/^x{32768}…\[967232 more characters\]$/);
    expect(Object.keys(e.attributes).length).toBeLessThan(140);
    expect(jsonProblems(e.attributes, JSON_LIMITS)).toEqual([]);
  });

  it('never throws and only produces storable events, whatever the request holds', () => {
    const anyAttr = fc.record({ key: fc.oneof(fc.string(), fc.anything()), value: fc.anything() }, { requiredKeys: [] });
    const anySpan = fc.oneof(
      fc.anything(),
      fc.record(
        {
          traceId: fc.oneof(fc.constant(TRACE), fc.string(), fc.anything()),
          spanId: fc.oneof(fc.constant(CHAT), fc.string(), fc.anything()),
          parentSpanId: fc.oneof(fc.constant(ROOT), fc.anything()),
          name: fc.oneof(fc.string(), fc.anything()),
          startTimeUnixNano: fc.oneof(fc.constant('1764000000000000000'), fc.bigInt({ min: 0n, max: 2n ** 70n }).map(String), fc.anything()),
          endTimeUnixNano: fc.anything(),
          attributes: fc.oneof(fc.array(anyAttr), fc.anything()),
          events: fc.oneof(fc.array(fc.record({ name: fc.constant('exception'), attributes: fc.array(anyAttr) })), fc.anything()),
          status: fc.anything(),
        },
        { requiredKeys: [] },
      ),
    );
    const anyRequest = fc.record({ resourceSpans: fc.array(fc.record({ resource: fc.anything(), scopeSpans: fc.oneof(fc.array(fc.record({ scope: fc.anything(), spans: fc.array(anySpan) })), fc.anything()) })) });
    fc.assert(
      fc.property(anyRequest, fc.constantFrom<'*' | string[]>('*', ['shop']), (req, scope) => {
        const { events, rejected } = spansToEvents(req as OtlpTraceRequest, scope);
        for (const e of events) {
          expect(e.sessionId.length).toBeGreaterThan(0);
          expect(e.sessionId.length).toBeLessThanOrEqual(256);
          expect(e.eventId).toMatch(/^[0-9a-f]{16}$/);
          expect(Number.isNaN(e.timestamp.getTime())).toBe(false);
          for (const field of [e.attributes, e.content, e.toolInput, e.toolOutput, e.error, e.agentName, e.toolName, e.userId, e.model, e.sessionName]) expect(jsonProblems(field, JSON_LIMITS)).toEqual([]);
        }
        expect(rejected).toBeGreaterThanOrEqual(0);
      }),
      { numRuns: 300 },
    );
  });
});

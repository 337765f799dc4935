import { context, SpanStatusCode, trace, type Span } from '@opentelemetry/api';
import { JsonTraceSerializer, ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { InMemorySpanExporter, SimpleSpanProcessor, TracerProvider } from '@opentelemetry/sdk-trace';
import { decodeTraceRequest, encodeTraceResponse, encodingOf } from './decode';
import { spansToEvents } from './spans';

/** Spans made by the real SDK, serialized by the real exporters' serializers: what a receiver gets. */
async function sdkSpans() {
  const exporter = new InMemorySpanExporter();
  const provider = new TracerProvider({
    resource: resourceFromAttributes({ 'service.name': 'support-bot', 'tessera.app_id': 'shop' }),
    spanProcessors: [new SimpleSpanProcessor({ exporter })],
  });
  const tracer = provider.getTracer('decode-spec');
  const ids: Record<string, string> = {};
  tracer.startActiveSpan('invoke_agent Support', { attributes: { 'gen_ai.operation.name': 'invoke_agent', 'gen_ai.agent.name': 'Support', 'gen_ai.conversation.id': 'conv-7' } }, (agent: Span) => {
    ids.agent = agent.spanContext().spanId;
    const ctx = trace.setSpan(context.active(), agent);
    const chat = tracer.startSpan('chat', { attributes: { 'gen_ai.operation.name': 'chat', 'gen_ai.usage.input_tokens': 2 ** 40, 'gen_ai.usage.output_tokens': 9, 'gen_ai.request.temperature': 0.25, 'gen_ai.response.finish_reasons': ['stop', 'length'], 'gen_ai.x.flag': true } }, ctx);
    ids.chat = chat.spanContext().spanId;
    chat.recordException(new RangeError('too long'));
    chat.setStatus({ code: SpanStatusCode.ERROR, message: 'context overflow' });
    chat.end();
    agent.end();
  });
  await provider.forceFlush();
  ids.trace = exporter.getFinishedSpans()[0].spanContext().traceId;
  return { spans: exporter.getFinishedSpans(), ids };
}

describe('decodeTraceRequest', () => {
  it('reads what the real protobuf and JSON serializers write, to the same events', async () => {
    const { spans, ids } = await sdkSpans();
    const proto = Buffer.from(ProtobufTraceSerializer.serializeRequest(spans)!);
    const json = Buffer.from(JsonTraceSerializer.serializeRequest(spans)!);

    const fromProto = spansToEvents(decodeTraceRequest('protobuf', proto), '*');
    const fromJson = spansToEvents(decodeTraceRequest('json', json), '*');
    const fromParsed = spansToEvents(decodeTraceRequest('json', JSON.parse(json.toString())), '*');
    expect(fromProto.rejected).toBe(0);
    expect(fromJson).toEqual(fromProto);
    expect(fromParsed).toEqual(fromProto);

    const [agent, chat] = fromProto.events;
    expect(agent).toMatchObject({ eventType: 'invoke_agent', eventId: ids.agent, sessionId: 'conv-7', agentName: 'Support', appId: 'shop', status: 'finished' });
    expect(chat).toMatchObject({ eventType: 'chat', eventId: ids.chat, sessionId: 'conv-7', appId: 'shop', usage: { input: 2 ** 40, output: 9 }, error: 'context overflow' });
    expect(chat.attributes).toMatchObject({
      trace_id: ids.trace,
      span_id: ids.chat,
      parent_span_id: ids.agent,
      'service.name': 'support-bot',
      'otel.scope.name': 'decode-spec',
      'gen_ai.request.temperature': 0.25,
      'gen_ai.response.finish_reasons': ['stop', 'length'],
      'gen_ai.x.flag': true,
    });
  });

  it('refuses bodies that are no ExportTraceServiceRequest with a 400', () => {
    const bad: [Parameters<typeof decodeTraceRequest>[0], unknown][] = [
      ['protobuf', Buffer.from([0x0a, 0xff, 0x01])], // a field longer than the body
      ['protobuf', Buffer.from([0x0f])], // wire type 7 does not exist
      ['protobuf', { resourceSpans: [] }],
      ['json', Buffer.from('{"resourceSpans": ')],
      ['json', Buffer.from('[]')],
      ['json', { resourceSpans: 5 }],
      ['json', { resourceSpans: ['x'] }],
      ['json', { resourceSpans: [{ scopeSpans: {} }] }],
      ['json', { resourceSpans: [{ scopeSpans: [{ spans: 'no' }] }] }],
    ];
    for (const [encoding, body] of bad) expect(() => decodeTraceRequest(encoding, body)).toThrow(expect.objectContaining({ status: 400 }));
  });

  it('takes an empty request, and unknown fields, as nothing to store', () => {
    expect(decodeTraceRequest('protobuf', Buffer.alloc(0))).toEqual({ resourceSpans: [] });
    expect(decodeTraceRequest('json', Buffer.from('{"somethingElse": 1}'))).toEqual({ resourceSpans: [] });
  });
});

describe('encodingOf', () => {
  it('knows OTLP/HTTP media types and nothing else', () => {
    expect(encodingOf('application/x-protobuf')).toBe('protobuf');
    expect(encodingOf('application/json; charset=utf-8')).toBe('json');
    expect(encodingOf('Application/JSON')).toBe('json');
    expect(encodingOf('text/plain')).toBeNull();
    expect(encodingOf(undefined)).toBeNull();
  });
});

describe('encodeTraceResponse', () => {
  it('answers in the request encoding, with partialSuccess only when spans were rejected', () => {
    expect(encodeTraceResponse('json', null)).toEqual({});
    expect(encodeTraceResponse('json', { rejectedSpans: 2, errorMessage: 'bad ids' })).toEqual({ partialSuccess: { rejectedSpans: '2', errorMessage: 'bad ids' } });
    const empty = encodeTraceResponse('protobuf', { rejectedSpans: 0, errorMessage: '' }) as Buffer;
    expect(empty.length).toBe(0);
    const partial = encodeTraceResponse('protobuf', { rejectedSpans: 2, errorMessage: 'bad ids' }) as Buffer;
    // The exporters' own deserializer reads it back.
    expect(ProtobufTraceSerializer.deserializeResponse(partial)).toEqual({ partialSuccess: { rejectedSpans: 2, errorMessage: 'bad ids' } });
  });
});

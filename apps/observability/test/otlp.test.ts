import { execFile } from 'node:child_process';
import { request as httpRequest } from 'node:http';
import { gzipSync } from 'node:zlib';
import { ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer';
import { http, KEY_APP1, KEY_APP2, observabilityForThisFile, ROOT, SERVICE_KEY, sid, type Instance } from './harness';

let obs: Instance;
let op: string;
observabilityForThisFile('otlp', (o, token) => ([obs, op] = [o, token]));

/**
 * An agent instrumented with OpenTelemetry, as its own process (the exporters load node:http
 * with a dynamic import, which jest's module sandbox refuses): the real SDK records a run,
 * invoke_agent → chat (with usage) → execute_tool (failed), and the real OTLP exporters send the
 * same spans once per entry of `exports`, reporting what each export returned to the SDK.
 */
const AGENT = `
const { context, trace, SpanStatusCode } = require('@opentelemetry/api');
const { TracerProvider, InMemorySpanExporter, SimpleSpanProcessor } = require('@opentelemetry/sdk-trace');
const { resourceFromAttributes } = require('@opentelemetry/resources');
const { ProtobufTraceSerializer, JsonTraceSerializer } = require('@opentelemetry/otlp-transformer');
const exporters = { json: require('@opentelemetry/exporter-trace-otlp-http').OTLPTraceExporter, protobuf: require('@opentelemetry/exporter-trace-otlp-proto').OTLPTraceExporter };
(async () => {
  const opts = JSON.parse(process.argv[1]);
  const memory = new InMemorySpanExporter();
  const provider = new TracerProvider({ resource: resourceFromAttributes(opts.resource), spanProcessors: [new SimpleSpanProcessor({ exporter: memory })] });
  const tracer = provider.getTracer('otlp-test-agent');
  const conv = opts.conv ? { 'gen_ai.conversation.id': opts.conv } : {};
  const agent = tracer.startSpan('invoke_agent Support', { attributes: { 'gen_ai.operation.name': 'invoke_agent', 'gen_ai.agent.name': 'Support', ...conv } });
  const inAgent = trace.setSpan(context.active(), agent);
  const chat = tracer.startSpan('chat gpt-4o', { attributes: { 'gen_ai.operation.name': 'chat', 'gen_ai.request.model': 'gpt-4o', ...conv } }, inAgent);
  chat.setAttributes({ 'gen_ai.usage.input_tokens': 120, 'gen_ai.usage.output_tokens': 30, 'gen_ai.response.model': 'gpt-4o-2024-08-06' });
  chat.end();
  const tool = tracer.startSpan('execute_tool lookup_order', { attributes: { 'gen_ai.operation.name': 'execute_tool', 'gen_ai.tool.name': 'lookup_order', 'gen_ai.tool.call.id': 'call_1', 'gen_ai.tool.call.arguments': '{"order":"A-17"}', ...conv } }, inAgent);
  tool.setStatus({ code: SpanStatusCode.ERROR, message: 'order service timed out' });
  tool.end();
  agent.end();
  await provider.forceFlush();
  const spans = memory.getFinishedSpans();
  const results = [];
  for (const e of opts.exports) {
    const exporter = new exporters[e.encoding]({ url: opts.url, headers: e.headers, compression: e.gzip ? 'gzip' : 'none' });
    const r = await new Promise((resolve) => exporter.export(spans, resolve));
    results.push({ code: r.code, ...(r.error && { error: String(r.error.message) }) });
    await exporter.shutdown();
  }
  process.stdout.write(JSON.stringify({
    spans: spans.map((s) => ({ name: s.name, spanId: s.spanContext().spanId, traceId: s.spanContext().traceId })),
    results,
    protobuf: Buffer.from(ProtobufTraceSerializer.serializeRequest(spans)).toString('base64'),
    json: Buffer.from(JsonTraceSerializer.serializeRequest(spans)).toString(),
  }));
})().catch((e) => { console.error(e); process.exit(1); });
`;

interface Run {
  spans: { name: string; spanId: string; traceId: string }[];
  /** ExportResult per export: code 0 is SUCCESS, 1 FAILED. */
  results: { code: number; error?: string }[];
  /** The run as the exporters' serializers write it, for requests made by hand. */
  protobuf: string;
  json: string;
}

interface ExportSpec {
  encoding: 'json' | 'protobuf';
  headers: Record<string, string>;
  gzip?: boolean;
}

const byKey = (key: string = KEY_APP1) => ({ 'x-ingest-key': key });

function agentRun(conv: string | null, exports: ExportSpec[] = [], resource: Record<string, string> = { 'service.name': 'support-bot' }): Promise<Run> {
  const opts = JSON.stringify({ url: `${obs.url}/v1/traces`, conv, resource, exports });
  return new Promise((resolve, reject) =>
    execFile(process.execPath, ['-e', AGENT, opts], { cwd: ROOT, timeout: 30_000 }, (err, stdout, stderr) => (err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(JSON.parse(stdout)))),
  );
}

/** A raw POST, bytes in and out (the response may be protobuf). */
function post(body: Buffer, headers: Record<string, string>): Promise<{ status: number; type: string; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const u = new URL(obs.url);
    const req = httpRequest({ hostname: u.hostname, port: u.port, path: '/v1/traces', method: 'POST', agent: false, headers: { 'content-length': String(body.length), ...headers } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type']), body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** `appId`: which of the operator's apps, when both have a session of this id. */
async function sessionAndEvents(id: string, appId?: string) {
  const q = appId === undefined ? '' : `?app_id=${appId}`;
  const session = await http(obs.url, 'GET', `/sessions/${encodeURIComponent(id)}${q}`, { token: op });
  const events = await http(obs.url, 'GET', `/events/${encodeURIComponent(id)}${q}`, { token: op });
  return { session, events: events.body.events as Record<string, any>[] };
}

function expectTheRun(s: Awaited<ReturnType<typeof sessionAndEvents>>, { spans }: Run, appId: string) {
  const id = (name: string) => spans.find((x) => x.name.startsWith(name))!.spanId;
  expect(s.session.status).toBe(200);
  expect(s.session.body).toMatchObject({
    source: 'otel',
    agent_name: 'Support',
    app_id: appId,
    status: 'finished',
    event_count: 3,
    usage: { input_tokens: 120, output_tokens: 30, total_tokens: 150 },
    error_count: 1,
  });
  expect(s.events.map((e) => [e.seq, e.event_type, e.event_id])).toEqual([
    [1, 'invoke_agent', id('invoke_agent')],
    [2, 'chat', id('chat')],
    [3, 'execute_tool', id('execute_tool')],
  ]);
  expect(s.events[0]).toMatchObject({ agent_name: 'Support', attributes: { 'gen_ai.agent.name': 'Support', 'service.name': 'support-bot', trace_id: spans[0].traceId } });
  expect(s.events[1].attributes).toMatchObject({ 'gen_ai.usage.input_tokens': 120, 'gen_ai.response.model': 'gpt-4o-2024-08-06', parent_span_id: id('invoke_agent') });
  expect(s.events[2]).toMatchObject({ tool_name: 'lookup_order', tool_input: { order: 'A-17' }, error: 'order service timed out' });
}

const SUCCESS = { code: 0 };

describe('POST /v1/traces', () => {
  it('stores a run sent by the real OTLP/JSON exporter as one session, and a re-export stores nothing twice', async () => {
    const conv = sid('conv-json');
    const run = await agentRun(conv, [{ encoding: 'json', headers: byKey() }]);
    expect(run.results).toEqual([SUCCESS]);
    expectTheRun(await sessionAndEvents(conv), run, 'app1');

    const again = await post(Buffer.from(run.json), { 'content-type': 'application/json', ...byKey() });
    expect(again.status).toBe(200);
    expect(JSON.parse(again.body.toString())).toEqual({});
    expectTheRun(await sessionAndEvents(conv), run, 'app1');
  });

  it('stores a run sent by the real protobuf exporter (gzip) the same way; the same spans again, by either exporter, are duplicates', async () => {
    const conv = sid('conv-proto');
    const run = await agentRun(conv, [
      { encoding: 'protobuf', headers: byKey(), gzip: true },
      { encoding: 'protobuf', headers: byKey() },
      { encoding: 'json', headers: byKey(), gzip: true },
    ]);
    expect(run.results).toEqual([SUCCESS, SUCCESS, SUCCESS]);
    expectTheRun(await sessionAndEvents(conv), run, 'app1');
  });

  it('groups spans without gen_ai.conversation.id by trace, and takes the app from tessera.app_id under the service key', async () => {
    const run = await agentRun(null, [{ encoding: 'protobuf', headers: { 'x-tessera-service-key': SERVICE_KEY } }], { 'service.name': 'support-bot', 'tessera.app_id': 'app2' });
    expect(run.results).toEqual([SUCCESS]);
    expectTheRun(await sessionAndEvents(`otel:${run.spans[0].traceId}`), run, 'app2');
  });

  it("answers partialSuccess for spans it cannot store, in the request's encoding, and stores the rest", async () => {
    const conv = sid('conv-partial');
    const run = await agentRun(conv);
    const json = JSON.parse(run.json);
    const list = json.resourceSpans[0].scopeSpans[0].spans;
    list.push({ ...list[0], spanId: 'not-an-id' }, { ...list[0], spanId: 'aaaaaaaaaaaaaaaa', startTimeUnixNano: 'soon' }, { ...list[0], spanId: 'bbbbbbbbbbbbbbbb', name: 'nul \u0000 name' });
    const r = await post(Buffer.from(JSON.stringify(json)), { 'content-type': 'application/json', ...byKey() });
    expect(r.status).toBe(200);
    expect(JSON.parse(r.body.toString())).toEqual({
      partialSuccess: { rejectedSpans: '2', errorMessage: 'spanId must be 8 bytes, not all zero (16 hex characters); startTimeUnixNano must be a time in nanoseconds since the epoch' },
    });
    const stored = (await sessionAndEvents(conv)).events;
    expect(stored.map((e) => e.attributes.span_name).sort()).toEqual(['chat gpt-4o', 'execute_tool lookup_order', 'invoke_agent Support', 'nul \uFFFD name']);

    // Another app's key cannot add to app1's session: the same conversation id under app2's key is
    // app2's own session (answered in protobuf), and app1's is as it was.
    const other = await post(Buffer.from((await agentRun(conv)).protobuf, 'base64'), { 'content-type': 'application/x-protobuf', ...byKey(KEY_APP2) });
    expect(other).toMatchObject({ status: 200, type: 'application/x-protobuf' });
    expect(ProtobufTraceSerializer.deserializeResponse(other.body).partialSuccess?.rejectedSpans ?? 0).toBe(0);
    expect((await sessionAndEvents(conv, 'app1')).events).toHaveLength(4);
    expect((await sessionAndEvents(conv, 'app2')).events).toHaveLength(3);
  });

  it('refuses what is not an OTLP export with a 4xx, never a 5xx, and the exporter hears of it', async () => {
    const conv = sid('conv-refused');
    const run = await agentRun(conv, [{ encoding: 'protobuf', headers: byKey('not-a-key-0123456789') }]);
    expect(run.results).toEqual([{ code: 1, error: 'Unauthorized' }]);
    const proto = Buffer.from(run.protobuf, 'base64');
    const cases: [string, Buffer, Record<string, string>, number][] = [
      ['no key', proto, { 'content-type': 'application/x-protobuf' }, 401],
      ['a wrong key', proto, { 'content-type': 'application/x-protobuf', ...byKey('not-a-key-0123456789') }, 401],
      ['text', Buffer.from('hello'), { 'content-type': 'text/plain', ...byKey() }, 415],
      ['no content type', proto, byKey(), 415],
      ['a truncated protobuf', proto.subarray(0, proto.length - 7), { 'content-type': 'application/x-protobuf', ...byKey() }, 400],
      ['a wire type that does not exist', Buffer.from([0x17, 0x00]), { 'content-type': 'application/x-protobuf', ...byKey() }, 400],
      ['gzip that is not', Buffer.from('not gzip'), { 'content-type': 'application/x-protobuf', 'content-encoding': 'gzip', ...byKey() }, 400],
      ['broken JSON', Buffer.from('{"resourceSpans": ['), { 'content-type': 'application/json', ...byKey() }, 400],
      ['JSON of another shape', Buffer.from('{"resourceSpans": {"spans": 1}}'), { 'content-type': 'application/json', ...byKey() }, 400],
      ['over 8mb once inflated', gzipSync(Buffer.alloc(9 * 1024 * 1024)), { 'content-type': 'application/x-protobuf', 'content-encoding': 'gzip', ...byKey() }, 413],
    ];
    for (const [what, body, headers, status] of cases) {
      const r = await post(body, headers);
      expect({ what, status: r.status }).toEqual({ what, status });
      expect(JSON.parse(r.body.toString())).toEqual({ error: expect.objectContaining({ code: expect.any(String), message: expect.any(String) }) });
    }
    // Nothing of it was stored.
    expect((await sessionAndEvents(conv)).session.status).toBe(404);
    expect((await http(obs.url, 'GET', '/health')).status).toBe(200);
  });
});

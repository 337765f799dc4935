/**
 * OpenTelemetry sessions that add up: an agent traced with the official SDK and its default
 * BatchSpanProcessor sends one run in several exports (spans go as they end, children first). The
 * session its conversation id names must hold the whole run, counted once, whichever export
 * carried the id, and no provisional `otel:<trace id>` session may be left behind.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { TestSocket } from '@tessera/kit/testing';
import fc from 'fast-check';
import { http, KEY_APP1, KEY_APP2, observabilityForThisFile, operator, ROOT, sid, type Instance } from './harness';

let obs: Instance;
let op: string;
observabilityForThisFile('otlp_sessions', (o, token) => ([obs, op] = [o, token]));

/**
 * An agent run through the real SDK (its own process: the exporters load node:http with a
 * dynamic import, which jest's module sandbox refuses). A BatchSpanProcessor as the SDK's default
 * one, its delay cut from 5 s to 200 ms, sends to the real protobuf exporter; the run waits for
 * each export before it goes on, so it spans exactly these batches:
 *   1. chat (tool call) + execute_tool     ended first, no conversation id on them
 *   2. chat (the answer)
 *   3. invoke_agent                        the conversation id, set when it started
 *   4. POST /support                       the trace's root, an HTTP span: only the trace id
 */
const AGENT = `
const { context, trace } = require('@opentelemetry/api');
const { TracerProvider, BatchSpanProcessor } = require('@opentelemetry/sdk-trace');
const { resourceFromAttributes } = require('@opentelemetry/resources');
const { OTLPTraceExporter } = require('@opentelemetry/exporter-trace-otlp-proto');
(async () => {
  const opts = JSON.parse(process.argv[1]);
  // The processor's timer does not hold the process open (unref): this does, until the run is sent.
  const alive = setInterval(() => {}, 60_000);
  const otlp = new OTLPTraceExporter({ url: opts.url, headers: opts.headers });
  const batches = [];
  let wake = () => {};
  const exporter = {
    export(spans, done) {
      otlp.export(spans, (r) => {
        batches.push({ spans: spans.map((s) => s.name), code: r.code });
        done(r);
        wake();
      });
    },
    shutdown: () => otlp.shutdown(),
    forceFlush: () => otlp.forceFlush(),
  };
  const exported = (n) => new Promise((resolve) => { wake = () => batches.length >= n && resolve(); wake(); });
  const provider = new TracerProvider({
    resource: resourceFromAttributes({ 'service.name': 'support-bot' }),
    spanProcessors: [new BatchSpanProcessor({ exporter, scheduledDelayMillis: 200 })],
  });
  const tracer = provider.getTracer('otlp-sessions-agent');
  const under = (span) => trace.setSpan(context.active(), span);
  const usage = (i, o) => ({ 'gen_ai.usage.input_tokens': i, 'gen_ai.usage.output_tokens': o });

  const root = tracer.startSpan('POST /support', { attributes: { 'http.request.method': 'POST' } });
  const agent = tracer.startSpan('invoke_agent Support', { attributes: { 'gen_ai.operation.name': 'invoke_agent', 'gen_ai.agent.name': 'Support', 'gen_ai.conversation.id': opts.conv } }, under(root));
  const chat1 = tracer.startSpan('chat gpt-4o', { attributes: { 'gen_ai.operation.name': 'chat', 'gen_ai.request.model': 'gpt-4o' } }, under(agent));
  chat1.setAttributes({
    'gen_ai.response.model': 'gpt-4o-2024-08-06',
    ...(opts.chatUsage && usage(100, 20)),
    'gen_ai.input.messages': JSON.stringify([{ role: 'user', parts: [{ type: 'text', content: 'Where is order A-17?' }] }]),
    'gen_ai.output.messages': JSON.stringify([{ role: 'assistant', parts: [{ type: 'text', content: 'Let me look.' }, { type: 'tool_call', id: 'call_1', name: 'lookup_order', arguments: { order: 'A-17' } }], finish_reason: 'tool_call' }]),
  });
  chat1.end();
  const tool = tracer.startSpan('execute_tool lookup_order', { attributes: { 'gen_ai.operation.name': 'execute_tool', 'gen_ai.tool.name': 'lookup_order', 'gen_ai.tool.call.id': 'call_1', 'gen_ai.tool.call.arguments': '{"order":"A-17"}', 'gen_ai.tool.call.result': '{"status":"shipped"}' } }, under(agent));
  tool.end();
  await exported(1);

  const chat2 = tracer.startSpan('chat gpt-4o', { attributes: { 'gen_ai.operation.name': 'chat', 'gen_ai.request.model': 'gpt-4o' } }, under(agent));
  chat2.setAttributes({
    'gen_ai.response.model': 'gpt-4o-2024-08-06',
    ...(opts.chatUsage && usage(50, 10)),
    'gen_ai.input.messages': JSON.stringify([{ role: 'tool', parts: [{ type: 'tool_call_response', id: 'call_1', response: { status: 'shipped' } }] }]),
    'gen_ai.output.messages': JSON.stringify([{ role: 'assistant', parts: [{ type: 'text', content: 'It has shipped.' }], finish_reason: 'stop' }]),
  });
  chat2.end();
  await exported(2);

  if (opts.agentUsage) agent.setAttributes(usage(150, 30));
  agent.end();
  await exported(3);

  root.end();
  await provider.forceFlush();
  await exported(4);
  await provider.shutdown();
  clearInterval(alive);
  process.stdout.write(JSON.stringify({
    spans: [root, agent, chat1, tool, chat2].map((s) => ({ name: s.name, spanId: s.spanContext().spanId, traceId: s.spanContext().traceId })),
    batches,
  }));
})().catch((e) => { console.error(e); process.exit(1); });
`;

interface Run {
  /** root, agent, chat1, tool, chat2: in the order they started. */
  spans: { name: string; spanId: string; traceId: string }[];
  batches: { spans: string[]; code: number }[];
}

function agentRun(conv: string, opts: { chatUsage?: boolean; agentUsage?: boolean; key?: string } = {}): Promise<Run> {
  const args = JSON.stringify({ url: `${obs.url}/v1/traces`, headers: { 'x-ingest-key': opts.key ?? KEY_APP1 }, conv, chatUsage: opts.chatUsage ?? true, agentUsage: opts.agentUsage ?? true });
  return new Promise((resolve, reject) =>
    execFile(process.execPath, ['-e', AGENT, args], { cwd: ROOT, timeout: 30_000 }, (err, stdout, stderr) => (err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(JSON.parse(stdout)))),
  );
}

const get = (path: string) => http(obs.url, 'GET', path, { token: op });

describe('an agent trace exported in several batches', () => {
  it('is one session under its conversation id, counted once, with no otel:<trace id> session left', async () => {
    const conv = sid('split');
    const run = await agentRun(conv);
    // The run did go out in four exports, the conversation id only in the third.
    expect(run.batches).toEqual([
      { spans: ['chat gpt-4o', 'execute_tool lookup_order'], code: 0 },
      { spans: ['chat gpt-4o'], code: 0 },
      { spans: ['invoke_agent Support'], code: 0 },
      { spans: ['POST /support'], code: 0 },
    ]);
    const [root, agent, chat1, tool, chat2] = run.spans;
    const traceId = root.traceId;

    const session = await get(`/sessions/${conv}`);
    expect(session.status).toBe(200);
    expect(session.body).toMatchObject({
      source: 'otel',
      status: 'finished',
      agent_name: 'Support',
      event_count: 5,
      // The chats' tokens; the agent's span reports their sum, which is not counted again.
      usage: { input_tokens: 150, output_tokens: 30, total_tokens: 180 },
    });

    const events = (await get(`/events/${conv}`)).body.events as Record<string, any>[];
    expect(events.map((e) => e.event_id).sort()).toEqual([root, agent, chat1, tool, chat2].map((s) => s.spanId).sort());
    expect(new Set(events.map((e) => e.session_id))).toEqual(new Set([conv]));
    expect(events.map((e) => e.seq)).toEqual([1, 2, 3, 4, 5]);

    // Seqs are the order things arrived in (what live clients resume from); order=start reads
    // them in the order they started, page by page.
    const started = (await get(`/events/${conv}?order=start`)).body.events as Record<string, any>[];
    expect(started.map((e) => e.event_id)).toEqual([root, agent, chat1, tool, chat2].map((s) => s.spanId));
    const page1 = (await get(`/events/${conv}?order=start&limit=2`)).body;
    const page2 = (await get(`/events/${conv}?order=start&limit=2&after=${page1.next_after}`)).body;
    const page3 = (await get(`/events/${conv}?order=start&limit=2&after=${page2.next_after}`)).body;
    expect([...page1.events, ...page2.events, ...page3.events].map((e) => e.event_id)).toEqual(started.map((e) => e.event_id));
    expect(page3.next_after).toBeNull();
    const sideways = await get(`/events/${conv}?order=sideways`);
    expect(sideways.status).toBe(400);
    expect(sideways.body.error.message).toContain('order');

    // Named after its agent, so search finds it; the model and the tool call it asked for are fields of the chat's event.
    expect(session.body.session_name).toBe('Support');
    const found = (await get(`/sessions?q=support&app_id=app1&limit=500`)).body.sessions as { session_id: string }[];
    expect(found.map((s) => s.session_id)).toContain(conv);
    expect(started[2]).toMatchObject({
      event_type: 'chat',
      model: 'gpt-4o-2024-08-06',
      role: 'assistant',
      content: [
        { type: 'text', text: 'Let me look.' },
        { type: 'tool_call', id: 'call_1', name: 'lookup_order', arguments: { order: 'A-17' } },
      ],
    });
    expect(started[4].attributes['gen_ai.input.messages']).toEqual([{ role: 'tool', parts: [{ type: 'tool_call_response', id: 'call_1', response: { status: 'shipped' } }] }]);
    expect(started[3]).toMatchObject({ event_type: 'execute_tool', model: null, tool_name: 'lookup_order' });

    // The provisional session of the first exports is gone, from every read.
    expect((await get(`/sessions/otel:${traceId}`)).status).toBe(404);
    expect((await get(`/events/otel:${traceId}`)).status).toBe(404);
    const listed = (await get('/sessions?source=otel&limit=500')).body.sessions as { session_id: string }[];
    expect(listed.map((s) => s.session_id)).toContain(conv);
    expect(listed.map((s) => s.session_id)).not.toContain(`otel:${traceId}`);

    // The conversation's next run (a trace of its own) adds to the same session.
    const again = await agentRun(conv);
    expect(again.batches.every((b) => b.code === 0)).toBe(true);
    expect((await get(`/sessions/${conv}`)).body).toMatchObject({ event_count: 10, usage: { input_tokens: 300, output_tokens: 60 } });
    expect((await get(`/sessions/otel:${again.spans[0].traceId}`)).status).toBe(404);
  });

  it("counts the agent span's tokens when no span below it reports any", async () => {
    const conv = sid('agent-tokens');
    const run = await agentRun(conv, { chatUsage: false });
    expect(run.batches).toHaveLength(4);
    expect((await get(`/sessions/${conv}`)).body).toMatchObject({ event_count: 5, usage: { input_tokens: 150, output_tokens: 30, total_tokens: 180 } });
    expect((await get(`/sessions/otel:${run.spans[0].traceId}`)).status).toBe(404);
  });
});

/** One span in OTLP/JSON, as an exporter writes it. */
function otlpSpan(traceId: string, spanId: string, parent: string | null, name: string, startMs: number, attributes: Record<string, string | number>) {
  return {
    traceId,
    spanId,
    ...(parent && { parentSpanId: parent }),
    name,
    kind: 1,
    startTimeUnixNano: String(BigInt(startMs) * 1_000_000n),
    endTimeUnixNano: String(BigInt(startMs + 100) * 1_000_000n),
    attributes: Object.entries(attributes).map(([key, v]) => ({ key, value: typeof v === 'number' ? { intValue: String(v) } : { stringValue: v } })),
    status: {},
  };
}
const exportJson = (key: string, ...spans: unknown[]) =>
  http(obs.url, 'POST', '/v1/traces', { headers: { 'x-ingest-key': key }, body: { resourceSpans: [{ resource: { attributes: [] }, scopeSpans: [{ scope: { name: 'test' }, spans }] }] } });

describe('the trace index', () => {
  it('tells live sockets the provisional session is gone and its events are in the named one; another app keeps its own trace of the same id', async () => {
    const traceId = randomBytes(16).toString('hex');
    const [agentId, chatId, otherId] = [0, 1, 2].map(() => randomBytes(8).toString('hex'));
    const conv = sid('live-merge');
    const t0 = Date.now();
    const socket = await TestSocket.connect(`${obs.url.replace('http', 'ws')}/ws?access_token=${op}`);
    await socket.waitType('init');
    socket.send({ type: 'subscribe', all: true });
    await socket.waitType('subscribed');

    // The chat first, without the conversation id; then another app's span of the same trace id.
    const chat = otlpSpan(traceId, chatId, agentId, 'chat gpt-4o', t0 + 5, { 'gen_ai.operation.name': 'chat', 'gen_ai.usage.input_tokens': 10, 'gen_ai.usage.output_tokens': 5 });
    expect((await exportJson(KEY_APP1, chat)).status).toBe(200);
    await socket.waitFor((m) => m.type === 'session_updated' && m.session.session_id === `otel:${traceId}` && m.session.app_id === 'app1');
    expect((await exportJson(KEY_APP2, otlpSpan(traceId, otherId, null, 'GET /x', t0, {}))).status).toBe(200);

    // The agent's span names the conversation: app1's provisional session moves into it.
    const agent = otlpSpan(traceId, agentId, null, 'invoke_agent Support', t0, { 'gen_ai.operation.name': 'invoke_agent', 'gen_ai.agent.name': 'Support', 'gen_ai.conversation.id': conv });
    expect((await exportJson(KEY_APP1, agent)).status).toBe(200);
    await socket.waitFor((m) => m.type === 'session_deleted' && m.session_id === `otel:${traceId}` && m.app_id === 'app1');
    await socket.waitFor((m) => m.type === 'event' && m.session_id === conv && m.event.seq === 2);
    const live = socket.messages.filter((m) => m.type === 'event' && m.session_id === conv).map((m) => [m.event.seq, m.event.event_id]);
    expect(live).toEqual([
      [1, chatId],
      [2, agentId],
    ]);
    await socket.close();

    expect((await get(`/sessions/${conv}`)).body).toMatchObject({ app_id: 'app1', event_count: 2, status: 'finished', session_name: 'Support', usage: { input_tokens: 10, output_tokens: 5 } });
    expect((await get(`/sessions/otel:${traceId}?app_id=app1`)).status).toBe(404);
    expect((await get(`/sessions/otel:${traceId}?app_id=app2`)).body).toMatchObject({ app_id: 'app2', event_count: 1 });
    // An operator of app2 alone sees app1's conversation as a name nobody uses.
    const app2Only = await operator(['app2'], 'op-2');
    const theirs = await http(obs.url, 'GET', `/sessions/${conv}`, { token: app2Only });
    const nobodys = await http(obs.url, 'GET', `/sessions/${conv}-nobody`, { token: app2Only });
    expect([theirs.status, theirs.body.error.code]).toEqual([404, nobodys.body.error.code]);
    expect((await http(obs.url, 'GET', `/events/${conv}?order=start`, { token: app2Only })).status).toBe(404);

    // A late span of the trace with only its id joins the conversation in app1; in app2 it stays app2's.
    expect((await exportJson(KEY_APP1, otlpSpan(traceId, randomBytes(8).toString('hex'), agentId, 'execute_tool x', t0 + 50, { 'gen_ai.operation.name': 'execute_tool' }))).status).toBe(200);
    expect((await get(`/sessions/${conv}`)).body).toMatchObject({ event_count: 3 });
    expect((await get(`/sessions/otel:${traceId}?app_id=app2`)).body).toMatchObject({ event_count: 1 });
  });
});

describe('a deleted conversation', () => {
  it('stays deleted: the next run\'s spans that waited in otel:<trace id> go with it, and the exporter hears the spans were not stored', async () => {
    const conv = sid('deleted-conv');
    const named = (traceId: string, spanId: string) => otlpSpan(traceId, spanId, null, 'invoke_agent', Date.now(), { 'gen_ai.operation.name': 'invoke_agent', 'gen_ai.conversation.id': conv });
    expect((await exportJson(KEY_APP1, named(randomBytes(16).toString('hex'), randomBytes(8).toString('hex')))).status).toBe(200);
    expect((await http(obs.url, 'DELETE', `/sessions/${conv}`, { token: op })).status).toBe(200);

    const traceId = randomBytes(16).toString('hex');
    const agentId = randomBytes(8).toString('hex');
    const chat = otlpSpan(traceId, randomBytes(8).toString('hex'), agentId, 'chat', Date.now(), { 'gen_ai.operation.name': 'chat', 'gen_ai.usage.input_tokens': 3 });
    expect((await exportJson(KEY_APP1, chat)).status).toBe(200);
    expect((await get(`/sessions/otel:${traceId}`)).status).toBe(200);
    const r = await exportJson(KEY_APP1, named(traceId, agentId));
    expect(r.body).toEqual({ partialSuccess: { rejectedSpans: '1', errorMessage: 'the session was deleted' } });
    expect((await get(`/sessions/otel:${traceId}`)).status).toBe(404);
    expect((await get(`/sessions/${conv}`)).status).toBe(404);
  });
});

describe('the trace index and retention', () => {
  it('forgets traces named more than RETENTION_DAYS ago: a late span of one starts a session of its trace; a recent trace still joins its conversation', async () => {
    const [oldTrace, newTrace] = [randomBytes(16).toString('hex'), randomBytes(16).toString('hex')];
    const [oldConv, newConv] = [sid('old-conv'), sid('new-conv')];
    const agentSpan = (traceId: string, spanId: string, conv: string) => otlpSpan(traceId, spanId, null, 'invoke_agent', Date.now(), { 'gen_ai.operation.name': 'invoke_agent', 'gen_ai.conversation.id': conv });
    const [oldAgent, newAgent] = [randomBytes(8).toString('hex'), randomBytes(8).toString('hex')];
    expect((await exportJson(KEY_APP1, agentSpan(oldTrace, oldAgent, oldConv), agentSpan(newTrace, newAgent, newConv))).status).toBe(200);
    await obs.o.s.db.pool.query("UPDATE otel_traces SET created_at = now() - interval '31 days' WHERE trace_id = $1", [oldTrace]);
    await obs.o.retention.runOnce();

    const late = (traceId: string, parent: string) => otlpSpan(traceId, randomBytes(8).toString('hex'), parent, 'execute_tool', Date.now(), { 'gen_ai.operation.name': 'execute_tool' });
    expect((await exportJson(KEY_APP1, late(oldTrace, oldAgent), late(newTrace, newAgent))).status).toBe(200);
    expect((await get(`/sessions/${newConv}`)).body).toMatchObject({ event_count: 2 });
    expect((await get(`/sessions/${oldConv}`)).body).toMatchObject({ event_count: 1 });
    expect((await get(`/sessions/otel:${oldTrace}`)).body).toMatchObject({ event_count: 1 });
  });
});

describe('whatever batches a run is cut into', () => {
  it('adds up to one session: every span once, the chats’ tokens once, no provisional session left (property)', async () => {
    // A run as it ends: chats (with tokens) and tools below the agent, then the agent (which reports
    // their sum, and the conversation id), then the request around it. Cut into consecutive
    // exports; some exports sent again later (an exporter's retry); the conversation id maybe on
    // some chats too.
    const run = fc.record({
      steps: fc.array(fc.record({ tokens: fc.option(fc.tuple(fc.integer({ min: 0, max: 500 }), fc.integer({ min: 0, max: 500 })), { nil: null }), tool: fc.boolean(), named: fc.boolean() }), { minLength: 1, maxLength: 5 }),
      cuts: fc.array(fc.boolean(), { minLength: 12, maxLength: 12 }),
      retries: fc.array(fc.nat(), { maxLength: 3 }),
      rootAround: fc.boolean(),
    });
    await fc.assert(
      fc.asyncProperty(run, async ({ steps, cuts, retries, rootAround }) => {
        const traceId = randomBytes(16).toString('hex');
        const conv = sid('prop');
        const id = () => randomBytes(8).toString('hex');
        const [rootId, agentId] = [id(), id()];
        const t0 = Date.now();
        const below: unknown[] = [];
        let input = 0;
        let output = 0;
        let reported = false;
        steps.forEach((s, i) => {
          const at = t0 + 10 * (i + 1);
          below.push(
            otlpSpan(traceId, id(), agentId, 'chat', at, {
              'gen_ai.operation.name': 'chat',
              ...(s.named && { 'gen_ai.conversation.id': conv }),
              ...(s.tokens && { 'gen_ai.usage.input_tokens': s.tokens[0], 'gen_ai.usage.output_tokens': s.tokens[1] }),
            }),
          );
          if (s.tokens) [input, output, reported] = [input + s.tokens[0], output + s.tokens[1], true];
          if (s.tool) below.push(otlpSpan(traceId, id(), agentId, 'execute_tool', at + 5, { 'gen_ai.operation.name': 'execute_tool' }));
        });
        const sum = { 'gen_ai.usage.input_tokens': 1000, 'gen_ai.usage.output_tokens': 100 };
        const ended = [
          ...below,
          otlpSpan(traceId, agentId, rootAround ? rootId : null, 'invoke_agent', t0, { 'gen_ai.operation.name': 'invoke_agent', 'gen_ai.agent.name': 'Prop', 'gen_ai.conversation.id': conv, ...sum }),
          ...(rootAround ? [otlpSpan(traceId, rootId, null, 'POST /run', t0, {})] : []),
        ];
        const batches: unknown[][] = [[]];
        ended.forEach((span, i) => {
          if (i > 0 && cuts[i % cuts.length]) batches.push([]);
          batches[batches.length - 1].push(span);
        });
        const sent: unknown[][] = [];
        for (const b of batches) {
          sent.push(b);
          expect((await exportJson(KEY_APP1, ...b)).status).toBe(200);
          for (const r of retries) if (r % (batches.length + 1) === sent.length) expect((await exportJson(KEY_APP1, ...sent[r % sent.length])).status).toBe(200);
        }

        const session = await get(`/sessions/${conv}`);
        expect(session.body).toMatchObject({
          event_count: ended.length,
          usage: reported ? { input_tokens: input, output_tokens: output } : { input_tokens: 1000, output_tokens: 100 },
          status: 'finished',
          session_name: 'Prop',
        });
        const events = (await get(`/events/${conv}?limit=1000`)).body.events as { seq: number; event_id: string }[];
        expect(events.map((e) => e.seq)).toEqual(ended.map((_, i) => i + 1));
        expect(new Set(events.map((e) => e.event_id)).size).toBe(ended.length);
        expect((await get(`/sessions/otel:${traceId}`)).status).toBe(404);
      }),
      { numRuns: 25 },
    );
  });
});

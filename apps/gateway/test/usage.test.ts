/**
 * Cost as an operator reads it, end to end: chats through the gateway (this process) on the
 * runtime and its worker (child processes) with the scripted provider and with the OpenAI-compatible
 * and Anthropic providers against a local model server speaking their streaming wire formats (usage
 * with cached, cache-written and reasoning tokens), observability (a child process) pricing each
 * call as it stores it, real Redis and PostgreSQL. `GET /api/observability/usage` shows the calls
 * with their cost to the app's operators, and nothing of them to another app's.
 */
import { randomBytes } from 'node:crypto';
import { cpSync, mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { call, TestSocket, until } from '@tessera/kit/testing';
import { SECRET, startTestGateway, token, type TestGateway } from './support';
import { ROOT, spawnObservability, startRuntime, type HttpService, type RuntimeStack } from './stack';

const SERVICE_KEY = 'usage-service-key-0123456789abcdef';
const M = 1_000_000;

/** What the model server reports for each call: an OpenAI reasoning model with a cache hit, and Anthropic with a cache write and read. */
const OPENAI_USAGE = { prompt_tokens: 2006, completion_tokens: 300, total_tokens: 2306, prompt_tokens_details: { cached_tokens: 1920 }, completion_tokens_details: { reasoning_tokens: 128 } };
const ANTHROPIC_USAGE = { input_tokens: 21, cache_creation_input_tokens: 1880, cache_read_input_tokens: 3200, output_tokens: 1 };

/** One local server answering both APIs' streaming calls: `/v1/chat/completions` (OpenAI) and `/v1/messages` (Anthropic). */
function modelServer(): Promise<Server> {
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
      const data = (d: unknown) => res.write(`data: ${JSON.stringify(d)}\n\n`);
      const event = (d: { type: string }) => res.write(`event: ${d.type}\ndata: ${JSON.stringify(d)}\n\n`);
      if (req.url === '/v1/chat/completions') {
        const chunk = (delta: object, finish_reason: string | null = null) => ({ id: 'c1', object: 'chat.completion.chunk', created: 1_700_000_000, model: 'o4-mini', choices: [{ index: 0, delta, finish_reason }] });
        data(chunk({ role: 'assistant', content: 'Priced ' }));
        data(chunk({ content: 'reply.' }));
        data(chunk({}, 'stop'));
        data({ ...chunk({}), choices: [], usage: OPENAI_USAGE });
        res.end('data: [DONE]\n\n');
      } else {
        event({ type: 'message_start', message: { id: 'm1', type: 'message', role: 'assistant', model: 'claude-sonnet-4-20250514', content: [], stop_reason: null, stop_sequence: null, usage: ANTHROPIC_USAGE } } as never);
        event({ type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } } as never);
        event({ type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: 'Cached reply.' } } as never);
        event({ type: 'content_block_stop', index: 0 } as never);
        event({ type: 'message_delta', delta: { stop_reason: 'end_turn', stop_sequence: null }, usage: { output_tokens: 412 } } as never);
        event({ type: 'message_stop' });
        res.end();
      }
    });
  });
  return new Promise((r) => server.listen(0, '127.0.0.1', () => r(server)));
}

const workflow = (name: string, provider: string, model: string) => ({
  name,
  description: `${provider} for the usage test`,
  starting_agent: name,
  agents: [{ name, description: 'answers', system_prompt: 'Be brief.', model: { provider, model } }],
});

let model: Server;
let workflows: string;
let runtime: RuntimeStack;
let obs: HttpService;
let gw: TestGateway;

beforeAll(async () => {
  model = await modelServer();
  const modelUrl = `http://127.0.0.1:${(model.address() as AddressInfo).port}/v1`;
  workflows = mkdtempSync(join(tmpdir(), 'tessera-usage-workflows-'));
  cpSync(join(ROOT, 'apps/runtime/workflows/assistant'), join(workflows, 'assistant'), { recursive: true });
  for (const [name, provider, m] of [['metered_openai', 'openai-compatible', 'o4-mini'], ['metered_anthropic', 'anthropic', 'claude-sonnet-4-20250514']]) {
    mkdirSync(join(workflows, name));
    writeFileSync(join(workflows, name, 'workflow.json'), JSON.stringify(workflow(name, provider, m)));
  }
  const bull = `test-gw-usage-${randomBytes(4).toString('hex')}`;
  [runtime, obs] = await Promise.all([
    startRuntime({
      JWT_SECRET: SECRET,
      SERVICE_KEY,
      extra: { OBSERVABILITY_EVENTS: 'true', BULL_PREFIX: bull, WORKFLOWS_DIR: workflows, OPENAI_BASE_URL: modelUrl, OPENAI_API_KEY: 'sk-test-usage', ANTHROPIC_API_KEY: 'sk-ant-test-usage', ANTHROPIC_BASE_URL: modelUrl },
    }),
    spawnObservability('gw_usage', bull, SERVICE_KEY),
  ]);
  gw = await startTestGateway({ RUNTIME_URL: runtime.url, BROKER_URL: 'off', OBSERVABILITY_URL: obs.url });
}, 90_000);
afterAll(async () => {
  await gw?.stop();
  await Promise.allSettled([runtime?.stop(), obs?.stop()]);
  await new Promise((r) => model?.close(r));
  if (workflows) rmSync(workflows, { recursive: true, force: true });
});

/** One turn of a new chat of `user`, through the gateway; the usage the client saw. */
async function turn(user: string, workflowName: string): Promise<Record<string, unknown>> {
  const t = await token(user);
  const start = await call(gw.url, 'POST', `/api/chats/demo-app/${workflowName}/start`, { token: t, body: { user_id: user } });
  expect(start.status).toBe(201);
  const chatId = (start.json as { chat_id: string }).chat_id;
  const socket = await TestSocket.connect(`${gw.url.replace('http', 'ws')}/ws/${workflowName}/demo-app/${chatId}/${user}?access_token=${t}`);
  try {
    socket.send({ type: 'user.input.submit', text: 'Hello there' });
    const usage = await socket.waitType('chat.usage_delta', 20_000);
    expect((await socket.waitType('chat.run_complete', 20_000)).data).toMatchObject({ status: 'completed' });
    return usage.data as Record<string, unknown>;
  } finally {
    socket.ws.terminate();
  }
}

test('a turn on each provider shows in GET /api/observability/usage with its cost, to its app’s operators only', async () => {
  const seen = { openai: await turn('ada', 'metered_openai'), anthropic: await turn('ada', 'metered_anthropic'), scripted: await turn('bob', 'assistant') };
  // The client sees the provider's usage as it was reported.
  expect(seen.openai).toMatchObject({ model: 'o4-mini', provider: 'openai-compatible', prompt_tokens: 2006, completion_tokens: 300, cache_read_tokens: 1920, reasoning_tokens: 128 });
  expect(seen.anthropic).toMatchObject({ model: 'claude-sonnet-4-20250514', provider: 'anthropic', prompt_tokens: 21 + 1880 + 3200, completion_tokens: 412, cache_read_tokens: 3200, cache_write_tokens: 1880 });
  expect(seen.scripted).toMatchObject({ model: 'scripted', provider: 'scripted' });

  const operator = await token('ops', { roles: ['operator'] });
  const query = '/api/observability/usage?group_by=app,user,workflow,model&granularity=hour';
  const r = await until(async () => {
    const got = await call(gw.url, 'GET', query, { token: operator });
    return got.status === 200 && (got.json as { total: { calls: number } }).total.calls === 3 && got;
  }, 20_000, 'three priced calls in GET /usage');
  const rows = (r.json as { rows: Record<string, any>[] }).rows;
  const of = (m: string) => rows.find((x) => x.model === m)!;
  expect(rows.map((x) => [x.app_id, x.user_id, x.workflow, x.model, x.calls]).sort()).toEqual([
    ['demo-app', 'ada', 'metered_anthropic', 'claude-sonnet-4-20250514', 1],
    ['demo-app', 'ada', 'metered_openai', 'o4-mini', 1],
    ['demo-app', 'bob', 'assistant', 'scripted', 1],
  ]);

  // Published prices, USD per million tokens. o4-mini: $1.10 input, $0.275 cached input, $4.40 output (reasoning is output).
  const openaiCost = ((2006 - 1920) * 1.1 + 1920 * 0.275 + 300 * 4.4) / M;
  // claude-sonnet-4: $3 input, $3.75 cache write, $0.30 cache read, $15 output.
  const anthropicCost = (21 * 3 + 1880 * 3.75 + 3200 * 0.3 + 412 * 15) / M;
  const near = (got: number, want: number) => expect(Math.abs(got - want) / want).toBeLessThan(0.01);
  expect(of('o4-mini')).toMatchObject({ input_tokens: 2006, output_tokens: 300, cache_read_tokens: 1920, reasoning_tokens: 128, unpriced_calls: 0 });
  near(of('o4-mini').cost_usd, openaiCost);
  expect(of('claude-sonnet-4-20250514')).toMatchObject({ input_tokens: 5101, output_tokens: 412, cache_read_tokens: 3200, cache_write_tokens: 1880, unpriced_calls: 0 });
  near(of('claude-sonnet-4-20250514').cost_usd, anthropicCost);
  // The scripted model has no price (none is configured here): its tokens count, its cost is unknown.
  expect(of('scripted')).toMatchObject({ input_tokens: seen.scripted.prompt_tokens, output_tokens: seen.scripted.completion_tokens, cost_usd: null, unpriced_calls: 1 });
  expect((r.json as { total: Record<string, number> }).total).toMatchObject({ calls: 3, unpriced_calls: 1 });
  near((r.json as { total: { cost_usd: number } }).total.cost_usd, openaiCost + anthropicCost);

  // Another app's operator: nothing, even naming this app.
  const otherOp = await token('other-ops', { apps: ['other-app'], roles: ['operator'] });
  for (const q of [query, `${query}&app_id=demo-app`]) {
    const other = await call(gw.url, 'GET', q, { token: otherOp });
    expect(other.status).toBe(200);
    expect(other.json).toMatchObject({ rows: [], total: { calls: 0, cost_usd: null } });
  }
  // A user is not an operator; a bad parameter is a 400 naming it.
  expect((await call(gw.url, 'GET', query, { token: await token('ada') })).status).toBe(403);
  const bad = await call(gw.url, 'GET', '/api/observability/usage?granularity=week', { token: operator });
  expect(bad.status).toBe(400);
  expect((bad.json as { error: { message: string } }).error.message).toContain('granularity');
}, 90_000);

test('the merged OpenAPI lists GET /api/observability/usage, for operators, with its parameters', async () => {
  const doc = (await call(gw.url, 'GET', '/openapi.json')).json as { paths: Record<string, Record<string, any>> };
  const op = doc.paths['/api/observability/usage']?.get;
  expect(op).toBeDefined();
  expect(op['x-tessera-access']).toBe('operator');
  expect(op.parameters.map((p: { name: string }) => p.name).sort()).toEqual(['app_id', 'from', 'granularity', 'group_by', 'limit', 'to']);
});

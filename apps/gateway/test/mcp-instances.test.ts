import { randomBytes } from 'node:crypto';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { FetchLike } from '@modelcontextprotocol/sdk/shared/transport.js';
import { CallToolResultSchema, type CallToolResult, type JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import { call, closedPort } from '@tessera/kit/testing';
import { SECRET, startTestGateway, token, type TestGateway } from './support';
import { startRuntime, type HttpService, type RuntimeStack } from './stack';

/**
 * Any runtime instance serves any MCP session (apps/runtime/src/mcp): two runtime API instances,
 * each behind a gateway of its own, so that a test chooses which instance gets each request. The
 * client is the official SDK's, its requests sent to one gateway or the other by its fetch.
 */

const SERVICE_KEY = 'mcp-instances-service-key-0123456789';
const APP = 'demo-app';
const PATH = `/api/mcp/${APP}`;

let runtime: RuntimeStack;
let second: HttpService;
/** Gateways in front of instance A only and instance B only. */
let gwA: TestGateway;
let gwB: TestGateway;
let alice: string;
let bob: string;
const clients: Client[] = [];

type Side = 'A' | 'B';
interface Hit {
  side: Side;
  method: string;
  what: string;
  status?: number;
}

/** A fetch that sends each request to instance A or B (`pick`), and notes where each went. */
function via(pick: (init: RequestInit | undefined, n: number) => Side, hits: Hit[], wrap?: (res: Response, init: RequestInit | undefined, side: Side) => Response): FetchLike {
  let n = 0;
  return async (url, init) => {
    const side = pick(init, n++);
    const u = new URL(url);
    const body = typeof init?.body === 'string' ? (JSON.parse(init.body) as { method?: string; id?: unknown }) : undefined;
    const lastEventId = new Headers(init?.headers).get('last-event-id');
    const method = init?.method ?? 'GET';
    const hit: Hit = { side, method, what: body?.method ?? (lastEventId ? 'resume' : method === 'GET' ? 'stream' : method === 'DELETE' ? 'end' : 'response') };
    hits.push(hit);
    const res = await fetch(new URL(u.pathname + u.search, side === 'A' ? gwA.url : gwB.url), init);
    hit.status = res.status;
    return wrap ? wrap(res, init, side) : res;
  };
}

async function connect(who: string, fetchVia: FetchLike): Promise<Client> {
  const transport = new StreamableHTTPClientTransport(new URL(gwA.url + PATH), {
    requestInit: { headers: { authorization: `Bearer ${who}` } },
    fetch: fetchVia,
    reconnectionOptions: { initialReconnectionDelay: 50, maxReconnectionDelay: 500, reconnectionDelayGrowFactor: 1.5, maxRetries: 5 },
  });
  const client = new Client({ name: 'tessera-mcp-instances-test', version: '1.0.0' });
  await client.connect(transport);
  clients.push(client);
  return client;
}

const sessionOf = (c: Client) => (c.transport as StreamableHTTPClientTransport).sessionId as string;
const textOf = (r: CallToolResult) => r.content.flatMap((c) => (c.type === 'text' ? [c.text] : [])).join('');
const chatOf = (r: CallToolResult) => (r.structuredContent as { chat_id: string }).chat_id;
/** Waits (polling) until `cond` holds, at most 10 s. */
async function until(cond: () => boolean | Promise<boolean>): Promise<void> {
  for (const deadline = Date.now() + 10_000; !(await cond()) && Date.now() < deadline; ) await new Promise((r) => setTimeout(r, 100));
}
const gwOf = (side: Side) => (side === 'A' ? gwA : gwB);

/** A raw JSON-RPC POST of a session, on one side. */
function rpc(side: Side, who: string, sessionId: string | undefined, message: object): Promise<Response> {
  return fetch(gwOf(side).url + PATH, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${who}`,
      ...(sessionId && { 'mcp-session-id': sessionId }),
      'mcp-protocol-version': '2025-11-25',
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
    },
    body: JSON.stringify(message),
  });
}

const initialize = { jsonrpc: '2.0', id: 0, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'raw', version: '1' } } };

/** The SSE messages of a response body, with their event ids, until it ends. */
async function sseOf(res: Response): Promise<{ id: string; message: JSONRPCMessage | null }[]> {
  const text = await res.text();
  return text
    .split('\n\n')
    .filter((block) => /^(id|data):/m.test(block))
    .map((block) => {
      const data = /^data: ?(.*)$/m.exec(block)?.[1] ?? '';
      return { id: /^id: (.*)$/m.exec(block)?.[1] ?? '', message: data.trim() ? (JSON.parse(data) as JSONRPCMessage) : null };
    });
}

beforeAll(async () => {
  const [portA, portB] = await Promise.all([closedPort(), closedPort()]);
  runtime = await startRuntime({ JWT_SECRET: SECRET, SERVICE_KEY, extra: { BULL_PREFIX: `test-mcpi-${randomBytes(4).toString('hex')}` } }, portA);
  second = await runtime.anotherApi(portB);
  [gwA, gwB] = await Promise.all([
    startTestGateway({ RUNTIME_URL: runtime.url, BROKER_URL: 'off' }),
    startTestGateway({ RUNTIME_URL: second.url, BROKER_URL: 'off' }),
  ]);
  [alice, bob] = await Promise.all([token('alice', { apps: [APP] }), token('bob', { apps: [APP] })]);
}, 90_000);

afterAll(async () => {
  await Promise.allSettled(clients.map((c) => c.close()));
  await Promise.allSettled([gwA?.stop(), gwB?.stop()]);
  await runtime?.stop();
});

test('a session initialized on one instance is served by the other: tools/list, tools/call, and DELETE there ends it on both', async () => {
  const hits: Hit[] = [];
  // initialize on A; everything after it on B.
  const client = await connect(alice, via((_init, n) => (n === 0 ? 'A' : 'B'), hits));
  expect(hits[0]).toEqual({ side: 'A', method: 'POST', what: 'initialize', status: 200 });

  const { tools } = await client.listTools();
  expect(tools.map((t) => t.name)).toEqual(expect.arrayContaining(['greeter', 'long']));
  const r = (await client.callTool({ name: 'greeter', arguments: { message: 'I build dashboards' } })) as CallToolResult;
  expect(textOf(r)).toBe('Noted: "I build dashboards". A teammate agent can take it from here.');
  expect(hits.filter((h) => h.what === 'tools/call' || h.what === 'tools/list').every((h) => h.side === 'B')).toBe(true);

  // The same session on A, as well.
  const sessionId = sessionOf(client);
  expect((await rpc('A', alice, sessionId, { jsonrpc: '2.0', id: 7, method: 'tools/list' })).status).toBe(200);
  // Bob with Alice's session id, on either instance: no such session, as for an id nobody holds.
  for (const side of ['A', 'B'] as const) {
    const stolen = await rpc(side, bob, sessionId, { jsonrpc: '2.0', id: 8, method: 'tools/list' });
    const unknown = await rpc(side, bob, '00000000-0000-4000-8000-000000000000', { jsonrpc: '2.0', id: 8, method: 'tools/list' });
    expect([stolen.status, unknown.status]).toEqual([404, 404]);
    expect(await stolen.json()).toEqual(await unknown.json());
  }

  // DELETE on B ends it for A too.
  await (client.transport as StreamableHTTPClientTransport).terminateSession();
  expect(hits.at(-1)).toEqual({ side: 'B', method: 'DELETE', what: 'end', status: 200 });
  expect((await rpc('A', alice, sessionId, { jsonrpc: '2.0', id: 9, method: 'tools/list' })).status).toBe(404);
}, 30_000);

test('a streamed tools/call cut three times, resumed on alternating instances: the same progress messages as an undisturbed call, none twice', async () => {
  const calmHits: Hit[] = [];
  const calm = await connect(alice, via(() => 'A', calmHits));
  const calmDeltas: string[] = [];
  const calmResult = (await calm.callTool({ name: 'long', arguments: { message: 'resume me' } }, CallToolResultSchema, {
    onprogress: (p) => void (p.message && calmDeltas.push(p.message)),
  })) as CallToolResult;

  // The tools/call POST goes to A; each resume (GET with Last-Event-ID) to B, A, B…; each of the first three streams is cut after a few events.
  let cuts = 0;
  let resumes = 0;
  const hits: Hit[] = [];
  const cutting = (res: Response, init: RequestInit | undefined): Response => {
    const isCall = init?.method === 'POST' && typeof init.body === 'string' && init.body.includes('"tools/call"');
    const isResume = init?.method === 'GET' && new Headers(init.headers).has('last-event-id');
    if ((!isCall && !isResume) || cuts >= 3 || !res.body) return res;
    // Passes whole SSE events on, and after the sixth one with an id drops the rest and errors: a backlog that came in one chunk is cut as well.
    const reader = res.body.getReader();
    const decoder = new TextDecoder();
    const encoder = new TextEncoder();
    let pending = '';
    let events = 0;
    const body = new ReadableStream<Uint8Array>({
      async pull(out) {
        const { done, value } = await reader.read();
        if (done) return out.close();
        const blocks = (pending + decoder.decode(value, { stream: true })).split('\n\n');
        pending = blocks.pop() as string;
        for (const block of blocks) {
          out.enqueue(encoder.encode(`${block}\n\n`));
          if (/^id: /m.test(block) && ++events === 6 && cuts < 3) {
            cuts++;
            await reader.cancel();
            return out.error(new Error('cut by the test'));
          }
        }
      },
    });
    return new Response(body, { status: res.status, headers: res.headers });
  };
  const client = await connect(
    alice,
    via((init) => (init?.method === 'GET' && new Headers(init.headers).has('last-event-id') ? (resumes++ % 2 === 0 ? 'B' : 'A') : 'A'), hits, cutting),
  );
  const deltas: string[] = [];
  const progress: number[] = [];
  const r = (await client.callTool({ name: 'long', arguments: { message: 'resume me' } }, CallToolResultSchema, {
    onprogress: (p) => {
      progress.push(p.progress);
      if (p.message) deltas.push(p.message);
    },
  })) as CallToolResult;

  expect(cuts).toBe(3);
  const resumed = hits.filter((h) => h.what === 'resume').map((h) => `${h.side} ${h.status}`);
  expect(resumed).toEqual(['B 200', 'A 200', 'B 200']);
  expect(textOf(r)).toBe(textOf(calmResult).replace(chatOf(calmResult), chatOf(r)));
  // The pieces may be cut differently from run to run; the text they make is the same, with nothing missing or twice.
  expect(deltas.join('')).toBe(calmDeltas.join('').replace(chatOf(calmResult), chatOf(r)));
  expect(deltas.join('')).toBe(textOf(r));
  expect(new Set(progress).size).toBe(progress.length);
  expect(progress).toEqual([...progress].sort((a, b) => a - b));
}, 60_000);

test('notifications/cancelled reaching the other instance stops the turn, and the call gets no answer', async () => {
  const starter = await connect(alice, via(() => 'A', []));
  const first = (await starter.callTool({ name: 'long', arguments: { message: 'short' } })) as CallToolResult;
  const chatId = chatOf(first);
  const meta = async () => (await call(gwA.url, 'GET', `/api/chats/meta/${APP}/long/${chatId}`, { token: alice })).json as { last_index: number; status: string };
  const wholeTurn = (await meta()).last_index;

  // The call's POST goes to A, everything else (the cancel, too) to B. What the call's stream brought is noted to read its event ids.
  const hits: Hit[] = [];
  let callStream = '';
  const isCall = (init: RequestInit | undefined) => init?.method === 'POST' && typeof init.body === 'string' && init.body.includes('"tools/call"');
  const client = await connect(
    alice,
    via(
      (init) => (isCall(init) ? 'A' : 'B'),
      hits,
      (res, init) => {
        if (!isCall(init) || !res.body) return res;
        const reader = res.body.getReader();
        const decoder = new TextDecoder();
        const body = new ReadableStream<Uint8Array>({
          async pull(out) {
            const { done, value } = await reader.read().catch(() => ({ done: true, value: undefined }));
            if (done) return out.close();
            callStream += decoder.decode(value, { stream: true });
            out.enqueue(value);
          },
        });
        return new Response(body, { status: res.status, headers: res.headers });
      },
    ),
  );
  const ac = new AbortController();
  let seen = 0;
  const pending = client.callTool({ name: 'long', arguments: { message: 'cut me off', chat_id: chatId } }, CallToolResultSchema, {
    signal: ac.signal,
    onprogress: () => {
      if (++seen === 5) ac.abort('enough');
    },
  });
  await expect(pending).rejects.toThrow();
  await until(() => hits.some((h) => h.what === 'notifications/cancelled' && h.status !== undefined));
  expect(hits.filter((h) => h.what === 'notifications/cancelled')).toEqual([{ side: 'B', method: 'POST', what: 'notifications/cancelled', status: 202 }]);

  // The turn ends stopped, long before a whole turn's length.
  let after = await meta();
  await until(async () => (after = await meta()).status !== 'in_progress');
  expect(after.status).toBe('stopped');
  expect(after.last_index - wholeTurn).toBeLessThan(wholeTurn / 2);

  // What A sent on the call's stream after the last event the client got, read back on B: the stream ends with no answer to the call.
  const events = await sseOf(new Response(callStream));
  const lastId = events.filter((e) => e.id).at(-1)?.id as string;
  const res = await fetch(gwB.url + PATH, {
    headers: { authorization: `Bearer ${alice}`, 'mcp-session-id': sessionOf(client), 'mcp-protocol-version': '2025-11-25', accept: 'text/event-stream', 'last-event-id': lastId },
  });
  expect(res.status).toBe(200);
  const rest = [...events, ...(await sseOf(res))].flatMap((e) => (e.message ? [e.message] : []));
  expect(rest.length).toBeGreaterThanOrEqual(5);
  expect(rest.filter((m) => 'result' in m || 'error' in m)).toEqual([]);
}, 60_000);

test('a Last-Event-ID of another session, or none of ours, is a 400 naming it; a resume asked for as JSON is a 406, one with an unknown protocol version a 400', async () => {
  const mine = await connect(alice, via(() => 'A', []));
  const other = await connect(alice, via(() => 'B', []));
  const ids: string[] = [];
  await other.callTool({ name: 'greeter', arguments: { message: 'hi' } }, CallToolResultSchema, { onresumptiontoken: (t) => void ids.push(t) });
  for (const lastEventId of [ids[0] ?? 'x', 'not-an-event-id']) {
    const res = await fetch(gwB.url + PATH, {
      headers: { authorization: `Bearer ${alice}`, 'mcp-session-id': sessionOf(mine), 'mcp-protocol-version': '2025-11-25', accept: 'text/event-stream', 'last-event-id': lastEventId },
    });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: { message: string } }).error.message).toContain('Last-Event-ID');
  }
  // A resume is an event stream: asked for as anything else, a 406 naming Accept.
  const json = await fetch(gwB.url + PATH, {
    headers: { authorization: `Bearer ${alice}`, 'mcp-session-id': sessionOf(mine), 'mcp-protocol-version': '2025-11-25', accept: 'application/json', 'last-event-id': ids[0] ?? 'x' },
  });
  expect(json.status).toBe(406);
  expect(((await json.json()) as { error: { message: string } }).error.message).toContain('Accept: text/event-stream');
  // And a protocol version the server does not speak is a 400 naming it, on a resume as on any request.
  const old = await fetch(gwB.url + PATH, {
    headers: { authorization: `Bearer ${alice}`, 'mcp-session-id': sessionOf(mine), 'mcp-protocol-version': '1999-01-01', accept: 'text/event-stream', 'last-event-id': ids[0] ?? 'x' },
  });
  expect(old.status).toBe(400);
  expect(((await old.json()) as { error: { message: string } }).error.message).toContain('1999-01-01');
}, 30_000);

test('a user holds at most 32 sessions: initializing one more ends the least recently used', async () => {
  const carol = await token(`carol-${randomBytes(3).toString('hex')}`, { apps: [APP] });
  const ids: string[] = [];
  for (let i = 0; i < 33; i++) {
    const res = await rpc(i % 2 === 0 ? 'A' : 'B', carol, undefined, initialize);
    expect(res.status).toBe(200);
    ids.push(res.headers.get('mcp-session-id') as string);
    await res.body?.cancel();
  }
  const list = (id: string) => rpc('A', carol, id, { jsonrpc: '2.0', id: 1, method: 'tools/list' });
  expect((await list(ids[0])).status).toBe(404);
  expect((await list(ids[1])).status).toBe(200);
  expect((await list(ids[32])).status).toBe(200);
}, 30_000);

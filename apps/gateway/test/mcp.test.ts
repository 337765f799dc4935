import { randomBytes } from 'node:crypto';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { FetchLike } from '@modelcontextprotocol/sdk/shared/transport.js';
import { CallToolResultSchema, type CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { call, TestSocket } from '@tessera/kit/testing';
import { token, type TestGateway } from './support';
import { startTwoInstanceStack, type TwoInstanceStack } from './stack';

/**
 * MCP (Streamable HTTP, revision 2025-11-25) over Tessera chats (apps/runtime/src/mcp), as an MCP
 * client sees it: the official SDK's Client and StreamableHTTPClientTransport through the gateway,
 * with the real runtime (two API instances and the worker) behind it.
 */

const SERVICE_KEY = 'mcp-service-key-0123456789abcdef';
const APP = 'demo-app';
const ORIGIN = 'http://localhost:5173';

let stack: TwoInstanceStack;
let gw: TestGateway;
let alice: string;
let bob: string;
let otherApp: string;
const clients: Client[] = [];

const mcpPath = (app = APP) => `/api/mcp/${app}`;

async function connect(who: string, opts: { fetch?: FetchLike; app?: string; origin?: string } = {}): Promise<Client> {
  const transport = new StreamableHTTPClientTransport(new URL(gw.url + mcpPath(opts.app)), {
    requestInit: { headers: { authorization: `Bearer ${who}`, ...(opts.origin && { origin: opts.origin }) } },
    ...(opts.fetch && { fetch: opts.fetch }),
    reconnectionOptions: { initialReconnectionDelay: 50, maxReconnectionDelay: 500, reconnectionDelayGrowFactor: 1.5, maxRetries: 5 },
  });
  const client = new Client({ name: 'tessera-mcp-test', version: '1.0.0' });
  await client.connect(transport);
  clients.push(client);
  return client;
}

const textOf = (r: CallToolResult) => r.content.flatMap((c) => (c.type === 'text' ? [c.text] : [])).join('');
const chatOf = (r: CallToolResult) => (r.structuredContent as { chat_id: string }).chat_id;

beforeAll(async () => {
  // Two API instances, as `npm start` runs them: the gateway sends each request to either (mcp-instances.test.ts chooses which).
  stack = await startTwoInstanceStack('mcp', SERVICE_KEY, { runtime: { CORS_ORIGINS: ORIGIN }, gateway: { CORS_ORIGINS: ORIGIN } });
  gw = stack.gw;
  [alice, bob, otherApp] = await Promise.all([token('alice', { apps: [APP] }), token('bob', { apps: [APP] }), token('carol', { apps: ['other-app'] })]);
}, 90_000);

afterAll(async () => {
  await Promise.allSettled(clients.map((c) => c.close()));
  await stack?.stop();
});

test('tools/list lists the workflows, each taking a message and an optional chat_id', async () => {
  const client = await connect(alice);
  const { tools } = await client.listTools();
  const names = tools.map((t) => t.name);
  expect(names).toEqual(expect.arrayContaining(['greeter', 'assistant', 'long']));
  const greeter = tools.find((t) => t.name === 'greeter');
  expect(greeter?.inputSchema.required).toEqual(['message']);
  expect(Object.keys(greeter?.inputSchema.properties ?? {}).sort()).toEqual(['chat_id', 'message']);

  // DELETE ends the session: its id is then no session at all.
  const transport = client.transport as StreamableHTTPClientTransport;
  const sessionId = transport.sessionId as string;
  await transport.terminateSession();
  const res = await fetch(gw.url + mcpPath(), {
    method: 'POST',
    headers: { authorization: `Bearer ${alice}`, 'mcp-session-id': sessionId, 'mcp-protocol-version': '2025-11-25', 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 9, method: 'tools/list' }),
  });
  expect(res.status).toBe(404);
}, 30_000);

test('tools/call runs one turn and returns the reply; chat_id continues the same chat', async () => {
  const client = await connect(alice);
  const first = (await client.callTool({ name: 'greeter', arguments: { message: 'I build dashboards' } })) as CallToolResult;
  expect(first.isError).toBe(false);
  expect(textOf(first)).toBe('Noted: "I build dashboards". A teammate agent can take it from here.');
  expect(first.structuredContent).toMatchObject({ status: 'completed', reply: textOf(first) });
  const second = (await client.callTool({ name: 'greeter', arguments: { message: 'and reports', chat_id: chatOf(first) } })) as CallToolResult;
  expect(textOf(second)).toBe('Noted: "and reports". A teammate agent can take it from here.');
  expect(chatOf(second)).toBe(chatOf(first));

  const assistant = (await client.callTool({ name: 'assistant', arguments: { message: 'hello there' } })) as CallToolResult;
  expect(assistant.isError).toBe(false);
  expect(textOf(assistant).length).toBeGreaterThan(0);
}, 60_000);

test('progress notifications stream the reply text when the call has a progressToken', async () => {
  const client = await connect(alice);
  const deltas: string[] = [];
  const progress: number[] = [];
  let firstAt = 0;
  const r = (await client.callTool({ name: 'long', arguments: { message: 'a story' } }, CallToolResultSchema, {
    onprogress: (p) => {
      firstAt ||= Date.now();
      progress.push(p.progress);
      if (p.message) deltas.push(p.message);
    },
  })) as CallToolResult;
  // Streamed through the gateway unbuffered: the first text came long before the answer (the turn takes about 2 s).
  expect(Date.now() - firstAt).toBeGreaterThan(1_000);
  expect(deltas.length).toBeGreaterThan(20);
  expect(deltas.join('')).toBe(textOf(r));
  expect(textOf(r)).toMatch(/^You asked: a story\. .* The end\.$/s);
  // Progress only increases.
  expect(progress).toEqual([...progress].sort((a, b) => a - b));
  expect(new Set(progress).size).toBe(progress.length);
}, 60_000);

test('a cancelled call stops the turn: the chat ends it as stopped, long before the reply would end', async () => {
  const client = await connect(alice);
  // A first, whole turn of `long` makes the chat; its log is the scale.
  const started = (await client.callTool({ name: 'long', arguments: { message: 'short' } })) as CallToolResult;
  const chatId = chatOf(started);
  const meta = async () => (await call(gw.url, 'GET', `/api/chats/meta/${APP}/long/${chatId}`, { token: alice })).json as { last_index: number; status: string };
  const wholeTurn = (await meta()).last_index;
  const before = wholeTurn;
  // A chat runs one workflow: another workflow's tool refuses it, naming why.
  const wrong = (await client.callTool({ name: 'greeter', arguments: { message: 'x', chat_id: chatId } })) as CallToolResult;
  expect(wrong.isError).toBe(true);
  expect(textOf(wrong)).toContain('runs workflow "long"');
  const longClient = client;

  const ac = new AbortController();
  const seen: string[] = [];
  const pending = longClient.callTool({ name: 'long', arguments: { message: 'cut me off', chat_id: chatId } }, CallToolResultSchema, {
    signal: ac.signal,
    onprogress: (p) => {
      if (p.message) seen.push(p.message);
      if (seen.length === 5) ac.abort('enough');
    },
  });
  await expect(pending).rejects.toThrow();
  // The chat's log as a client of it sees it, replayed and then live: the cut turn ends with a stopped run_complete.
  const socket = await TestSocket.connect(`${gw.url.replace('http', 'ws')}/ws/long/${APP}/${chatId}/alice?access_token=${alice}`);
  socket.send({ type: 'client.resume', lastClientIndex: 0 });
  const cut = await socket.waitFor((m) => m.type === 'chat.run_complete' && m.index! > before, 10_000);
  expect(cut.data.status).toBe('stopped');
  expect((await meta()).status).toBe('stopped');
  // The chat goes on: the next call is answered whole.
  const next = (await longClient.callTool({ name: 'long', arguments: { message: 'again', chat_id: chatId } })) as CallToolResult;
  expect(textOf(next)).toMatch(/^You asked: again\. .* The end\.$/s);
  // Its turn's log follows the cut one's in the chat: nothing of the cut turn came after its end.
  await socket.waitFor((m) => m.type === 'chat.run_complete' && m.index! > cut.index!, 10_000);
  await socket.close();
  const log = socket.timeline();
  expect(log[log.findIndex((e) => e.index === cut.index) + 1]).toMatchObject({ index: cut.index! + 1, type: 'chat.text', data: { role: 'user', content: 'again' } });
  // The cut turn's log against a whole turn's.
  const cutTurn = cut.index! - before;
  expect(cutTurn).toBeGreaterThan(5);
  expect(cutTurn).toBeLessThan(wholeTurn / 2);
}, 60_000);

test('a cut stream resumes with Last-Event-ID: the client reconnects and gets every progress message and the answer once', async () => {
  let cuts = 0;
  const resumed: string[] = [];
  // Cuts the tools/call response stream after a few chunks, once; the SDK client reconnects with GET and Last-Event-ID.
  const cutting: FetchLike = async (url, init) => {
    const res = await fetch(url, init);
    const lastEventId = new Headers(init?.headers).get('last-event-id');
    if (lastEventId) resumed.push(lastEventId);
    const isCall = init?.method === 'POST' && typeof init.body === 'string' && init.body.includes('"tools/call"');
    if (!isCall || cuts > 0 || !res.body) return res;
    cuts++;
    const reader = res.body.getReader();
    let chunks = 0;
    const body = new ReadableStream<Uint8Array>({
      async pull(out) {
        const { done, value } = await reader.read();
        if (done) return out.close();
        out.enqueue(value);
        if (++chunks === 8) {
          await reader.cancel();
          out.error(new Error('cut by the test'));
        }
      },
    });
    return new Response(body, { status: res.status, headers: res.headers });
  };
  const client = await connect(alice, { fetch: cutting });
  const deltas: string[] = [];
  const r = (await client.callTool({ name: 'long', arguments: { message: 'resume me' } }, CallToolResultSchema, {
    onprogress: (p) => void (p.message && deltas.push(p.message)),
  })) as CallToolResult;
  expect(cuts).toBe(1);
  expect(resumed.length).toBeGreaterThanOrEqual(1);
  expect(textOf(r)).toMatch(/^You asked: resume me\. .* The end\.$/s);
  expect(deltas.join('')).toBe(textOf(r));
}, 60_000);

test('no token: 401 with WWW-Authenticate naming the protected-resource metadata, which is served without a token', async () => {
  const init = { jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 't', version: '1' } } };
  const res = await fetch(gw.url + mcpPath(), { method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' }, body: JSON.stringify(init) });
  expect(res.status).toBe(401);
  const challenge = res.headers.get('www-authenticate') ?? '';
  const metadataUrl = /resource_metadata="([^"]+)"/.exec(challenge)?.[1];
  expect(challenge).toMatch(/^Bearer /);
  expect(metadataUrl).toBe(`${gw.url}/.well-known/oauth-protected-resource${mcpPath()}`);
  const doc = await fetch(metadataUrl as string);
  expect(doc.status).toBe(200);
  expect(await doc.json()).toMatchObject({ resource: gw.url + mcpPath(), bearer_methods_supported: ['header'] });

  // A bad token: the same challenge.
  const bad = await fetch(gw.url + mcpPath(), { method: 'POST', headers: { authorization: 'Bearer nope', 'content-type': 'application/json', accept: 'application/json, text/event-stream' }, body: JSON.stringify(init) });
  expect(bad.status).toBe(401);
  expect(bad.headers.get('www-authenticate')).toContain(`resource_metadata="${metadataUrl}"`);
  // And the SDK client fails to connect without one.
  await expect(connect('')).rejects.toThrow();
}, 30_000);

test('an Origin outside CORS_ORIGINS is a 403; an allowed one works', async () => {
  await expect(connect(alice, { origin: 'http://evil.example' })).rejects.toThrow(/403|Origin/);
  const init = { jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 't', version: '1' } } };
  const res = await fetch(gw.url + mcpPath(), {
    method: 'POST',
    headers: { authorization: `Bearer ${alice}`, origin: 'http://evil.example', 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
    body: JSON.stringify(init),
  });
  expect(res.status).toBe(403);
  const ok = await connect(alice, { origin: ORIGIN });
  expect((await ok.listTools()).tools.length).toBeGreaterThan(0);
}, 30_000);

test('another user’s chat, another app and another user’s session are refused', async () => {
  const aliceClient = await connect(alice);
  const mine = (await aliceClient.callTool({ name: 'greeter', arguments: { message: 'private' } })) as CallToolResult;
  const bobClient = await connect(bob);
  const stolen = (await bobClient.callTool({ name: 'greeter', arguments: { message: 'let me in', chat_id: chatOf(mine) } })) as CallToolResult;
  expect(stolen.isError).toBe(true);
  expect(textOf(stolen)).not.toContain('private');
  // The same answer as for a chat that does not exist.
  const none = (await bobClient.callTool({ name: 'greeter', arguments: { message: 'x', chat_id: `no-such-${randomBytes(4).toString('hex')}` } })) as CallToolResult;
  expect(none.isError).toBe(true);
  expect(textOf(stolen).replace(chatOf(mine), 'ID')).toBe(textOf(none).replace(/no-such-[0-9a-f]+/, 'ID'));

  // A token without the app: refused before any session.
  await expect(connect(otherApp)).rejects.toThrow(/FORBIDDEN.*token does not allow app/);

  // Alice's session id used with Bob's token: no such session.
  const sessionId = (aliceClient.transport as StreamableHTTPClientTransport).sessionId as string;
  const res = await fetch(gw.url + mcpPath(), {
    method: 'POST',
    headers: { authorization: `Bearer ${bob}`, 'mcp-session-id': sessionId, 'mcp-protocol-version': '2025-11-25', 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 9, method: 'tools/list' }),
  });
  expect(res.status).toBe(404);
}, 30_000);

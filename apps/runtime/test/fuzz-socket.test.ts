/**
 * Property-based: every client message type of the socket contract, with arbitrary and hostile
 * fields, over a real WebSocket to the runtime, connected as a client connects. Each frame gets
 * its normal reply or a chat.error whose code is not INTERNAL, and the socket stays open.
 */
import fc from 'fast-check';
import { ClientMessage, CLIENT_MESSAGE_TYPES, MultitaskStrategy, WsErrorCode } from '@tessera/contracts';
import { call, TestSocket, type Envelope } from '@tessera/kit/testing';
import { startRuntime, testEnv, token, wsUrl, type Env, type RuntimeInstance } from './harness';

const RUNS = Number(process.env.FUZZ_RUNS ?? 150);
let env: Env;
let rt: RuntimeInstance;
let tok: string;
const unhandled: unknown[] = [];
const onUnhandled = (e: unknown) => unhandled.push(e);

beforeAll(async () => {
  process.on('unhandledRejection', onUnhandled);
  env = await testEnv('fuzzws');
  // Every frame here is answered before the next is sent; the rate limit has its own tests.
  rt = await startRuntime(env, { worker: false, extra: { WS_MESSAGES_PER_SECOND: '100000', WS_MESSAGE_BURST: '100000', WS_USER_MESSAGES_PER_MINUTE: '0' } });
  tok = await token('wsfuzz');
});
afterAll(async () => {
  process.off('unhandledRejection', onUnhandled);
  await rt?.close();
  await env?.dropSchema();
});

/** Control messages that answer a client message (timeline events carry an index and are not answers). */
const REPLIES = new Set(['ack.input', 'chat.input_ack', 'ack.tool_call_response', 'chat.resume_boundary', 'chat.mode_changed', 'chat.workflow_started', 'chat.error']);
const isReply = (m: Envelope) => m.index === undefined && REPLIES.has(m.type);

const HOSTILE_TEXT = ['a\u0000b', '\ud800', 'x\udfff', '\u202e', '', ' ', '%ZZ', '../x', '😀'.repeat(20), 'x'.repeat(40_000)];
const text = fc.oneof(fc.constantFrom(...HOSTILE_TEXT), fc.string(), fc.string({ unit: 'binary', maxLength: 30 }));
const scalar = fc.oneof(text, fc.integer(), fc.double(), fc.constantFrom(-1, 0, 1e21, -1e308, 2 ** 53 + 1, 0.5, true, null));
/** Deep values are written as a marker that `frame()` expands: JSON.stringify overflows on them. */
const deepMarker = fc.integer({ min: 20, max: 10_000 }).map((n) => `@@deep:${n}@@`);
const json = fc.oneof(
  { weight: 3, arbitrary: scalar },
  { weight: 2, arbitrary: fc.dictionary(text, fc.oneof(scalar, fc.array(text, { maxLength: 3 })), { maxKeys: 4 }) },
  { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 3 }) },
  { weight: 1, arbitrary: deepMarker },
  { weight: 1, arbitrary: fc.array(fc.constantFrom('assistant', 'greeter', 'nope', '\u0000'), { maxLength: 12 }) },
);
const frame = (v: unknown) =>
  JSON.stringify(v).replace(/"@@deep:(\d+)@@"/g, (_m, n) => `${'{"a":'.repeat(Number(n))}[]${'}'.repeat(Number(n))}`);

/** Values that pass the contract, so that some frames reach the handler behind it. */
const plausible = (chatId: string): Record<string, fc.Arbitrary<unknown>> => ({
  text: fc.constantFrom('hello', 'a'.repeat(32_000)),
  chat_id: fc.constantFrom(chatId, 'someone-elses-chat'),
  context: fc.constantFrom({ page: 'pricing' }, {}),
  client_message_id: fc.string({ maxLength: 8 }).map((s) => `m-${s}`),
  // Without it about 2.5% of user.input.submit frames passed the contract: none of 150 did in about 2% of runs.
  multitask_strategy: fc.constantFrom(...MultitaskStrategy.options),
  tool_call_id: fc.constantFrom('no-such-call', 'x'),
  response: fc.constant({ ok: true }),
  lastClientIndex: fc.integer({ min: -1, max: 100 }),
  workflow_name: fc.constantFrom('assistant', 'greeter', 'nope'),
  workflows: fc.constantFrom(['assistant'], ['greeter', 'assistant'], ['nope']),
});

/** A message of `type`: its fields plausible or hostile, some missing, some extra. */
function messageOf(type: string, chatId: string): fc.Arbitrary<string> {
  const shape = ClientMessage.options.find((o) => o.shape.type.value === type)!.shape as Record<string, unknown>;
  const fields = Object.keys(shape).filter((k) => k !== 'type');
  const good = plausible(chatId);
  const value = (f: string) => fc.oneof({ weight: 3, arbitrary: good[f] ?? json }, { weight: 2, arbitrary: json }, { weight: 1, arbitrary: fc.constant(undefined) });
  return fc
    .tuple(fc.tuple(...fields.map(value)), fc.oneof({ weight: 4, arbitrary: fc.constant({}) }, fc.dictionary(text, json, { maxKeys: 2 })))
    .map(([vals, extra]) => {
      const m: Record<string, unknown> = { ...extra, type };
      fields.forEach((f, i) => vals[i] !== undefined && (m[f] = vals[i]));
      return frame(m);
    });
}

/** Frames that are not a message at all: bytes, other JSON, text that is not JSON. */
const junk = fc.oneof(
  fc.jsonValue().map((v) => JSON.stringify(v) ?? 'null'),
  fc.string(),
  fc.constantFrom('{"type":', '{"type":"client.resume","lastClientIndex":1e999}', '{"type":{"$ne":null}}', '{"__proto__":{"type":"client.resume"}}', '[{"type":"user.input.submit"}]'),
  fc.record({ type: text }).map((m) => JSON.stringify(m)),
  fc.uint8Array({ maxLength: 200 }).map((b) => Buffer.from(b)),
);

async function openChat(): Promise<{ socket: TestSocket; chatId: string }> {
  const r = await call(rt.url, 'POST', '/api/chats/app1/assistant/start', { token: tok, body: { user_id: 'wsfuzz' } });
  const socket = await TestSocket.connect(wsUrl(rt.wsUrl, 'assistant', 'app1', r.json.chat_id, 'wsfuzz', tok));
  await socket.waitType('chat_meta');
  return { socket, chatId: r.json.chat_id };
}

/** Sends one frame and waits for the next answer; an INTERNAL error or silence fails the property. */
async function exchange(socket: TestSocket, data: string | Buffer): Promise<Envelope> {
  const from = socket.messages.length;
  if (typeof data === 'string') socket.send(data);
  else socket.ws.send(data, { binary: true });
  const reply = await socket.waitFor(isReply, 10_000, from).catch(() => {
    throw new Error(`no answer to ${String(data).slice(0, 200)}; socket closed: ${socket.closeCode ?? 'no'} ${socket.closeReason}`);
  });
  if (reply.type === 'chat.error' && reply.data.error_code === WsErrorCode.Internal) throw new Error(`INTERNAL for ${String(data).slice(0, 300)}`);
  // A batch is answered once per workflow: take them all, so none is counted as the next frame's answer.
  if (reply.type === 'chat.workflow_started' && reply.data.batch) {
    const n = (JSON.parse(String(data)) as { workflows: unknown[] }).workflows.length;
    let at = socket.messages.indexOf(reply);
    for (let i = 1; i < n; i++) at = socket.messages.indexOf(await socket.waitFor(isReply, 10_000, at + 1));
  }
  return reply;
}

/** The socket still answers a well-formed message after everything before it. */
async function expectStillServing(socket: TestSocket) {
  expect(socket.closeCode).toBeNull();
  const reply = await exchange(socket, JSON.stringify({ type: 'client.resume', lastClientIndex: 0 }));
  expect(reply.type).toBe('chat.resume_boundary');
}

describe.each(CLIENT_MESSAGE_TYPES)('%s', (type) => {
  it(`every frame gets its answer, never INTERNAL, and the socket stays open (${RUNS} runs)`, async () => {
    const { socket, chatId } = await openChat();
    const kinds = new Map<string, number>();
    await fc.assert(
      fc.asyncProperty(messageOf(type, chatId), async (data) => {
        const reply = await exchange(socket, data);
        const kind = reply.type === 'chat.error' ? reply.data.error_code : reply.type;
        kinds.set(kind, (kinds.get(kind) ?? 0) + 1);
      }),
      { numRuns: RUNS },
    );
    if (process.env.FUZZ_DEBUG) console.log(type, JSON.stringify([...kinds]));
    // Some frames got past the schema: the property reached the handlers, not only the validation.
    expect([...kinds.keys()].some((k) => k !== WsErrorCode.SchemaValidationFailed)).toBe(true);
    await expectStillServing(socket);
    await socket.close();
  });
});

it(`frames that are not messages get chat.error and the socket stays open (${RUNS} runs)`, async () => {
  const { socket } = await openChat();
  await fc.assert(
    fc.asyncProperty(junk, async (data) => {
      const reply = await exchange(socket, data);
      if (reply.type === 'chat.error') expect(reply.data.error_code).not.toBe(WsErrorCode.Internal);
    }),
    { numRuns: RUNS },
  );
  await expectStillServing(socket);
  await socket.close();
  expect(unhandled).toEqual([]);
  expect((await call(rt.url, 'GET', '/health')).status).toBe(200);
});

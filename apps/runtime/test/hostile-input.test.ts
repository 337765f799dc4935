/**
 * Input PostgreSQL cannot store (NUL, lone surrogates, deep nesting) in every client field, over
 * HTTP and the socket: a 400 / chat.error naming the field, never a 500 or INTERNAL. Also
 * `client.resume -1` and Auth0 subjects (issue 7, findings 4, 13, 14).
 */
import { call, TestSocket } from '@tessera/kit/testing';
import { http, SERVICE_KEY, startRuntime, testEnv, token, wsUrl, type Env, type RuntimeInstance } from './harness';

let env: Env;
let rt: RuntimeInstance;

beforeAll(async () => {
  env = await testEnv('hostile');
  rt = await startRuntime(env);
});
afterAll(async () => {
  await rt?.close();
  await env?.dropSchema();
});

/** `levels` nested objects. Past a few thousand levels JSON.stringify overflows, so deep values are
 * written as a marker that `json()` replaces with the nested text. */
const nested = (levels: number): unknown => {
  if (levels > 1_000) return `@@deep:${levels}@@`;
  const root: Record<string, unknown> = {};
  let cur = root;
  for (let i = 1; i < levels; i++) cur = (cur.a = {}) as Record<string, unknown>;
  return root;
};
const json = (v: unknown) => JSON.stringify(v).replace(/"@@deep:(\d+)@@"/g, (_m, n) => `${'{"a":'.repeat(Number(n) - 1)}{}${'}'.repeat(Number(n) - 1)}`);
/** A request whose body is `json(body)`, answered as `{status, body}`. */
async function post(path: string, body: unknown, tok: string, headers: Record<string, string> = {}) {
  const r = await call(rt.url, 'POST', path, { raw: json(body), token: tok, headers: { 'content-type': 'application/json', ...headers } });
  return { status: r.status, body: r.json };
}
const NUL = 'a\u0000b';
const LONE = 'x\ud800y';

async function startChat(user: string) {
  const tok = await token(user);
  const r = await http(rt.url, 'POST', '/api/chats/app1/assistant/start', { user_id: user }, tok);
  expect(r.status).toBe(201);
  return { tok, chatId: r.body.chat_id as string, wsPath: r.body.websocket_url as string };
}

/** A 400 VALIDATION_FAILED whose first issue's path starts with `path`. */
function expectRefused(r: { status: number; body: any }, path: string) {
  expect({ status: r.status, code: r.body?.error?.code }).toEqual({ status: 400, code: 'VALIDATION_FAILED' });
  expect(r.body.error.details.issues[0].path.startsWith(path)).toBe(true);
  expect(r.body.error.message).toContain(path);
}

describe('HTTP: unstorable text and deep JSON are a 400 naming the field', () => {
  let tok: string;
  let chatId: string;
  beforeAll(async () => {
    ({ tok, chatId } = await startChat('hank'));
  });

  it.each([
    ['context with NUL', { context: { a: NUL } }, 'body.context.a'],
    ['context with a lone surrogate', { context: { a: [LONE] } }, 'body.context.a.0'],
    ['context with a NUL key', { context: { ['k\u0000']: 1 } }, 'body.context'],
    ['context 500 deep', { context: nested(500) }, 'body.context'],
    ['context 10,000 deep', { context: nested(10_000) }, 'body.context'],
    ['client_request_id with NUL', { client_request_id: NUL }, 'body.client_request_id'],
    ['client_request_id with a lone surrogate', { client_request_id: '\udc00' }, 'body.client_request_id'],
  ])('POST /api/chats/…/start: %s', async (_name, extra, path) => {
    expectRefused(await post('/api/chats/app1/assistant/start', { user_id: 'hank', ...extra }, tok), path);
  });

  it.each([
    ['initial_context with NUL', { initial_context: { tier: NUL } }, 'body.initial_context.tier'],
    ['initial_context 500 deep', { initial_context: nested(500) }, 'body.initial_context'],
    ['ui_context with a lone surrogate', { ui_context: { page: LONE } }, 'body.ui_context.page'],
    ['client_request_id with NUL', { client_request_id: NUL }, 'body.client_request_id'],
  ])('POST /api/chat/start with the service key: %s', async (_name, extra, path) => {
    const body = { app_id: 'app1', user_id: 'hank', workflow_name: 'assistant', ...extra };
    expectRefused(await post('/api/chat/start', body, tok, { 'x-tessera-service-key': SERVICE_KEY }), path);
  });

  it.each([
    ['message with NUL', { message: NUL }, 'body.message'],
    ['message with a lone surrogate', { message: LONE }, 'body.message'],
    ['client_message_id with NUL', { message: 'hi', client_message_id: NUL }, 'body.client_message_id'],
  ])('POST /chat/…/input: %s', async (_name, extra, path) => {
    expectRefused(await post(`/chat/app1/${chatId}/hank/input`, { workflow_name: 'assistant', ...extra }, tok), path);
  });

  it.each([
    ['event_id with NUL', { event_id: NUL, response_data: {} }, 'body.event_id'],
    ['response_data with a lone surrogate', { event_id: 'e1', response_data: { ok: LONE } }, 'body.response_data.ok'],
    ['response_data 10,000 deep', { event_id: 'e1', response_data: nested(10_000) }, 'body.response_data'],
  ])('POST /api/tool-call/respond: %s', async (_name, body, path) => {
    expectRefused(await post('/api/tool-call/respond', body, tok), path);
  });

  describe('upload', () => {
    const form = (fields: Record<string, string>, filename = 'notes.txt') => {
      const f = new FormData();
      f.set('file', new Blob(['hello']), filename);
      for (const [k, v] of Object.entries({ appId: 'app1', userId: 'hank', chatId, ...fields })) f.set(k, v);
      return f;
    };
    const upload = async (body: FormData | string, headers: Record<string, string> = {}) => {
      const res = await fetch(`${rt.url}/api/chat/upload`, { method: 'POST', body, headers: { authorization: `Bearer ${tok}`, ...headers } });
      return { status: res.status, body: (await res.json()) as any };
    };

    it('an intent with NUL is a 400 naming form.intent', async () => {
      expectRefused(await upload(form({ intent: NUL })), 'form.intent');
    });

    /** A multipart body with the filename's bytes exactly as given (FormData would re-encode them). */
    const rawUpload = (filenameParam: Buffer) => {
      const b = 'fname-boundary';
      const field = (k: string, v: string) => `--${b}\r\nContent-Disposition: form-data; name="${k}"\r\n\r\n${v}\r\n`;
      const body = Buffer.concat([
        Buffer.from(field('appId', 'app1') + field('userId', 'hank') + field('chatId', chatId) + `--${b}\r\nContent-Disposition: form-data; name="file"; `),
        filenameParam,
        Buffer.from(`\r\nContent-Type: text/plain\r\n\r\nhello\r\n--${b}--\r\n`),
      ]);
      return call(rt.url, 'POST', '/api/chat/upload', { raw: body, headers: { authorization: `Bearer ${tok}`, 'content-type': `multipart/form-data; boundary=${b}` } });
    };

    it.each([
      ['an encoded NUL', Buffer.from("filename*=UTF-8''re%00port.txt"), 're\ufffdport.txt'],
      ['an encoded lone surrogate', Buffer.from("filename*=UTF-8''%ED%A0%80notes.txt"), /^\ufffd+notes\.txt$/],
      ['UTF-8 (kept as sent)', Buffer.from('filename="résumé.txt"'), 'résumé.txt'],
    ])('a filename with %s is stored, with what PostgreSQL cannot hold replaced', async (_name, param, expected) => {
      const r = await rawUpload(param);
      expect(r.status).toBe(201);
      if (typeof expected === 'string') expect(r.json.filename).toBe(expected);
      else expect(r.json.filename).toMatch(expected);
      const stored = await rt.s.db.prisma.attachment.findUnique({ where: { id: r.json.attachment_id } });
      expect(stored!.filename).toBe(r.json.filename);
    });

    it('a raw NUL inside a quoted filename is a 400 naming the problem', async () => {
      const r = await rawUpload(Buffer.from('filename="re\u0000port.txt"'));
      expect(r.status).toBe(400);
      expect(r.json.error.message).toMatch(/^invalid multipart body: /);
    });

    const boundary = 'XyZ123';
    const part = `--${boundary}\r\nContent-Disposition: form-data; name="appId"\r\n\r\napp1\r\n`;
    it.each([
      ['truncated', `${part}--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.txt"\r\n\r\nhal`],
      ['without its boundary', 'no boundary at all'],
      ['with a malformed part header', `--${boundary}\r\nContent-Disposition form-data\r\n\r\nx\r\n--${boundary}--\r\n`],
    ])('a multipart body %s is a 400 naming the problem', async (_name, raw) => {
      const r = await call(rt.url, 'POST', '/api/chat/upload', { raw, headers: { authorization: `Bearer ${tok}`, 'content-type': `multipart/form-data; boundary=${boundary}` } });
      expect(r.status).toBe(400);
      expect(r.json.error).toEqual({ code: 'BAD_REQUEST', message: expect.stringMatching(/^invalid multipart body: /) });
    });

    it('a multipart content type without a boundary is a 400', async () => {
      const r = await call(rt.url, 'POST', '/api/chat/upload', { raw: 'x', headers: { authorization: `Bearer ${tok}`, 'content-type': 'multipart/form-data' } });
      expect(r.status).toBe(400);
      expect(r.json.error.code).toBe('BAD_REQUEST');
    });
  });

  afterAll(async () => {
    expect((await call(rt.url, 'GET', '/health')).status).toBe(200);
  });
});

describe('socket: the same input is chat.error SCHEMA_VALIDATION_FAILED naming the field', () => {
  it.each([
    ['user.input.submit text with NUL', { type: 'user.input.submit', text: NUL }, 'text'],
    ['user.input.submit text with a lone surrogate', { type: 'user.input.submit', text: LONE }, 'text'],
    ['user.input.submit context with NUL', { type: 'user.input.submit', text: 'hi', context: { k: NUL } }, 'context.k'],
    ['user.input.submit context 500 deep', { type: 'user.input.submit', text: 'hi', context: nested(500) }, 'context'],
    ['user.input.submit context 10,000 deep', { type: 'user.input.submit', text: 'hi', context: nested(10_000) }, 'context'],
    ['user.input.submit client_message_id with NUL', { type: 'user.input.submit', text: 'hi', client_message_id: NUL }, 'client_message_id'],
    ['tool_call_response tool_call_id with NUL', { type: 'tool_call_response', tool_call_id: NUL, response: {} }, 'tool_call_id'],
    ['tool_call_response response with a lone surrogate', { type: 'tool_call_response', tool_call_id: 't1', response: { a: LONE } }, 'response.a'],
  ])('%s', async (_name, frame, path) => {
    const { tok, chatId } = await startChat('ivy');
    const c = await TestSocket.connect(wsUrl(rt.wsUrl, 'assistant', 'app1', chatId, 'ivy', tok));
    await c.waitType('chat_meta');
    c.send(json(frame));
    const err = await c.waitType('chat.error');
    expect(err.data.error_code).toBe('SCHEMA_VALIDATION_FAILED');
    expect(err.data.details.issues[0].path.startsWith(path)).toBe(true);
    // The socket is still usable.
    c.send({ type: 'user.input.submit', text: 'still here', client_message_id: 'after' });
    expect((await c.waitType('ack.input')).data.client_message_id).toBe('after');
    expect(c.closeCode).toBeNull();
    await c.close();
  });
});

test('client.resume with lastClientIndex -1 (nothing applied) replays the whole chat', async () => {
  const { tok, chatId } = await startChat('jack');
  const url = wsUrl(rt.wsUrl, 'assistant', 'app1', chatId, 'jack', tok);
  const first = await TestSocket.connect(url);
  await first.waitType('chat_meta');
  first.send({ type: 'user.input.submit', text: 'hello' });
  await first.waitType('chat.run_complete');
  const stored = first.timeline().length;
  await first.close();

  const again = await TestSocket.connect(url);
  await again.waitType('chat_meta');
  again.send({ type: 'client.resume', lastClientIndex: -1 });
  const boundary = await again.waitType('chat.resume_boundary');
  expect(again.messages.filter((m) => m.type === 'chat.error')).toEqual([]);
  expect(boundary.data).toMatchObject({ replayed_messages: stored, total_messages: stored, resume_state: 'replayed' });
  expect(again.timeline().map((e) => e.index)).toEqual(Array.from({ length: stored }, (_, i) => i + 1));
  await again.close();
});

test('an Auth0 subject (auth0|abc) starts a chat and opens its socket', async () => {
  for (const sub of ['auth0|abc', 'google-oauth2|1234']) {
    const tok = await token(sub);
    const r = await http(rt.url, 'POST', '/api/chats/app1/assistant/start', { user_id: sub }, tok);
    expect(r.status).toBe(201);
    expect(r.body.websocket_url).toBe(`/ws/assistant/app1/${r.body.chat_id}/${encodeURIComponent(sub)}`);
    const c = await TestSocket.connect(`${rt.wsUrl}${r.body.websocket_url}?access_token=${tok}`);
    expect((await c.waitType('chat_meta')).data).toMatchObject({ chat_id: r.body.chat_id, user_id: sub });
    c.send({ type: 'user.input.submit', text: 'hi' });
    expect((await c.waitType('chat.run_complete')).data.status).toBe('completed');
    await c.close();
    const sessions = await http(rt.url, 'GET', `/api/sessions/app1/${encodeURIComponent(sub)}`, undefined, tok);
    expect(sessions.body).toEqual([expect.objectContaining({ chat_id: r.body.chat_id, user_id: sub })]);
  }
});

/**
 * Document 003 from a plain WebSocket client: the mobile startup flow, idempotent start, UI tool
 * calls answered over the socket and over HTTP, attachments, malformed messages.
 */
import { TestSocket as TestClient } from '@tessera/kit/testing';
import { http, startRuntime, testEnv, token, transcript, wsUrl, type Env, type RuntimeInstance } from './harness';

let env: Env;
let rt: RuntimeInstance;

beforeAll(async () => {
  env = await testEnv('contract');
  rt = await startRuntime(env);
});
afterAll(async () => {
  await rt?.close();
  await env?.dropSchema();
});

async function startChat(user: string, wf = 'assistant', extra: Record<string, unknown> = {}) {
  const tok = await token(user);
  const r = await http(rt.url, 'POST', `/api/chats/app1/${wf}/start`, { user_id: user, ...extra }, tok);
  expect([200, 201]).toContain(r.status);
  return { tok, chat: r.body as { chat_id: string; websocket_url: string; cache_seed: number; reused: boolean } };
}

test('mobile startup flow (003 §7): discover, start, connect, chat, reconnect and resume', async () => {
  // 1. Fetch workflows, 2. pick the entry point.
  const wfs = await http(rt.url, 'GET', '/api/workflows');
  expect(wfs.status).toBe(200);
  const entry = Object.values(wfs.body as Record<string, { name: string; entry_point: boolean }>).find((w) => w.entry_point);
  expect(entry?.name).toBe('assistant');
  const transport = await http(rt.url, 'GET', `/api/workflows/${entry!.name}/transport`);
  expect(transport.body.websocket_path).toBe('/ws/assistant/{app_id}/{chat_id}/{user_id}');

  // 3. Start with a client_request_id.
  const tok = await token('alice');
  const start = await http(rt.url, 'POST', '/api/chats/app1/assistant/start', { user_id: 'alice', client_request_id: 'boot-1' }, tok);
  expect(start.status).toBe(201);
  expect(start.body).toMatchObject({ reused: false, websocket_url: `/ws/assistant/app1/${start.body.chat_id}/alice` });
  const chatId = start.body.chat_id;

  // 4. Open the socket with the token; chat_meta comes first.
  const c1 = await TestClient.connect(`${rt.wsUrl}${start.body.websocket_url}?access_token=${tok}`);
  const meta = await c1.waitType('chat_meta');
  expect(c1.messages[0].type).toBe('chat_meta');
  expect(meta.data).toMatchObject({ chat_id: chatId, cache_seed: start.body.cache_seed, status: 'created', last_index: 0 });

  // 5. Consume events of a turn.
  c1.send({ type: 'user.input.submit', chat_id: chatId, text: 'Hello runtime', client_message_id: 'm1' });
  const ack = await c1.waitType('ack.input');
  expect(ack.data.client_message_id).toBe('m1');
  const done = await c1.waitType('chat.run_complete');
  expect(done.data.status).toBe('completed');
  const tl = c1.timeline();
  expect(tl.map((e) => e.index)).toEqual(tl.map((_, i) => i + 1)); // one increasing order, no gaps
  expect(transcript(tl)[0]).toBe('user:user: Hello runtime');
  expect(transcript(tl)[1]).toMatch(/^assistant:assistant: .*Hello runtime/);
  const seenUpTo = 3;
  await c1.close();

  // Meanwhile another turn runs (HTTP fallback) while the client is away.
  const input = await http(rt.url, 'POST', `/chat/app1/${chatId}/alice/input`, { message: 'Second message', workflow_name: 'assistant' }, tok);
  expect(input.status).toBe(202);
  await waitUntil(async () => (await rt.s.chats.get(chatId))!.lastIndex > done.index! + 3 && (await rt.s.inputs.hasPending(chatId)) === false);

  // 6. Reconnect and resume from what the client had applied.
  const c2 = await TestClient.connect(wsUrl(rt.wsUrl, 'assistant', 'app1', chatId, 'alice', tok));
  await c2.waitType('chat_meta');
  c2.send({ type: 'client.resume', chat_id: chatId, lastClientIndex: seenUpTo });
  const boundary = await c2.waitType('chat.resume_boundary');
  const last = (await rt.s.chats.get(chatId))!.lastIndex;
  expect(boundary.data).toMatchObject({ replayed_messages: last - seenUpTo, last_message_index: last, total_messages: last, resume_state: 'replayed' });
  const replayed = c2.timeline();
  expect(replayed[0].index).toBe(seenUpTo + 1);
  expect(replayed.at(-1)!.index).toBe(last);
  expect(transcript([...tl.filter((e) => e.index! <= seenUpTo), ...replayed])).toContain('user:user: Second message');

  // Idempotent start: the same client_request_id gives the same chat.
  const again = await http(rt.url, 'POST', '/api/chats/app1/assistant/start', { user_id: 'alice', client_request_id: 'boot-1' }, tok);
  expect(again.status).toBe(200);
  expect(again.body).toMatchObject({ chat_id: chatId, reused: true, cache_seed: start.body.cache_seed });
  const meta2 = await http(rt.url, 'GET', `/api/chats/meta/app1/assistant/${chatId}`, undefined, tok);
  expect(meta2.body).toMatchObject({ chat_id: chatId, cache_seed: start.body.cache_seed, status: 'in_progress', last_index: last });
  const sessions = await http(rt.url, 'GET', '/api/sessions/app1/alice', undefined, tok);
  expect(sessions.body.map((s: { chat_id: string }) => s.chat_id)).toContain(chatId);
  const recent = await http(rt.url, 'GET', '/api/sessions/recent/app1/alice', undefined, tok);
  expect(recent.body).toEqual({ found: true, chat_id: chatId, workflow_name: 'assistant' });
  const none = await http(rt.url, 'GET', '/api/sessions/recent/app1/nobody', undefined, await token('nobody'));
  expect(none).toEqual({ status: 200, body: { found: false, chat_id: null, workflow_name: null } });
  await c2.close();
});

test('20 concurrent starts with one client_request_id make one chat', async () => {
  const tok = await token('bob');
  const replies = await Promise.all(
    Array.from({ length: 20 }, () => http(rt.url, 'POST', '/api/chats/app1/assistant/start', { user_id: 'bob', client_request_id: 'same' }, tok)),
  );
  const ids = new Set(replies.map((r) => r.body.chat_id));
  expect(ids.size).toBe(1);
  expect(replies.filter((r) => r.body.reused === false)).toHaveLength(1);
  expect(replies.filter((r) => r.body.reused === true)).toHaveLength(19);
  expect(new Set(replies.map((r) => r.body.cache_seed)).size).toBe(1);
  const forced = await http(rt.url, 'POST', '/api/chats/app1/assistant/start', { user_id: 'bob', client_request_id: 'same', force_new: true }, tok);
  expect(forced.body.reused).toBe(false);
  expect(forced.body.chat_id).not.toBe([...ids][0]);
});

test('a UI tool call awaiting a response is answered over the socket, then over HTTP', async () => {
  const { tok, chat } = await startChat('carol', 'ask_user');
  const c = await TestClient.connect(wsUrl(rt.wsUrl, 'ask_user', 'app1', chat.chat_id, 'carol', tok));
  await c.waitType('chat_meta');

  c.send({ type: 'user.input.submit', text: 'I need help' });
  const call = await c.waitType('chat.tool_call');
  expect(call.data).toMatchObject({ tool_name: 'ask_user', component: 'UserInputRequest', awaiting_response: true, interaction_type: 'input_request', display: 'composer' });
  const paused = await c.waitType('chat.run_complete');
  expect(paused.data.status).toBe('awaiting_input');
  expect((await http(rt.url, 'GET', `/api/chats/meta/app1/ask_user/${chat.chat_id}`, undefined, tok)).body.pending_tool_calls).toEqual([call.data.event_id]);

  // Over the socket: ack, then the completion opens the next turn, and the agent uses the answer.
  const from = c.messages.length;
  c.send({ type: 'tool_call_response', tool_call_id: call.data.event_id, response: { answer: 'Ada' } });
  expect((await c.waitType('ack.tool_call_response', 5000, from)).data.event_id).toBe(call.data.event_id);
  const complete = await c.waitType('chat.tool_call_complete', 5000, from);
  expect(complete.data).toMatchObject({ event_id: call.data.event_id, response: { answer: 'Ada' } });
  await c.waitFor((m) => m.type === 'chat.run_complete' && m.index! > paused.index!, 5000, from);
  expect(transcript(c.timeline()).join('\n')).toContain('Ada');

  // Answering twice is refused with a clear code; the socket stays open.
  c.send({ type: 'tool_call_response', tool_call_id: call.data.event_id, response: { answer: 'again' } });
  const err = await c.waitFor((m) => m.type === 'chat.error' && m.data.error_code === 'TOOL_CALL_NOT_AWAITING', 5000, from);
  expect(err.data.message).toContain('not awaiting');

  // Over HTTP: a second question, answered with POST /api/tool-call/respond.
  const from2 = c.messages.length;
  c.send({ type: 'user.input.submit', text: 'One more thing' });
  const call2 = await c.waitFor((m) => m.type === 'chat.tool_call', 5000, from2);
  await c.waitFor((m) => m.type === 'chat.run_complete', 5000, from2);
  const other = await http(rt.url, 'POST', '/api/tool-call/respond', { event_id: call2.data.event_id, response_data: { answer: 'x' } }, await token('mallory'));
  expect(other.status).toBe(404);
  const res = await http(rt.url, 'POST', '/api/tool-call/respond', { event_id: call2.data.event_id, response_data: { answer: 'Grace' } }, tok);
  expect(res).toEqual({ status: 202, body: { accepted: true, event_id: call2.data.event_id, chat_id: chat.chat_id } });
  await c.waitFor((m) => m.type === 'chat.tool_call_complete' && m.data.event_id === call2.data.event_id, 5000, from2);
  await c.waitFor((m) => m.type === 'chat.run_complete' && m.data.status === 'completed' && m.index! > call2.index!, 5000, from2);
  expect(transcript(c.timeline()).join('\n')).toContain('Grace');
  const bad = await http(rt.url, 'POST', '/api/tool-call/respond', { event_id: 'nope', response_data: {} }, tok);
  expect(bad.status).toBe(404);
  expect(bad.body.error.code).toBe('TOOL_CALL_NOT_FOUND');
  await c.close();
});

test('an attachment is stored and announced on the timeline', async () => {
  const { tok, chat } = await startChat('dave');
  const c = await TestClient.connect(wsUrl(rt.wsUrl, 'assistant', 'app1', chat.chat_id, 'dave', tok));
  await c.waitType('chat_meta');
  const form = new FormData();
  form.set('file', new Blob([Buffer.from('hello attachment')], { type: 'text/plain' }), 'notes.txt');
  form.set('appId', 'app1');
  form.set('userId', 'dave');
  form.set('chatId', chat.chat_id);
  form.set('intent', 'context');
  const res = await fetch(`${rt.url}/api/chat/upload`, { method: 'POST', body: form, headers: { authorization: `Bearer ${tok}` } });
  expect(res.status).toBe(201);
  const body = (await res.json()) as any;
  expect(body).toMatchObject({ chat_id: chat.chat_id, filename: 'notes.txt', size: 16, content_type: 'text/plain', intent: 'context', bundle_path: null });
  const ev = await c.waitType('chat.attachment_uploaded');
  expect(ev.index).toBe(1);
  expect(ev.data).toMatchObject({ attachment_id: body.attachment_id, filename: 'notes.txt', size: 16, uploaded_by: 'dave' });
  const stored = await rt.s.db.prisma.attachment.findUnique({ where: { id: body.attachment_id } });
  expect(Buffer.from(stored!.data).toString()).toBe('hello attachment');
  // What agents read of the chat's attachments: this one, from the database (no document id), bytes and all.
  expect(await rt.s.attachments.list({ id: chat.chat_id, appId: 'app1' })).toEqual([
    expect.objectContaining({ attachment_id: body.attachment_id, document_id: null, filename: 'notes.txt', content_type: 'text/plain', size: 16, uploaded_by: 'dave' }),
  ]);
  const opened = await rt.s.attachments.open({ id: chat.chat_id, appId: 'app1' }, body.attachment_id);
  expect(Buffer.concat(await opened!.body.toArray()).toString()).toBe('hello attachment');
  expect(await rt.s.attachments.open({ id: (await startChat('erin')).chat.chat_id, appId: 'app1' }, body.attachment_id)).toBeNull();

  // Missing file, a too-large file, another user's chat.
  const noFile = new FormData();
  noFile.set('appId', 'app1');
  noFile.set('userId', 'dave');
  noFile.set('chatId', chat.chat_id);
  const r2 = await fetch(`${rt.url}/api/chat/upload`, { method: 'POST', body: noFile, headers: { authorization: `Bearer ${tok}` } });
  expect(r2.status).toBe(400);
  expect(((await r2.json()) as any).error.message).toContain('file');
  const big = new FormData();
  big.set('file', new Blob([Buffer.alloc(rt.s.config.UPLOAD_MAX_BYTES + 1)]), 'big.bin');
  big.set('appId', 'app1');
  big.set('userId', 'dave');
  big.set('chatId', chat.chat_id);
  const r3 = await fetch(`${rt.url}/api/chat/upload`, { method: 'POST', body: big, headers: { authorization: `Bearer ${tok}` } });
  expect(r3.status).toBe(413);
  await c.close();
});

test('malformed and unknown messages get chat.error and the socket stays open', async () => {
  const { tok, chat } = await startChat('erin');
  const c = await TestClient.connect(wsUrl(rt.wsUrl, 'assistant', 'app1', chat.chat_id, 'erin', tok));
  await c.waitType('chat_meta');
  c.send('not json{');
  expect((await c.waitFor((m) => m.type === 'chat.error')).data.error_code).toBe('INVALID_JSON');
  c.send({ type: 'make.coffee' });
  expect((await c.waitFor((m) => m.data?.error_code === 'UNKNOWN_MESSAGE_TYPE')).data.message).toContain('make.coffee');
  c.send({ type: 'user.input.submit', text: '' });
  const v = await c.waitFor((m) => m.data?.error_code === 'SCHEMA_VALIDATION_FAILED');
  expect(v.data.message).toContain('text');
  c.send({ type: 'client.resume', lastClientIndex: -4 });
  expect((await c.waitFor((m) => m.data?.error_code === 'SCHEMA_VALIDATION_FAILED' && m.data.message.includes('lastClientIndex'))).type).toBe('chat.error');
  c.send({ type: 'user.input.submit', chat_id: 'someone-elses', text: 'hi' });
  expect((await c.waitFor((m) => m.data?.error_code === 'CHAT_MISMATCH')).type).toBe('chat.error');
  c.send({ type: 'chat.start_workflow', workflow_name: 'nope' });
  expect((await c.waitFor((m) => m.data?.error_code === 'WORKFLOW_NOT_FOUND')).type).toBe('chat.error');
  // Still open and working.
  c.send({ type: 'user.input.submit', text: 'still here?' });
  await c.waitType('chat.run_complete');
  expect(c.closeCode).toBeNull();
  expect(c.timeline().every((e) => e.type !== 'chat.error')).toBe(true); // protocol errors are not timeline events
  await c.close();
});

test('mode and workflow control messages', async () => {
  const { tok, chat } = await startChat('frank');
  const c = await TestClient.connect(wsUrl(rt.wsUrl, 'assistant', 'app1', chat.chat_id, 'frank', tok));
  await c.waitType('chat_meta');
  c.send({ type: 'chat.enter_general_mode' });
  expect((await c.waitType('chat.mode_changed')).data).toEqual({ mode: 'general', workflow_name: null });
  c.send({ type: 'chat.start_workflow', workflow_name: 'handoff' });
  const started = await c.waitType('chat.workflow_started');
  expect(started.data).toMatchObject({ workflow_name: 'handoff', batch: false });
  const other = await rt.s.chats.get(started.data.chat_id);
  expect(other).toMatchObject({ userId: 'frank', appId: 'app1', workflowName: 'handoff' });
  const from = c.messages.length;
  c.send({ type: 'chat.start_workflow_batch', workflows: ['assistant', 'ask_user'] });
  await c.waitFor((m) => m.type === 'chat.workflow_started' && m.data.workflow_name === 'ask_user', 5000, from);
  expect(c.messages.slice(from).filter((m) => m.type === 'chat.workflow_started' && m.data.batch)).toHaveLength(2);
  c.send({ type: 'chat.switch_workflow', workflow_name: 'handoff' });
  expect((await c.waitFor((m) => m.type === 'chat.mode_changed' && m.data.mode === 'workflow')).data.workflow_name).toBe('handoff');
  await c.close();
});

async function waitUntil(cond: () => Promise<boolean>, timeoutMs = 10_000) {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    if (await cond()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('condition not met in time');
}

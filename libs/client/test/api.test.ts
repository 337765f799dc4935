/** The HTTP routes of document 003 §3 through TesseraApi, against the real runtime. */
import { TesseraApi, TesseraHttpError, type FetchLike } from '../src';
import { hostFor, memoryStorage, replayAll, token } from './helpers';
import { runtimeForThisFile, type RuntimeProcess } from './runtime-process';

jest.setTimeout(60_000);
let rt: RuntimeProcess;
runtimeForThisFile((started) => (rt = started));

const FAST = { backoff: { initialMs: 5, maxMs: 20 } };

test('a start whose reply is lost is retried with the same client_request_id: one chat', async () => {
  const seen: string[] = [];
  let lose = 2;
  // The runtime handles each request, then the "network" loses the first two replies.
  const flaky: FetchLike = async (url, init) => {
    const res = await fetch(url, init as RequestInit);
    if (typeof init.body === 'string') seen.push(JSON.parse(init.body).client_request_id);
    if (lose-- > 0) throw new TypeError('network connection lost');
    return res;
  };
  const storage = memoryStorage();
  const api = new TesseraApi({ ...hostFor(rt, 'idem-user', storage), fetch: flaky }, FAST);
  const chat = await api.startChat({ appId: 'app1', userId: 'idem-user', workflowName: 'assistant' });
  expect(seen).toHaveLength(3);
  expect(new Set(seen).size).toBe(1); // one id across the retries
  expect(chat.reused).toBe(true); // the third attempt found the chat the first made
  expect(chat.websocket_url).toBe(`/ws/assistant/app1/${chat.chat_id}/idem-user`);
  expect(await api.sessions('app1', 'idem-user')).toEqual([expect.objectContaining({ chat_id: chat.chat_id, status: 'created' })]);
  expect(storage.map.size).toBe(0); // the id is forgotten once the start succeeded

  // The next start is a new intent: a new chat.
  const next = await api.startChat({ appId: 'app1', userId: 'idem-user', workflowName: 'assistant', forceNew: true });
  expect(next.chat_id).not.toBe(chat.chat_id);
});

test('workflows, transport, meta, HTTP input fallback and the tool-call response, typed', async () => {
  const api = new TesseraApi(hostFor(rt, 'http-user', memoryStorage()), FAST);
  const wfs = await api.workflows();
  expect(Object.values(wfs).find((w) => w.entry_point)?.name).toBe('assistant');
  expect((await api.transport('assistant')).websocket_path).toBe('/ws/assistant/{app_id}/{chat_id}/{user_id}');

  const chat = await api.startChat({ appId: 'app1', userId: 'http-user', workflowName: 'assistant' });
  const ids = { appId: 'app1', chatId: chat.chat_id, userId: 'http-user', workflowName: 'assistant' };
  const a = await api.sendInput(ids, 'over HTTP', 'cm-1');
  const again = await api.sendInput(ids, 'over HTTP', 'cm-1'); // a retried input is the same input
  expect(again.input_id).toBe(a.input_id);
  const meta = await api.chatMeta('app1', 'assistant', chat.chat_id);
  expect(meta).toMatchObject({ chat_id: chat.chat_id, cache_seed: chat.cache_seed, pending_tool_calls: [] });
  expect(await api.recentSession('app1', 'http-user')).toEqual({ found: true, chat_id: chat.chat_id, workflow_name: 'assistant' });

  // A refusal is an error with the runtime's status and code, never a retry storm.
  const err = await api.respondToolCall('no-such-event', { answer: 'x' }).catch((e) => e);
  expect(err).toBeInstanceOf(TesseraHttpError);
  expect(err.status).toBe(404);
  expect(err.code).toBe('TOOL_CALL_NOT_FOUND');
  // Another user's chat is not readable.
  const other = new TesseraApi({ ...hostFor(rt, 'mallory', memoryStorage()), getAccessToken: () => token('mallory') }, FAST);
  const denied = await other.chatMeta('app1', 'assistant', chat.chat_id).catch((e) => e);
  expect(denied).toBeInstanceOf(TesseraHttpError);
  expect([403, 404]).toContain(denied.status);
});

test('upload: a file reaches the chat (multipart, non-ASCII name kept) and is announced on its timeline; stop', async () => {
  const api = new TesseraApi(hostFor(rt, 'upload-user', memoryStorage()), FAST);
  const chat = await api.startChat({ appId: 'app1', userId: 'upload-user', workflowName: 'assistant', forceNew: true });
  const ids = { appId: 'app1', chatId: chat.chat_id, userId: 'upload-user', workflowName: 'assistant' };
  const bytes = 'line one\nline two\n';
  const up = await api.upload({ ...ids, file: new Blob([bytes], { type: 'text/plain' }), filename: 'notes é.txt', intent: 'context', bundlePath: 'docs/notes.txt' });
  expect(up).toEqual({
    attachment_id: expect.any(String),
    chat_id: chat.chat_id,
    filename: 'notes é.txt',
    size: bytes.length,
    content_type: 'text/plain',
    intent: 'context',
    bundle_path: 'docs/notes.txt',
  });
  const announced = (await replayAll(rt, ids)).find((e) => e.type === 'chat.attachment_uploaded');
  expect(announced?.data).toMatchObject({ attachment_id: up.attachment_id, filename: 'notes é.txt', uploaded_by: 'upload-user' });

  // Someone else's chat: refused with the runtime's status, nothing stored.
  const other = new TesseraApi(hostFor(rt, 'mallory', memoryStorage()), FAST);
  const denied = await other.upload({ ...ids, userId: 'mallory', file: new Blob(['x']) }).catch((e) => e);
  expect(denied).toBeInstanceOf(TesseraHttpError);
  expect([403, 404]).toContain(denied.status);
  expect((await replayAll(rt, ids)).filter((e) => e.type === 'chat.attachment_uploaded')).toHaveLength(1);

  // Stop: accepted, and the chat says so on its timeline.
  expect(await api.stopChat('app1', chat.chat_id)).toEqual({ accepted: true, chat_id: chat.chat_id });
  let stopped = false;
  for (let i = 0; i < 100 && !stopped; i++) {
    stopped = (await replayAll(rt, ids)).some((e) => e.type === 'chat.run_complete' && e.data.status === 'stopped');
    if (!stopped) await new Promise((r) => setTimeout(r, 100));
  }
  expect(stopped).toBe(true);
});

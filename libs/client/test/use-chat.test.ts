/**
 * @jest-environment jsdom
 * @jest-environment-options {"customExportConditions": ["node", "node-addons"]}
 *
 * `useChat` (@tessera/client/react) rendered by React in jsdom, against the real runtime (child
 * process, real Redis and PostgreSQL) through `ws` and node:http: streaming, a UI tool answered,
 * a stop, drops in the middle of a stream, no message twice.
 */
import './jsdom-node-globals';
import { renderHook, waitFor } from '@testing-library/react';
import { useChat, type UseChat, type UseChatOptions } from '../src/react';
import { mapStorage, nodeHost } from './node-host';
import { startRuntimeProcess, type RuntimeProcess } from './runtime-process';

jest.setTimeout(120_000);
let rt: RuntimeProcess;
beforeAll(async () => {
  // Updates arrive from sockets, outside act(): React is told not to expect act (testing-library's
  // own beforeAll turned it on).
  (globalThis as { IS_REACT_ACT_ENVIRONMENT?: boolean }).IS_REACT_ACT_ENVIRONMENT = false;
  rt = await startRuntimeProcess();
});
afterAll(async () => {
  await rt?.stop();
});

const WAIT = { timeout: 30_000, interval: 20 };
const GREETING = 'Hello and welcome! I am the Tessera greeter. Tell me what you are working on and I will point you the right way.';
const FAST = { backoff: { initialMs: 20, maxMs: 200 } };

/** Renders the hook and keeps every value it returned, to see what the user saw along the way. */
function renderChat(opts: Omit<UseChatOptions, 'host'> & { user: string }) {
  const host = nodeHost(rt, opts.user, mapStorage());
  const seen: UseChat[] = [];
  const r = renderHook(() => {
    const chat = useChat({ ...opts, host, connection: FAST });
    seen.push(chat);
    return chat;
  });
  return { ...r, seen, chat: () => r.result.current };
}

function expectUniqueIds(c: UseChat) {
  expect(new Set(c.messages.map((m) => m.id)).size).toBe(c.messages.length);
}

test('streams an agent-first greeting; a drop mid-stream resumes with the message whole and once', async () => {
  const h = renderChat({ appId: 'app1', userId: 'react-greet', workflowName: 'greeter', user: 'react-greet' });
  await waitFor(() => expect(h.chat().chatId).not.toBeNull(), WAIT);

  // The greeter streams a word every 30 ms: drop the socket once some of it has arrived.
  await waitFor(() => expect(h.chat().streamingText.length).toBeGreaterThan(0), WAIT);
  const partial = h.chat().streamingText;
  expect(GREETING.startsWith(partial)).toBe(true);
  // Seen in every value the hook returned: with a 20 ms backoff the socket may be back before a poll.
  const after = h.seen.length;
  h.chat().drop();
  await waitFor(() => expect(h.seen.slice(after).some((s) => s.status !== 'live')).toBe(true), WAIT);
  await waitFor(() => expect(h.chat().messages.some((m) => m.role === 'assistant')).toBe(true), WAIT);
  await waitFor(() => expect(h.chat().processing).toBe(false), WAIT);

  const c = h.chat();
  expect(c.messages.map((m) => [m.role, m.agent, m.text])).toEqual([['assistant', 'host', GREETING]]);
  expect(c.streamingText).toBe('');
  expect(c.status).toBe('live');
  // The scripted provider counts as a model server would: about 4 characters a token.
  expect(c.usage).toEqual({ inputTokens: expect.any(Number), outputTokens: Math.ceil(GREETING.length / 4) });
  // What the user saw streaming: growing prefixes of the greeting, never a repeated piece.
  const streamed = h.seen.map((s) => s.streamingText).filter((t) => t !== '');
  expect(streamed.length).toBeGreaterThan(1);
  for (const t of streamed) expect(GREETING.startsWith(t)).toBe(true);
  h.unmount();
});

test('a message, a composer UI tool answered, a stop that dismisses the next question, then drop and resume: no message twice', async () => {
  const h = renderChat({ appId: 'app1', userId: 'react-tool', workflowName: 'ask_user', user: 'react-tool' });
  // Sent before the chat exists: held, then queued once the chat id is known.
  h.chat().send('I need help');
  await waitFor(() => expect(h.chat().chatId).not.toBeNull(), WAIT);
  expect(h.seen.some((s) => s.messages.some((m) => m.text === 'I need help' && m.pending && m.index === null))).toBe(true);

  await waitFor(() => expect(h.chat().toolCalls).toHaveLength(1), WAIT);
  await waitFor(() => expect(h.chat().processing).toBe(false), WAIT);
  const call = h.chat().toolCalls[0];
  expect(call).toMatchObject({ toolName: 'ask_user', component: 'UserInputRequest', display: 'composer', payload: { question: 'What name should I call you?' } });

  h.chat().answer(call.eventId, { answer: 'Ada' });
  await waitFor(() => expect(h.chat().messages.at(-1)?.text).toMatch(/^Nice to meet you, Ada!/), WAIT);
  await waitFor(() => expect(h.chat().processing).toBe(false), WAIT);
  expect(h.chat().toolCalls).toEqual([]);

  // A second message asks again; stopping the chat dismisses the question.
  h.chat().send('one more thing');
  await waitFor(() => expect(h.chat().toolCalls).toHaveLength(1), WAIT);
  await h.chat().stop();
  await waitFor(() => expect(h.chat().toolCalls).toEqual([]), WAIT);
  await waitFor(() => expect(h.chat().processing).toBe(false), WAIT);
  expect(h.chat().error).toBeNull();

  const before = h.chat().messages;
  expect(before.map((m) => [m.role, m.text.split(/[.!]/)[0]])).toEqual([
    ['user', 'I need help'],
    ['assistant', 'Happy to help with that'],
    ['assistant', 'Nice to meet you, Ada'],
    ['user', 'one more thing'],
    ['assistant', 'Happy to help with that'],
  ]);
  expect(before.every((m) => !m.pending && m.index !== null)).toBe(true);
  expectUniqueIds(h.chat());

  // Drop, reconnect at once (resume), and again: the same messages, each once.
  const sockets = h.seen.filter((s, i) => i > 0 && s.status === 'live' && h.seen[i - 1].status !== 'live').length;
  h.chat().drop();
  h.chat().resume();
  await waitFor(() => expect(h.seen.filter((s, i) => i > 0 && s.status === 'live' && h.seen[i - 1].status !== 'live').length).toBe(sockets + 1), WAIT);
  h.chat().drop();
  await waitFor(() => expect(h.seen.filter((s, i) => i > 0 && s.status === 'live' && h.seen[i - 1].status !== 'live').length).toBe(sockets + 2), WAIT);
  expect(h.chat().messages).toEqual(before);
  expect(h.chat().usage?.outputTokens).toBeGreaterThan(0);
  h.unmount();
});

test('a message sent with rollback while the reply streams: the cut-off turn leaves the view, the new one is answered', async () => {
  const h = renderChat({ appId: 'app1', userId: 'react-rollback', workflowName: 'storyteller', user: 'react-rollback' });
  h.chat().send('first');
  await waitFor(() => expect(h.chat().streamingText.length).toBeGreaterThan(0), WAIT);
  h.chat().send('instead', undefined, { multitaskStrategy: 'rollback' });
  await waitFor(() => expect(h.chat().messages.at(-1)?.text).toMatch(/^You wrote "instead"/), WAIT);
  await waitFor(() => expect(h.chat().processing).toBe(false), WAIT);
  // The user saw the first message and the start of its reply, then both went away.
  expect(h.seen.some((c) => c.messages.some((m) => m.role === 'user' && m.text === 'first' && m.index !== null))).toBe(true);
  expect(h.chat().messages.map((m) => [m.role, m.text.split(',')[0]])).toEqual([
    ['user', 'instead'],
    ['assistant', 'You wrote "instead"'],
  ]);
  expect(h.chat().error).toBeNull();
  expectUniqueIds(h.chat());
  h.unmount();
});

test('a chat id that is not the user\'s: the errors are in words, the message stays queued', async () => {
  const h = renderChat({ appId: 'app1', userId: 'react-lost', workflowName: 'assistant', chatId: 'no-such-chat', user: 'react-lost' });
  h.chat().send('hello?');
  await waitFor(() => expect(h.chat().error).toBe('the runtime refused the connection: not your chat'), WAIT);
  expect(h.chat().messages).toEqual([expect.objectContaining({ text: 'hello?', pending: true })]);
  await h.chat().stop();
  expect(h.chat().error).toMatch(/^the chat could not be stopped: .*\(404 /);
  h.unmount();
});

/**
 * The timeline's write path as the worker uses it: indexes allocated from the chat's own events
 * (no chat row update per append) stay unique and gap-free when processes race on one chat, and
 * the EventWriter coalesces a fast model's text deltas while a slow model's tokens still leave
 * one by one.
 */
import { createLogger } from '@tessera/kit';
import { createRuntimeServices, type RuntimeServices } from '../src/services';
import { EventWriter } from '../src/turns/event-writer';
import type { StoredEvent } from '../src/store/timeline';
import { configFor, testEnv, type Env } from './harness';

let env: Env;
let a: RuntimeServices;
let b: RuntimeServices;
const logger = createLogger('timeline-test', 'silent');

beforeAll(async () => {
  env = await testEnv('timeline');
  // Two processes' worth of services (own pools, own Redis connections) on one database.
  a = createRuntimeServices(configFor(env), logger, 'api');
  b = createRuntimeServices(configFor(env), logger, 'api');
});
afterAll(async () => {
  await Promise.all([a?.close(), b?.close()]);
  await env?.dropSchema();
});

let n = 0;
async function newChat() {
  const { chat } = await a.starter.start({ appId: 'app1', userId: `u${++n}`, workflowName: 'assistant', backendContext: null, uiContext: null });
  return chat;
}

test('two processes appending to one chat at once: indexes 1..N, each once, each writer in its own order', async () => {
  const chat = await newChat();
  const other = await newChat();
  const writes = (s: RuntimeServices, who: string) =>
    Promise.all(
      Array.from({ length: 60 }, async (_, i) => {
        // Some appends also carry another chat's events through the same group commit.
        const mine = s.timeline.append(chat.id, [0, 1].map((j) => ({ key: `${who}:${i}:${j}`, type: 'chat.print', data: { agent: who, content: `${i}.${j}` } })));
        if (i % 3 === 0) await s.timeline.append(other.id, [{ key: `${who}:o${i}`, type: 'chat.print', data: { agent: who, content: `o${i}` } }]);
        return mine;
      }),
    );
  await Promise.all([writes(a, 'a'), writes(b, 'b')]);

  const all = await a.timeline.after(chat.id, 0, 10_000);
  expect(all.map((e) => e.index)).toEqual(Array.from({ length: 240 }, (_, i) => i + 1));
  for (const who of ['a', 'b']) {
    const mine = all.filter((e) => (e.data as { agent: string }).agent === who).map((e) => (e.data as { content: string }).content);
    expect(mine).toHaveLength(120);
    // Each append's two events are adjacent and in order.
    for (let i = 0; i < mine.length; i += 2) expect([mine[i], mine[i + 1]]).toEqual([mine[i].replace(/\.\d$/, '.0'), mine[i].replace(/\.\d$/, '.1')]);
  }
  expect((await a.timeline.after(other.id, 0, 1000)).map((e) => e.index)).toEqual(Array.from({ length: 40 }, (_, i) => i + 1));
  expect((await b.chats.get(chat.id))!.lastIndex).toBe(240);
  expect(await b.timeline.lastIndex(other.id)).toBe(40);
  // A key appended again (a re-run) is skipped, not given a new index.
  expect(await b.timeline.append(chat.id, [{ key: 'a:0:0', type: 'chat.print', data: { agent: 'a', content: 'again' } }])).toEqual([]);
  expect(await a.timeline.lastIndex(chat.id)).toBe(240);
});

type TextData = { message_id: string; delta: string; done: boolean; content?: string };

async function writeReply(tokens: string[], gapMs: number) {
  const chat = await newChat();
  const stored: StoredEvent[] = [];
  const writer = new EventWriter(chat.id, `turn-${chat.id}`, a.timeline, a.feed, (s) => stored.push(...s));
  for (const t of tokens) {
    await writer.emit('chat.text', { message_id: 'm1', agent: 'assistant', role: 'assistant', delta: t, done: false });
    if (gapMs) await new Promise((r) => setTimeout(r, gapMs));
  }
  await writer.emit('chat.text', { message_id: 'm1', agent: 'assistant', role: 'assistant', delta: '', done: true, content: tokens.join('') });
  await writer.emit('chat.run_complete', { turn_id: 't', status: 'completed' });
  await writer.drain();
  const log = await a.timeline.after(chat.id, 0, 1000);
  // What was published is what is stored (resume replays what live clients saw).
  expect(stored.map((e) => e.wire)).toEqual(log.map((e) => e.wire));
  const texts = log.filter((e) => e.type === 'chat.text').map((e) => e.data as TextData);
  expect(texts.map((t) => t.delta).join('')).toBe(tokens.join(''));
  expect(texts.at(-1)).toMatchObject({ done: true, content: tokens.join('') });
  expect(texts.slice(0, -1).every((t) => !t.done)).toBe(true);
  expect(log.at(-1)!.type).toBe('chat.run_complete');
  return texts;
}

test('a fast reply is coalesced: its 20 tokens become one event that also closes the message', async () => {
  const tokens = Array.from({ length: 20 }, (_, i) => `w${i} `);
  const texts = await writeReply(tokens, 0);
  expect(texts).toHaveLength(1);
});

test('a slow reply still streams: each token leaves as its own event', async () => {
  const tokens = Array.from({ length: 8 }, (_, i) => `w${i} `);
  const texts = await writeReply(tokens, 40);
  expect(texts.length).toBeGreaterThanOrEqual(8);
  expect(texts[0].delta).toBe('w0 ');
});

test('keyed events and other messages are never merged into a text event', async () => {
  const chat = await newChat();
  const writer = new EventWriter(chat.id, `turn-${chat.id}`, a.timeline, a.feed);
  await writer.emit('chat.text', { message_id: 'u', agent: 'user', role: 'user', delta: 'hi', done: true, content: 'hi' }, 'input:user');
  await writer.emit('chat.text', { message_id: 'm1', agent: 'a1', role: 'assistant', delta: 'one ', done: false });
  await writer.emit('chat.text', { message_id: 'm1', agent: 'a1', role: 'assistant', delta: 'two', done: false });
  await writer.emit('chat.text', { message_id: 'm2', agent: 'a2', role: 'assistant', delta: 'three', done: false });
  await writer.emit('chat.text', { message_id: 'm2', agent: 'a2', role: 'assistant', delta: '', done: true, content: 'three' });
  await writer.drain();
  const texts = (await a.timeline.after(chat.id, 0, 100)).map((e) => e.data as TextData);
  expect(texts.map((t) => [t.message_id, t.delta, t.done])).toEqual([
    ['u', 'hi', true],
    ['m1', 'one two', false],
    ['m2', 'three', true],
  ]);
});

describe('the end of a turn, in one statement', () => {
  const closing = (turn: string) => [
    { key: `${turn}:usage_summary`, type: 'chat.usage_summary', data: { prompt_tokens: 1, completion_tokens: 2, total_tokens: 3, turns: 1 } },
    { key: `${turn}:complete_run`, type: 'chat.run_complete', data: { turn_id: turn, status: 'completed' } },
  ];
  const outcome = { state: { current_agent: 'a', messages: [], turns: 1, usage: {} }, usage: { total_tokens: 3 }, status: 'in_progress' as const };

  test('saves the state, stores the closing events after the turn’s own and marks the input done', async () => {
    const chat = await newChat();
    const { input } = await a.chatInputs.submitMessage(chat, 'hi');
    const taken = (await a.inputs.take(chat.id))!.input;
    expect(taken.id).toBe(input.id);
    await a.timeline.append(chat.id, [{ key: `${input.id}:user`, type: 'chat.print', data: { agent: 'user', content: 'hi' } }]);
    const ended = await b.turnEnd.finish(chat.id, taken, outcome, closing(input.id), b.feed);
    expect(ended.status).toBe('in_progress');
    expect(ended.morePending).toBe(false);
    expect(ended.stored!.map((e) => [e.index, e.type])).toEqual([
      [2, 'chat.usage_summary'],
      [3, 'chat.run_complete'],
    ]);
    expect((await a.timeline.after(chat.id, 0, 100)).map((e) => e.wire)).toEqual([(await a.timeline.after(chat.id, 0, 1))[0].wire, ...ended.stored!.map((e) => e.wire)]);
    expect((await a.inputs.get(input.id))!.status).toBe('done');
    expect((await a.chats.get(chat.id))!.state).toMatchObject({ turns: 1 });
    // The same end again (a re-run's) stores nothing twice; it says that a message came meanwhile.
    await a.chatInputs.submitMessage(chat, 'and then');
    expect(await b.turnEnd.finish(chat.id, taken, outcome, closing(input.id), b.feed)).toMatchObject({ stored: [], morePending: true });
    expect(await a.timeline.lastIndex(chat.id)).toBe(3);
  });

  test('a stop requested meanwhile wins: the chat is stopped, no event is stored, the input is left to the stop', async () => {
    const chat = await newChat();
    const { input } = await a.chatInputs.submitMessage(chat, 'hi');
    const taken = (await a.inputs.take(chat.id))!.input;
    expect(await a.chats.requestStop(chat.id, 'operator stop')).toBe(true);
    const ended = await a.turnEnd.finish(chat.id, taken, outcome, closing(input.id), a.feed);
    expect(ended).toEqual({ status: 'stopped', stopReason: 'operator stop', stored: null, morePending: false });
    expect(await a.timeline.lastIndex(chat.id)).toBe(0);
    expect((await a.chats.get(chat.id))!.status).toBe('stopped');
    expect((await a.inputs.get(input.id))!.status).toBe('cancelled');
  });

  test('an attempt whose input was taken again since (its lease lost, the input run elsewhere) writes nothing: the attempt that holds it ends the turn', async () => {
    const chat = await newChat();
    await a.chatInputs.submitMessage(chat, 'hi');
    const first = (await a.inputs.take(chat.id))!.input;
    const second = (await b.inputs.take(chat.id))!.input;
    expect([first.attempt, second.attempt]).toEqual([1, 2]);
    const stale = await a.turnEnd.finish(chat.id, first, { ...outcome, state: { ...outcome.state, turns: 7 } }, closing(first.id), a.feed);
    expect(stale).toMatchObject({ stored: null, superseded: true });
    expect(await a.timeline.lastIndex(chat.id)).toBe(0);
    expect((await a.inputs.get(first.id))!.status).toBe('processing');
    expect((await a.chats.get(chat.id))!.state).not.toMatchObject({ turns: 7 });
    const ended = await b.turnEnd.finish(chat.id, second, outcome, closing(`${second.id}:a2`), b.feed);
    expect(ended.superseded).toBeUndefined();
    expect(ended.stored!.map((e) => e.type)).toEqual(['chat.usage_summary', 'chat.run_complete']);
    expect((await a.inputs.get(first.id))!.status).toBe('done');
  });
});

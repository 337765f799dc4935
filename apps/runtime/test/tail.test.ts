/**
 * The timeline's tail in Redis (EVENT_TAIL=on), on real Redis and PostgreSQL: indexes and keys
 * as the PostgreSQL-first timeline gives them, the flusher's writes (same index, type, data and
 * timestamp; repeatable), trimming to what resumes need, reads across the trimmed boundary, a
 * chat whose tail is gone starting again from PostgreSQL, appends refused while PostgreSQL
 * is too far behind, and the sweeper writing what a dead writer left in a tail.
 */
import { createLogger, pgPool } from '@tessera/kit';
import { tcpRelay, until } from '@tessera/kit/testing';
import { createRuntimeServices, type RuntimeServices } from '../src/services';
import { EventTail, TailFull } from '../src/store/tail';
import { TailFlusher } from '../src/store/tail-flusher';
import { configFor, testEnv, type Env } from './harness';

let env: Env;
let s: RuntimeServices;
const logger = createLogger('tail-test', 'silent');

beforeAll(async () => {
  env = await testEnv('tail');
  s = createRuntimeServices(configFor(env, { EVENT_TAIL: 'on', EVENT_TAIL_KEEP: '5', EVENT_TAIL_MAX_UNFLUSHED: '50' }), logger, 'api');
});
afterAll(async () => {
  await s?.close();
  await env?.dropSchema();
});

let n = 0;
async function newChat() {
  const { chat } = await s.starter.start({ appId: 'app1', userId: `u${++n}`, workflowName: 'assistant', backendContext: null, uiContext: null });
  return chat;
}
const events = (prefix: string, count: number) => Array.from({ length: count }, (_, i) => ({ key: `${prefix}:${i}`, type: 'chat.print', data: { agent: 'a', content: `${prefix}${i}` } }));
const tail = () => s.timeline.tail!;
const stored = async (chatId: string) =>
  (await s.db.pool.query<{ idx: number; key: string; data: { content: string }; ts: string }>(`SELECT idx, key, data, to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS ts FROM chat_events WHERE chat_id = $1 ORDER BY idx`, [chatId])).rows;

/** Another process's tail, reaching PostgreSQL through a relay the test can take down; `close` ends the writer's pool and relay. */
async function relayedWriter(o: EventTail['o']) {
  const relay = await tcpRelay(new URL(env.DATABASE_URL));
  const pool = pgPool(relay.url, 2);
  return {
    relay,
    writer: new EventTail(s.redis, pool, o, logger),
    close: async () => {
      await relay.down().catch(() => undefined);
      await pool.end().catch(() => undefined);
    },
  };
}

test('appends are indexed 1..N in order, and a key appended again is skipped', async () => {
  const chat = await newChat();
  const first = await s.timeline.append(chat.id, events('x', 3));
  expect(first.map((e) => e.index)).toEqual([1, 2, 3]);
  expect(JSON.parse(first[2].wire)).toMatchObject({ type: 'chat.print', index: 3, data: { content: 'x2' } });
  const again = await s.timeline.append(chat.id, [...events('x', 3), ...events('y', 2)]);
  expect(again.map((e) => [e.index, (e.data as { content: string }).content])).toEqual([
    [4, 'y0'],
    [5, 'y1'],
  ]);
  expect(await s.timeline.lastIndex(chat.id)).toBe(5);
  expect((await s.chats.get(chat.id))!.lastIndex).toBe(5);
  expect((await s.timeline.after(chat.id, 2, 100)).map((e) => e.index)).toEqual([3, 4, 5]);
});

test('a flush stores every event with its index, data and timestamp; repeating it changes nothing; the stream keeps the newest `keep`', async () => {
  const chat = await newChat();
  const sent = await s.timeline.append(chat.id, events('z', 12));
  await tail().flushChat(chat.id);
  const rows = await stored(chat.id);
  expect(rows.map((r) => [r.idx, r.key, r.data.content, r.ts])).toEqual(sent.map((e, i) => [e.index, `z:${i}`, `z${i}`, e.timestamp]));
  // Flushed again from the start (a flusher that died before it recorded its progress).
  await s.redis.del(tail().keysOf(chat.id)[2]);
  await tail().flushChat(chat.id);
  expect(await stored(chat.id)).toEqual(rows);
  // Trimmed to the newest 5 (EVENT_TAIL_KEEP); reads before them come from PostgreSQL, whole (the
  // same envelopes; PostgreSQL's jsonb spaces and orders an event's data its own way).
  expect((await tail().range(chat.id, 0, 100)).first).toBe(8);
  expect((await s.timeline.after(chat.id, 0, 100)).map((e) => JSON.parse(e.wire))).toEqual(sent.map((e) => JSON.parse(e.wire)));
  expect((await s.timeline.after(chat.id, 3, 4)).map((e) => e.index)).toEqual([4, 5, 6, 7]);
  expect((await s.timeline.after(chat.id, 6, 3)).map((e) => e.index)).toEqual([7, 8, 9]);
  expect((await s.timeline.after(chat.id, 2, 100, 9)).map((e) => e.index)).toEqual([3, 4, 5, 6, 7, 8, 9]);
  // A key of a trimmed event, appended again, is still skipped only while the tail remembers it;
  // one it forgot is stored (delivered once) under its key with its index added, never lost.
  const late = await s.timeline.append(chat.id, events('z', 1));
  expect(late.map((e) => e.index)).toEqual([13]);
  await tail().flushChat(chat.id);
  expect((await stored(chat.id)).slice(-1).map((r) => [r.idx, r.key])).toEqual([[13, 'z:0#13']]);
});

test('what a process appends reaches PostgreSQL behind it, and the chat leaves the flusher’s marks once all of it is there', async () => {
  const chat = await newChat();
  await s.timeline.append(chat.id, events('b', 3));
  expect((await tail().dirty(10_000)).some((d) => d.chatId === chat.id)).toBe(true);
  await until(async () => (await stored(chat.id)).length === 3 && !(await tail().dirty(10_000)).some((d) => d.chatId === chat.id), 5_000, 'the write-behind');
  expect((await stored(chat.id)).map((r) => r.data.content)).toEqual(['b0', 'b1', 'b2']);
});

test('the sweeper’s marks: a chat appended to after its mark was read stays marked', async () => {
  const chat = await newChat();
  await s.redis.zincrby(`${tail().o.prefix}:tail:dirty`, 1, chat.id);
  await s.timeline.append(chat.id, events('m', 2));
  const mark = (await tail().dirty(10_000)).find((d) => d.chatId === chat.id)!;
  await s.timeline.append(chat.id, events('n', 1));
  await tail().flush([chat.id], 100);
  expect(await tail().unmark(chat.id, mark.mark)).toBe(0);
  expect((await stored(chat.id)).map((r) => r.idx)).toEqual([1, 2, 3]);
});

test('a chat whose tail is gone starts again after PostgreSQL’s highest index, skipping keys PostgreSQL holds', async () => {
  const chat = await newChat();
  await s.timeline.append(chat.id, events('p', 4));
  await tail().flushChat(chat.id);
  await s.redis.del(...tail().keysOf(chat.id));
  const next = await s.timeline.append(chat.id, [...events('p', 4), ...events('q', 2)]);
  expect(next.map((e) => e.index)).toEqual([5, 6]);
  expect((await s.timeline.after(chat.id, 0, 100)).map((e) => (e.data as { content: string }).content)).toEqual(['p0', 'p1', 'p2', 'p3', 'q0', 'q1']);
});

test('past EVENT_TAIL_MAX_UNFLUSHED events waiting for PostgreSQL, appends are refused as storage out of reach; a flush lets them in again', async () => {
  const chat = await newChat();
  await s.timeline.append(chat.id, events('w', 1));
  await tail().flushChat(chat.id);
  await s.timeline.append(chat.id, events('f', 50));
  await expect(s.timeline.append(chat.id, events('g', 1))).rejects.toBeInstanceOf(TailFull);
  await tail().flushChat(chat.id);
  expect((await s.timeline.append(chat.id, events('g', 1))).map((e) => e.index)).toEqual([52]);
});

test('past EVENT_TAIL_MAX_BEHIND events a process could not write, over all its chats, its appends are refused as storage out of reach; once PostgreSQL is back they are let in', async () => {
  const [a, b, c] = [await newChat(), await newChat(), await newChat()];
  // A process that reaches PostgreSQL through a relay, allowed 120 events unwritten in all.
  const { relay, writer, close } = await relayedWriter({ ...tail().o, maxUnflushed: 10_000, maxBehind: 120 });
  try {
    for (const chat of [a, b, c]) await writer.append(chat.id, events('first', 1));
    await until(async () => (await Promise.all([a, b, c].map(async (chat) => (await stored(chat.id)).length))).every((n) => n === 1), 5_000, 'the first events written behind');
    await relay.down();
    for (let i = 0; i < 4; i++) await writer.append(a.id, events(`a${i}`, 25));
    await writer.append(b.id, events('b', 20));
    // Each chat is far from its own limit; the process is at its own.
    const refused = writer.append(b.id, events('c', 1));
    await expect(refused).rejects.toBeInstanceOf(TailFull);
    await expect(refused).rejects.toMatchObject({ storageUnreachable: true, message: expect.stringContaining('this process holds') });
    await expect(writer.append(c.id, events('d', 1))).rejects.toBeInstanceOf(TailFull);
    expect(await stored(a.id)).toHaveLength(1);

    await relay.up();
    await until(async () => (await stored(a.id)).length === 101 && (await stored(b.id)).length === 21, 10_000, 'the write-behind to catch up');
    expect((await writer.append(b.id, events('c', 1))).map((e) => e.index)).toEqual([22]);
  } finally {
    await writer.close();
    await close();
  }
}, 30_000);

test('what an append stores it publishes on the chat’s channel in the same script, as the bus’s schema has it', async () => {
  const chat = await newChat();
  const heard: { index: number; type: string; wire: string }[] = [];
  const unsubscribe = await s.feed.subscribe(chat.id, { onEvents: (e) => heard.push(...e), onResync: () => undefined });
  try {
    const sent = [...(await s.timeline.record(chat.id, events('h', 2), s.feed)), ...(await s.timeline.record(chat.id, [...events('h', 2), { key: 'q', type: 'chat.print', data: { agent: 'a', content: 'quote " and / slash \u00e9' } }], s.feed))];
    await until(async () => heard.length >= 3, 5_000, 'the published events');
    expect(heard).toEqual(sent.map((e) => ({ index: e.index, type: e.type, wire: e.wire })));
    expect(JSON.parse(heard[2].wire).data.content).toBe('quote " and / slash \u00e9');
  } finally {
    await unsubscribe();
  }
});

test('closing events held by a process that died after saving its turn’s end are appended once when recovered; those of a turn whose end was not saved are dropped', async () => {
  const chat = await newChat();
  const closing = (inputId: string) => [{ key: `${inputId}:complete_run`, type: 'chat.run_complete', data: { turn_id: inputId, status: 'completed' } }];
  const added = async () => {
    const r = await s.inputs.add(chat.id, { kind: 'message', text: 'x' });
    if (!r.input) throw new Error('input refused');
    return r.input;
  };
  const saved = await added();
  await s.inputs.markDone(saved.id);
  await tail().holdClosing(chat.id, saved.id, closing(saved.id));
  await tail().recoverClosing(chat.id);
  await tail().recoverClosing(chat.id);
  // Its holder was only slow: its own append after the recovery stores nothing again.
  await s.timeline.append(chat.id, closing(saved.id));
  const ends = async () => (await s.timeline.after(chat.id, 0, 100)).filter((e) => e.type === 'chat.run_complete').map((e) => (e.data as { turn_id: string }).turn_id);
  expect(await ends()).toEqual([saved.id]);

  const running = await added();
  await tail().holdClosing(chat.id, running.id, closing(running.id));
  await tail().recoverClosing(chat.id);
  expect(await ends()).toEqual([saved.id]);
  expect(await s.redis.exists(tail().keyOf(chat.id, 'closing'))).toBe(0);
});

test('a writer that died with 1,400 events of a chat only in its tail: the sweeper writes them all to PostgreSQL, round after round without waiting, and unmarks the chat', async () => {
  const chat = await newChat();
  const o = { ...tail().o, maxUnflushed: 10_000 };
  // The writer reaches PostgreSQL through a relay: it stores the chat's first event, then loses
  // PostgreSQL and appends 1,400 more (its write-behind holds them in memory), then dies.
  const { relay, writer, close } = await relayedWriter(o);
  const sweeper = new TailFlusher(new EventTail(s.redis, s.db.pool, o, logger), s.redis, logger, `${o.prefix}:tail:flusher:${chat.id}`, { eventsPerChat: 100, roundMs: 1_000 });
  try {
    await writer.append(chat.id, events('first', 1));
    await until(async () => (await stored(chat.id)).length === 1, 5_000, 'the first event written behind');
    await relay.down();
    for (let i = 0; i < 14; i++) await writer.append(chat.id, events(`lost${i}`, 100));
    await writer.close();
    expect(await stored(chat.id)).toHaveLength(1);

    // 14 statements of 100 events: one round's wait for the mark to settle, then back to back
    // (waiting a round between them would take 14 s).
    sweeper.start();
    await until(async () => (await stored(chat.id)).length === 1_401, 8_000, 'the sweeper to write every event');
    const rows = await stored(chat.id);
    expect(rows.map((r) => r.idx)).toEqual(Array.from({ length: 1_401 }, (_, i) => i + 1));
    expect(rows[1_400].key).toBe('lost13:99');
    await until(async () => !(await tail().dirty(10_000)).some((d) => d.chatId === chat.id), 5_000, 'the chat to be unmarked');
  } finally {
    await sweeper.close();
    await close();
  }
}, 30_000);

test('an append sent twice (as ioredis sends a command again when the connection drops before its answer) stores and publishes once, and answers the same', async () => {
  const chat = await newChat();
  const redis = s.redis as unknown as { tailAppend: (...args: string[]) => Promise<number[][]> };
  const send = redis.tailAppend;
  const answers: number[][][] = [];
  const heard: number[] = [];
  const unsubscribe = await s.feed.subscribe(chat.id, { onEvents: (e) => heard.push(...e.map((x) => x.index)), onResync: () => undefined });
  // The first answer is lost on the way; the command runs again and its answer is the one heard.
  redis.tailAppend = async (...args) => {
    answers.push(await send.apply(s.redis, args));
    answers.push(await send.apply(s.redis, args));
    return answers[answers.length - 1];
  };
  try {
    await s.timeline.append(chat.id, events('base', 1));
    // A turn's own events: fresh keys, not looked up, so only the call's token stops a second store.
    const fresh = events('f', 3).map((e) => ({ ...e, fresh: true }));
    const stored = await s.timeline.append(chat.id, fresh);
    expect(stored.map((e) => e.index)).toEqual([2, 3, 4]);
    expect(answers[answers.length - 1]).toEqual(answers[answers.length - 2]);
  } finally {
    redis.tailAppend = send;
  }
  expect(await s.timeline.lastIndex(chat.id)).toBe(4);
  await until(async () => heard.length >= 4, 5_000, 'the published events');
  await new Promise((r) => setTimeout(r, 100));
  await unsubscribe();
  expect(heard).toEqual([1, 2, 3, 4]);
  await tail().flushChat(chat.id);
  expect((await stored(chat.id)).map((r) => r.key)).toEqual(['base:0', 'f:0', 'f:1', 'f:2']);
});

import fc from 'fast-check';
import { ZodError } from 'zod';
import { bridge, Channel, type ChannelKey, type ChannelMessage } from '@tessera/contracts';
import { BusPublisher, BusSubscriber, channelOf, createLogger, createRedis, type ChannelAddress , type RedisClient } from '../src';
import { TEST_REDIS_URL, testPrefix, until } from '../src/testing';
import { capturedLogger } from './support';

const silent = createLogger('bus-test', 'silent');
const prefix = testPrefix('kit-bus');

/** Messages received on one subscription, with a way to wait for the next ones. */
function inbox<K extends ChannelKey>() {
  const got: { message: ChannelMessage<K>; channel: string }[] = [];
  let resyncs = 0;
  return {
    got,
    resyncs: () => resyncs,
    subscription: { onMessage: (message: ChannelMessage<K>, channel: string) => void got.push({ message, channel }), onResync: () => void resyncs++ },
    /** Resolves with the messages once there are `n`. */
    count: (n: number) => until(() => got.length >= n && got, 5_000, `${n} messages`),
  };
}

/** A channel of the map under this file's own name, so that no other test's messages reach it. */
const privateChannel = <K extends ChannelKey>(key: K, name: string): ChannelAddress<K> => ({ key, name: `${prefix}:${name}` });

let pub: RedisClient;
let raw: RedisClient;
let publisher: BusPublisher;
beforeAll(() => {
  pub = createRedis(TEST_REDIS_URL, silent, 'bus-test-pub');
  raw = createRedis(TEST_REDIS_URL, silent, 'bus-test-raw');
  publisher = new BusPublisher(pub);
});
afterAll(async () => {
  await Promise.all([pub.quit(), raw.quit()]);
});

/** A subscriber connection of its own, closed after the test. */
const subscribers: RedisClient[] = [];
function subscriberConnection(name: string): RedisClient {
  const c = createRedis(TEST_REDIS_URL, silent, `${prefix}:${name}`, { maxRetriesPerRequest: null });
  subscribers.push(c);
  return c;
}
afterEach(async () => {
  await Promise.all(subscribers.splice(0).map((c) => c.quit().catch(() => undefined)));
});

const batch = (chatId: string, index: number): ChannelMessage<'chatEvents'> => ({ chat_id: chatId, events: [{ index, type: 'chat.text', wire: `{"index":${index}}` }] });

describe('a typed bus over the contracts’ channel map', () => {
  it('delivers a published message, typed and validated, to the channel’s subscribers only', async () => {
    const bus = new BusSubscriber(subscriberConnection('round-trip'), silent);
    const chat = `${prefix}-chat-1`;
    const mine = inbox<'chatEvents'>();
    const other = inbox<'chatEvents'>();
    await bus.subscribe(channelOf('chatEvents', chat), mine.subscription);
    await bus.subscribe(channelOf('chatEvents', `${prefix}-chat-2`), other.subscription);

    await publisher.publish(channelOf('chatEvents', chat), batch(chat, 1));
    await publisher.publish(channelOf('chatEvents', chat), batch(chat, 2));

    const got = await mine.count(2);
    expect(got.map((g) => g.message)).toEqual([batch(chat, 1), batch(chat, 2)]);
    expect(got[0].channel).toBe(Channel.chatEvents.name(chat));
    expect(other.got).toEqual([]);
  });

  it('a publish is on the connection before the caller goes on; with perTick, one tick\'s publishes go as one pipeline, in order', async () => {
    const bus = new BusSubscriber(subscriberConnection('order'), silent);
    const chat = `${prefix}-chat-order`;
    const heard = inbox<'chatEvents'>();
    await bus.subscribe(channelOf('chatEvents', chat), heard.subscription);
    // At once: on the connection before this PING, so answered first (RedisClient answers in order); what an HTTP answer after a publish relies on.
    const order: string[] = [];
    const published = publisher.publish(channelOf('chatEvents', chat), batch(chat, 1)).then(() => order.push('publish'));
    const pinged = pub.ping().then(() => order.push('ping'));
    await Promise.all([published, pinged]);
    expect(order).toEqual(['publish', 'ping']);
    // Per tick: three publishes of one tick, one pipeline after it.
    const perTick = new BusPublisher(pub, { perTick: true });
    await Promise.all([2, 3, 4].map((i) => perTick.publish(channelOf('chatEvents', chat), batch(chat, i))));
    expect((await heard.count(4)).map((g) => g.message.events[0].index)).toEqual([1, 2, 3, 4]);
  });

  it('refuses to publish a message its channel does not allow, and sends nothing', async () => {
    const bus = new BusSubscriber(subscriberConnection('refuse'), silent);
    const to = privateChannel('sessionControl', 'refuse');
    const heard = inbox<'sessionControl'>();
    await bus.subscribe(to, heard.subscription);

    const wrong = { action: 'stop', session_id: 's1' } as unknown as ChannelMessage<'sessionControl'>; // no app_id
    await expect(publisher.publish(to, wrong)).rejects.toBeInstanceOf(ZodError);
    await publisher.publish(to, { action: 'stop', session_id: 's1', app_id: 'app-a' });
    expect((await heard.count(1)).map((g) => g.message)).toEqual([{ action: 'stop', session_id: 's1', app_id: 'app-a' }]);
  });

  it('drops and counts an invalid message, logging where and why but not its content', async () => {
    const { logger, text } = capturedLogger('bus-test', 'warn');
    const bus = new BusSubscriber(subscriberConnection('invalid'), logger);
    const to = privateChannel('sessionControl', 'invalid');
    const heard = inbox<'sessionControl'>();
    await bus.subscribe(to, heard.subscription);

    await raw.spublish(to.name, JSON.stringify({ action: 'stop', session_id: 'sk-live-SECRET-in-content' }));
    await raw.spublish(to.name, '{not json SECRET-in-content');
    // Same channel, same order: once this one arrives, the two before it were handled.
    await publisher.publish(to, { action: 'stop', session_id: 's2', app_id: 'app-a' });

    expect((await heard.count(1)).map((g) => g.message.session_id)).toEqual(['s2']);
    expect(bus.dropped).toEqual({ sessionControl: 2 });
    expect(text()).toContain('bus message dropped');
    expect(text()).toContain('app_id');
    expect(text()).not.toContain('SECRET-in-content');
  });

  it('a subscriber that throws does not keep the message from the others', async () => {
    const bus = new BusSubscriber(subscriberConnection('throws'), silent);
    const to = privateChannel('agentChanges', 'throws');
    const heard = inbox<'agentChanges'>();
    await bus.subscribe(to, { onMessage: () => { throw new Error('handler bug'); } });
    await bus.subscribe(to, heard.subscription);
    const change: ChannelMessage<'agentChanges'> = { kind: 'updated', name: 'triage', version: 2, source: 'api', status: 'active', at: '2026-01-01T00:00:00.000Z', app_id: 'app-a' };
    await publisher.publish(to, change);
    expect((await heard.count(1))[0].message).toEqual(change);
  });

  it('the last subscription of a channel to end unsubscribes from Redis', async () => {
    const conn = subscriberConnection('unsubscribe');
    const bus = new BusSubscriber(conn, silent);
    const to = channelOf('chatEvents', `${prefix}-unsub`);
    const endA = await bus.subscribe(to, inbox<'chatEvents'>().subscription);
    const endB = await bus.subscribe(to, inbox<'chatEvents'>().subscription);
    expect(await pub.pubsub('SHARDNUMSUB', to.name)).toEqual([to.name, 1]);
    await endA();
    expect(await pub.pubsub('SHARDNUMSUB', to.name)).toEqual([to.name, 1]);
    await endB();
    expect(await pub.pubsub('SHARDNUMSUB', to.name)).toEqual([to.name, 0]);
    expect(bus.size).toBe(0);
  });

  it('a channel asked to linger stays subscribed after its last subscription, for the next one, until its time is up or a message comes for nobody', async () => {
    const conn = subscriberConnection('linger');
    let ssubscribes = 0;
    const ssubscribe = conn.ssubscribe.bind(conn);
    conn.ssubscribe = ((...args: Parameters<typeof ssubscribe>) => (ssubscribes++, ssubscribe(...args))) as typeof conn.ssubscribe;
    const bus = new BusSubscriber(conn, silent);
    const to = channelOf('chatEvents', `${prefix}-linger`);
    const numsub = async () => ((await pub.pubsub('SHARDNUMSUB', to.name)) as [string, number])[1];

    // Ended and taken again within the linger: one SSUBSCRIBE for both, and the second hears what follows.
    await (await bus.subscribe(to, inbox<'chatEvents'>().subscription, { lingerMs: 400 }))();
    expect(await numsub()).toBe(1);
    const next = inbox<'chatEvents'>();
    const end = await bus.subscribe(to, next.subscription, { lingerMs: 400 });
    await publisher.publish(to, batch('c', 1));
    expect((await next.count(1)).map((g) => g.message)).toEqual([batch('c', 1)]);
    expect(ssubscribes).toBe(1);

    // Ended again: unsubscribed once the linger is over.
    await end();
    expect(bus.size).toBe(1);
    await until(async () => (await numsub()) === 0, 5_000, 'the linger to end');
    expect(bus.size).toBe(0);

    // A message while it lingers (the channel is busy elsewhere) ends the linger at once.
    await (await bus.subscribe(to, inbox<'chatEvents'>().subscription, { lingerMs: 60_000 }))();
    expect(await numsub()).toBe(1);
    await publisher.publish(to, batch('c', 2));
    await until(async () => (await numsub()) === 0, 5_000, 'the message to end the linger');
    expect(bus.size).toBe(0);
    expect(ssubscribes).toBe(2);

    // Without lingerMs, the last subscription to end unsubscribes at once (as before).
    await (await bus.subscribe(to, inbox<'chatEvents'>().subscription))();
    expect(await numsub()).toBe(0);
  });

  it('after its connection is killed it subscribes again, then calls the resync hook; nothing after that is missed', async () => {
    const conn = subscriberConnection('killed');
    const id = await conn.client('ID'); // before subscribing: a subscribed connection cannot ask
    const bus = new BusSubscriber(conn, silent);
    const chat = `${prefix}-killed`;
    const exact = inbox<'chatEvents'>();
    await bus.subscribe(channelOf('chatEvents', chat), exact.subscription);

    await raw.client('KILL', 'ID', String(id));
    await until(() => exact.resyncs() === 1, 10_000, 'the resync hook');

    // The hook runs once Redis has confirmed the subscriptions again: a publish now is heard.
    await publisher.publish(channelOf('chatEvents', chat), batch(chat, 5));
    expect((await exact.count(1)).map((g) => g.message)).toEqual([batch(chat, 5)]);
    expect(await pub.pubsub('SHARDNUMSUB', Channel.chatEvents.name(chat))).toEqual([Channel.chatEvents.name(chat), 1]);
  });

  it('subscribing right after connecting, during ioredis’s ready check, is not lost', async () => {
    const conn = subscriberConnection('early');
    await new Promise((r) => conn.once('connect', r)); // the ready check is in flight now
    const bus = new BusSubscriber(conn, silent);
    const to = channelOf('chatEvents', `${prefix}-early`);
    const heard = inbox<'chatEvents'>();
    await bus.subscribe(to, heard.subscription);
    await publisher.publish(to, batch('c', 1));
    expect(await heard.count(1)).toHaveLength(1);
  });
});

/** A JSON value as JSON gives it back (no -0, no undefined). */
const json = fc.jsonValue().map((v) => JSON.parse(JSON.stringify(v)) as unknown);
const record = fc.dictionary(fc.string({ maxLength: 8 }).filter((k) => k !== '__proto__'), json, { maxKeys: 3 });
const text = fc.string({ maxLength: 20, unit: 'binary' });
const appId = fc.stringMatching(/^[A-Za-z0-9_:@-][A-Za-z0-9._:@-]{0,20}$/);
const closeReason = fc.constantFrom(...bridge.CloseReason.options);

/** Every valid message of each channel (a new channel without one here does not compile). */
const valid: { [K in ChannelKey]: fc.Arbitrary<ChannelMessage<K>> } = {
  chatEvents: fc.record({
    chat_id: text,
    events: fc.array(fc.record({ index: fc.integer({ min: 1 }), type: text, wire: text }), { minLength: 1, maxLength: 4 }),
  }),
  sessionControl: fc.oneof(
    fc.record(
      { action: fc.constant('stop' as const), session_id: text, app_id: text.filter((s) => s.length > 0), reason: text, requested_by: text },
      { requiredKeys: ['action', 'session_id', 'app_id'] },
    ),
    fc.record({ action: fc.constant('interrupt' as const), session_id: text, app_id: text.filter((s) => s.length > 0), before_seq: fc.bigInt({ min: 0n }).map(String), rollback: fc.boolean() }),
  ),
  observabilityLive: fc.oneof(
    fc.record({
      kind: fc.constant('ingested' as const),
      app_ids: fc.array(fc.option(text, { nil: null }), { maxLength: 3 }),
      sessions: fc.array(record, { maxLength: 3 }),
      events: fc.array(fc.record({ session_id: text, seq: fc.integer(), wire: text }), { maxLength: 3 }),
    }),
    fc.record({ kind: fc.constant('session_updated' as const), app_id: fc.option(text, { nil: null }), session: record }),
    fc.record({ kind: fc.constant('session_deleted' as const), app_id: fc.option(text, { nil: null }), session_id: text }),
  ),
  agentChanges: fc.record(
    {
      kind: fc.constantFrom('created' as const, 'updated' as const, 'deleted' as const),
      name: text,
      version: fc.integer(),
      source: fc.constantFrom('api' as const, 'files' as const),
      status: fc.constantFrom('active' as const, 'inactive' as const, null),
      at: text,
      app_id: appId,
    },
    { requiredKeys: ['kind', 'name', 'version', 'source', 'status', 'at'] },
  ),
  bridgeSessions: fc.oneof(
    fc.record({ kind: fc.constant('envelope' as const), sessionId: text, wire: text }),
    fc.record({ kind: fc.constant('closed' as const), sessionId: text, reason: closeReason, wire: text }),
    fc.record({ kind: fc.constant('close' as const), sessionId: text, instance: text, reason: closeReason }),
    fc.record({ kind: fc.constant('settled' as const), requestId: text }),
  ),
};

const keys = Object.keys(Channel) as ChannelKey[];

/** What a hostile or broken publisher may put on a channel, as the raw string sent. */
function invalidFor(key: ChannelKey): fc.Arbitrary<string> {
  const schema = Channel[key].schema;
  const wrongValue = fc.oneof(json, (valid[key] as fc.Arbitrary<Record<string, unknown>>).chain((m) =>
    // A valid message with one field removed or of the wrong type.
    fc.tuple(fc.constantFrom(...Object.keys(m)), fc.oneof(fc.constant(undefined), json)).map(([k, v]) => ({ ...m, [k]: v })),
  ));
  return fc.oneof(
    text.filter((s) => !isJson(s)),
    wrongValue.filter((v) => !schema.safeParse(v).success).map((v) => JSON.stringify(v) ?? 'undefined'),
  );
}
const isJson = (s: string) => {
  try {
    JSON.parse(s);
    return true;
  } catch {
    return false;
  }
};

describe('property: every channel of the map', () => {
  it.each(keys)('%s: any valid message arrives unchanged; any invalid one is dropped and counted, never delivered or thrown', async (key) => {
    const bus = new BusSubscriber(subscriberConnection(`property-${key}`), silent);
    const to = privateChannel(key, `property-${key}`);
    const heard = inbox<typeof key>();
    await bus.subscribe(to, heard.subscription as never);

    await fc.assert(
      fc.asyncProperty(valid[key] as fc.Arbitrary<unknown>, async (message) => {
        heard.got.length = 0;
        await publisher.publish(to, message as never);
        const [got] = await heard.count(1);
        expect(got.message).toEqual(message);
      }),
      { numRuns: 40 },
    );

    const sentinel = fc.sample(valid[key] as fc.Arbitrary<unknown>, { numRuns: 1, seed: 1 })[0];
    await fc.assert(
      fc.asyncProperty(invalidFor(key), async (wire) => {
        heard.got.length = 0;
        const before = bus.dropped[key] ?? 0;
        await raw.spublish(to.name, wire);
        await publisher.publish(to, sentinel as never); // after the invalid one on the same channel
        const got = await heard.count(1);
        expect(got.map((g) => g.message)).toEqual([sentinel]);
        expect(bus.dropped[key]).toBe(before + 1);
      }),
      { numRuns: 40 },
    );
  });
});

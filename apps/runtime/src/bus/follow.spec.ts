import type { StoredEvent } from '../store/timeline';
import type { FeedListener } from './feed';
import { followTimeline, TimelineFollower } from './follow';

/** A chat's log in memory and a feed that delivers what the test publishes; log reads are counted. */
function chat() {
  const log: StoredEvent[] = [];
  let listener: FeedListener | null = null;
  let reads = 0;
  const s = {
    feed: {
      subscribe: async (_chatId: string, l: FeedListener) => {
        listener = l;
        return async () => void (listener = null);
      },
    },
    timeline: {
      after: async (_chatId: string, after: number, limit: number) => {
        reads++;
        return log.filter((e) => e.index > after).slice(0, limit);
      },
    },
  };
  return {
    s: s as unknown as Parameters<typeof followTimeline>[0],
    /** Store the next event (not published). */
    append(): StoredEvent {
      const index = log.length + 1;
      const data = { message_id: 'm', delta: `word ${index}` };
      const timestamp = '2026-12-06T12:00:00.000Z';
      const e = { index, type: 'chat.text', data, timestamp, wire: JSON.stringify({ type: 'chat.text', data, timestamp, index }) };
      log.push(e);
      return e;
    },
    publish(...events: StoredEvent[]) {
      listener?.onEvents(events.map(({ index, type, wire }) => ({ index, type, wire })));
    },
    resync() {
      listener?.onResync();
    },
    get reads() {
      return reads;
    },
    get subscribed() {
      return listener !== null;
    },
  };
}

const indexOf = async (it: AsyncGenerator<StoredEvent>) => (await it.next()).value?.index;

describe('followTimeline', () => {
  it('reads the log once, then passes live events that continue it, none twice, with their data', async () => {
    const c = chat();
    c.append();
    c.append();
    const it = followTimeline(c.s, 'chat', 0, new AbortController().signal);
    expect(await indexOf(it)).toBe(1);
    expect(await indexOf(it)).toBe(2);
    const next = it.next();
    const [three, four] = [c.append(), c.append()];
    c.publish(three, four);
    expect((await next).value).toEqual(three);
    expect(await indexOf(it)).toBe(4);
    const five = c.append();
    c.publish(four, five); // 4 again: already passed
    expect(await indexOf(it)).toBe(5);
    expect(c.reads).toBe(1);
    await it.return(undefined);
    expect(c.subscribed).toBe(false);
  });

  it('a gap (a publish lost or late) reads the log from where the follower is', async () => {
    const c = chat();
    const it = followTimeline(c.s, 'chat', 0, new AbortController().signal);
    const next = it.next();
    await new Promise((r) => setImmediate(r)); // the first read is done; the follower waits
    c.append(); // stored, its publish lost
    c.publish(c.append());
    expect((await next).value?.index).toBe(1);
    expect(await indexOf(it)).toBe(2);
    expect(c.reads).toBe(2);
    await it.return(undefined);
  });

  it('a resync (the subscription was down) reads the log', async () => {
    const c = chat();
    const it = followTimeline(c.s, 'chat', 0, new AbortController().signal);
    const next = it.next();
    await new Promise((r) => setImmediate(r));
    c.append();
    c.resync();
    expect((await next).value?.index).toBe(1);
    expect(c.reads).toBe(2);
    await it.return(undefined);
  });

  it('a consumer that stops reading is not buffered for: what it missed comes from the log, in order', async () => {
    const c = chat();
    const it = followTimeline(c.s, 'chat', 0, new AbortController().signal);
    const first = c.append();
    c.publish(first);
    expect(await indexOf(it)).toBe(1);
    for (let i = 0; i < 600; i++) c.publish(c.append());
    const seen: number[] = [];
    for (let i = 0; i < 600; i++) seen.push((await indexOf(it)) as number);
    expect(seen).toEqual(Array.from({ length: 600 }, (_, i) => i + 2));
    expect(c.reads).toBeGreaterThan(1);
    await it.return(undefined);
  });

  it('ends when its signal aborts, also while waiting, and unsubscribes', async () => {
    const c = chat();
    const ac = new AbortController();
    const it = followTimeline(c.s, 'chat', 0, ac.signal);
    const next = it.next();
    await new Promise((r) => setImmediate(r));
    expect(c.subscribed).toBe(true);
    ac.abort();
    expect((await next).done).toBe(true);
    expect(c.subscribed).toBe(false);
  });
});

describe('TimelineFollower, subscribed before the caller acts', () => {
  it('with readLogFirst false, what the act causes comes live with no read of the log', async () => {
    const c = chat();
    c.append(); // before `after`: not the run's
    const f = await TimelineFollower.subscribe(c.s, 'chat');
    const it = f.follow(1, new AbortController().signal, { readLogFirst: false });
    const next = it.next();
    const [two, three] = [c.append(), c.append()];
    c.publish(two, three);
    expect((await next).value).toEqual(two);
    expect(await indexOf(it)).toBe(3);
    expect(c.reads).toBe(0);
    await it.return(undefined);
    await f.close();
    expect(c.subscribed).toBe(false);
  });

  it('what was stored between `after` and the subscription shows as a gap at the first live event, and is read then', async () => {
    const c = chat();
    c.append(); // stored after the caller read `after` (0), before it subscribed: never published to it
    const f = await TimelineFollower.subscribe(c.s, 'chat');
    const it = f.follow(0, new AbortController().signal, { readLogFirst: false });
    const next = it.next();
    c.publish(c.append());
    expect((await next).value?.index).toBe(1);
    expect(await indexOf(it)).toBe(2);
    expect(c.reads).toBe(1);
    await it.return(undefined);
    await f.close();
  });
});

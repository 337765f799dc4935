import { DroppedEvents, MAX_NAMED_SESSIONS } from './dropped-events';

describe('DroppedEvents', () => {
  it('has nothing to tell before anything is dropped', () => {
    expect(new DroppedEvents().take()).toBeNull();
  });

  it('names each session with its missed seqs, in any order of arrival, and starts afresh after a notice', () => {
    const d = new DroppedEvents();
    for (const seq of [5, 3, 4]) d.add('s1', 'app1', seq);
    d.add('s1', 'app2', 9); // the same id in another app is another session
    d.add('s2', null, 1);
    const notice = d.take()!;
    expect(notice).toMatchObject({ type: 'events_dropped', count: 5, truncated: false });
    expect(notice.sessions).toEqual([
      { session_id: 's1', app_id: 'app1', from_seq: 3, to_seq: 5, count: 3 },
      { session_id: 's1', app_id: 'app2', from_seq: 9, to_seq: 9, count: 1 },
      { session_id: 's2', app_id: null, from_seq: 1, to_seq: 1, count: 1 },
    ]);
    expect(notice.message).toMatch(/GET \/events\/\{session_id\}\?after=<from_seq - 1>/);
    expect(d.take()).toBeNull();
    d.add('s3', 'app1', 7);
    expect(d.take()).toMatchObject({ count: 1, sessions: [{ session_id: 's3', from_seq: 7 }] });
  });

  it('stays bounded whatever is missed: sessions past the limit are counted, not named', () => {
    const d = new DroppedEvents();
    for (let i = 0; i < MAX_NAMED_SESSIONS + 50; i++) d.add(`s${i}`, 'app1', 1);
    d.add('s0', 'app1', 2);
    const notice = d.take()!;
    expect(notice.count).toBe(MAX_NAMED_SESSIONS + 51);
    expect(notice.sessions).toHaveLength(MAX_NAMED_SESSIONS);
    expect(notice.truncated).toBe(true);
    expect(notice.sessions[0]).toMatchObject({ session_id: 's0', from_seq: 1, to_seq: 2, count: 2 });
  });
});

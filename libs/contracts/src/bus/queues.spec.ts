import { Channel } from './channels';
import { Queue, QueueJobs } from './queues';

describe('the queue map', () => {
  it('has one entry per queue, with distinct job names', () => {
    expect(Object.keys(QueueJobs).sort()).toEqual(Object.values(Queue).sort());
    const names = Object.values(QueueJobs).map((j) => j.name);
    expect(new Set(names).size).toBe(names.length);
  });

  it('a turn job carries the chat, app and input ids', () => {
    const job = { chat_id: 'c1', app_id: 'a1', input_id: 'i1' };
    expect(QueueJobs[Queue.RuntimeTurns].data.parse(job)).toEqual(job);
    expect(QueueJobs[Queue.RuntimeTurns].data.safeParse({ chat_id: 'c1', app_id: 'a1' }).success).toBe(false);
  });

  it('every payload schema refuses a non-object', () => {
    for (const spec of Object.values(QueueJobs)) expect(spec.data.safeParse('not a job').success).toBe(false);
  });
});

describe('channels', () => {
  it('name each chat its own events channel', () => {
    expect(Channel.chatEvents.name('c1')).not.toBe(Channel.chatEvents.name('c2'));
    expect(Channel.chatEvents.name('c1')).toContain('c1');
  });

  it('a stop control message names the session and its app', () => {
    expect(Channel.sessionControl.schema.parse({ action: 'stop', session_id: 's1', app_id: 'app1' })).toEqual({ action: 'stop', session_id: 's1', app_id: 'app1' });
    expect(Channel.sessionControl.schema.safeParse({ action: 'stop', session_id: 's1' }).success).toBe(false);
    expect(Channel.sessionControl.schema.safeParse({ action: 'pause', session_id: 's1', app_id: 'app1' }).success).toBe(false);
  });
});

import { TimelineMapper } from './wire';

const text = (delta: string, done = false) => ({ type: 'chat.text', data: { role: 'assistant', delta, done } });
const user = { type: 'chat.text', data: { role: 'user', delta: 'hi', done: true, content: 'hi' } };
const end = (status = 'completed', reason?: string) => ({ type: 'chat.run_complete', data: { turn_id: 't', status, reason } });

describe('TimelineMapper', () => {
  it('streams whole sentences as they complete, the rest when the message ends', () => {
    const m = new TimelineMapper();
    expect(m.map(user)).toEqual([{ type: 'agent_processing_start' }]);
    expect(m.map(text('Hello '))).toEqual([]);
    expect(m.map(text('there! How '))).toEqual([{ type: 'agent_message', message: 'Hello there!' }]);
    expect(m.map(text('are you'))).toEqual([]);
    expect(m.map(text('', true))).toEqual([{ type: 'agent_message', message: 'How are you' }]);
    expect(m.map(end())).toEqual([{ type: 'agent_processing_end' }]);
  });

  it('a stopped or failed turn ends with error before agent_processing_end; an end without a start gets one', () => {
    const m = new TimelineMapper();
    expect(m.map(end('stopped', 'stopped by an operator'))).toEqual([
      { type: 'agent_processing_start' },
      { type: 'error', message: 'the conversation was stopped: stopped by an operator' },
      { type: 'agent_processing_end' },
    ]);
    m.map(user);
    expect(m.map({ type: 'chat.error', data: { message: 'Model call failed', error_code: 'MODEL_ERROR' } })).toEqual([{ type: 'error', message: 'Model call failed' }]);
    expect(m.map(end('failed'))).toEqual([{ type: 'agent_processing_end' }]);
  });

  it('announces a checkpoint only when the list grows past what the socket knows', () => {
    const m = new TimelineMapper({ completedCount: 1 });
    const cp = (ids: string[]) => ({
      type: 'chat.custom_event',
      data: { kind: 'checkpoint_completed', payload: { checkpoint_id: ids.at(-1), title: 'x', completed_checkpoints: ids, progress: ids.length * 25, mission_complete: false } },
    });
    expect(m.map(cp(['a']))).toEqual([]);
    expect(m.map(cp(['a', 'b']))).toEqual([{ type: 'checkpoint_update', completed_checkpoints: ['a', 'b'], progress: 50 }]);
    expect(m.map({ type: 'chat.custom_event', data: { kind: 'checkpoint_completed', payload: { bogus: true } } })).toEqual([]);
    expect(m.map({ type: 'chat.custom_event', data: { kind: 'handoff', payload: { from: 'a', to: 'mission_sensei' } } })).toEqual([
      { type: 'agent_handover', agent: 'mission_sensei', message: 'Handing over to mission_sensei...' },
    ]);
  });
});

import { messageBubbles, splitSentences, TimelineMapper } from './wire';

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

describe('splitSentences', () => {
  const reply = 'Hello there! How are you?\n\nI am "fine." Really (truly.) Yes… and e.g. this.  Last bit';

  it('cuts after . ! ? … (and closing quotes or brackets) followed by whitespace, and at line breaks', () => {
    expect(splitSentences(reply)).toEqual({
      sentences: ['Hello there!', 'How are you?', 'I am "fine."', 'Really (truly.)', 'Yes…', 'and e.g.', 'this.'],
      rest: 'Last bit',
    });
    expect(splitSentences('no end yet.')).toEqual({ sentences: [], rest: 'no end yet.' });
    expect(messageBubbles('  ')).toEqual([]);
    expect(messageBubbles('One. Two')).toEqual(['One.', 'Two']);
  });

  it('a reply cut into deltas anywhere streams the bubbles the whole reply gives (what history replays)', () => {
    const whole = messageBubbles(reply);
    for (let a = 0; a <= reply.length; a++) {
      for (let b = a; b <= reply.length; b += 3) {
        const m = new TimelineMapper({ inTurn: true });
        const out = [reply.slice(0, a), reply.slice(a, b), reply.slice(b)].flatMap((d) => m.map(text(d)));
        out.push(...m.map(text('', true)));
        expect(out.map((x) => (x as { message: string }).message)).toEqual(whole);
      }
    }
  });

  it('a socket opened mid-reply goes on from the unfinished sentence it was handed', () => {
    const cut = 30;
    const { sentences, rest } = splitSentences(reply.slice(0, cut));
    const m = new TimelineMapper({ inTurn: true, pending: rest });
    const live = [...m.map(text(reply.slice(cut))), ...m.map(text('', true))].map((x) => (x as { message: string }).message);
    expect([...sentences, ...live]).toEqual(messageBubbles(reply));
  });
});

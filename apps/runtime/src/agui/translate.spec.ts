import { EventSchema } from '@ag-ui/core/schemas';
import type { TimelineEvent } from '@tessera/contracts';
import { isAfter, parseEventId, RunTranslator } from './translate';

let index = 10;
const ev = (type: string, data: Record<string, unknown>): TimelineEvent => ({ index: ++index, type, data, timestamp: '2026-01-01T00:00:00.000Z' });
const text = (id: string, delta: string, done = false, agent = 'host') => ev('chat.text', { message_id: id, agent, role: 'assistant', delta, done });
/** The user's message that opens a turn (keyed by the turn's input id). */
const opening = (turn = 'turn-1') => ev('chat.text', { message_id: `${turn}:user`, agent: 'user', role: 'user', delta: 'hi', done: true });

/** A run of turn `turnId` over `events` (its opening message first, unless `opened: false`). */
function run(events: TimelineEvent[], turnId: string | null = 'turn-1', opts: { opened?: boolean; answers?: string[] } = {}) {
  const t = new RunTranslator('thread', 'run', 10, turnId, 'wf', opts.answers);
  const all = turnId !== null && opts.opened !== false ? [opening(turnId), ...events] : events;
  return { t, out: [...t.start(), ...all.flatMap((e) => t.map(e))] };
}

beforeEach(() => (index = 10));

describe('RunTranslator', () => {
  it('makes events the official schema accepts, with increasing ids', () => {
    const { out, t } = run([
      text('turn-1:m1', 'Hel'),
      text('turn-1:m1', 'lo', true),
      ev('chat.tool_call', { event_id: 'turn-1:tc1', tool_call_id: 'c1', tool_name: 'ask_user', component: 'C', agent: 'host', payload: { question: 'Name?' }, awaiting_response: true, interaction_type: 'input_request', display: 'inline' }),
      ev('chat.run_complete', { turn_id: 'turn-1', status: 'awaiting_input' }),
    ]);
    expect(t.done).toBe(true);
    for (const p of out) expect(EventSchema.safeParse(p.event).success).toBe(true);
    expect(out.map((p) => p.event.type)).toEqual([
      'RUN_STARTED',
      'STEP_STARTED',
      'TEXT_MESSAGE_START',
      'TEXT_MESSAGE_CONTENT',
      'TEXT_MESSAGE_CONTENT',
      'TEXT_MESSAGE_END',
      'TOOL_CALL_START',
      'TOOL_CALL_ARGS',
      'TOOL_CALL_END',
      'STEP_FINISHED',
      'STATE_SNAPSHOT',
      'RUN_FINISHED',
    ]);
    expect(out.at(-1)?.event).toMatchObject({ outcome: { type: 'interrupt', interrupts: [{ id: 'turn-1:tc1', toolCallId: 'c1', reason: 'tool_call', message: 'Name?' }] } });
    const ids = out.map((p) => parseEventId(p.id) as [number, number]);
    for (let i = 1; i < ids.length; i++) expect(isAfter(out[i].id, ids[i - 1])).toBe(true);
  });

  it('the same events make the same ids and events again (what a reconnect relies on)', () => {
    const events = [text('turn-1:m1', 'a'), text('turn-1:m1', 'b', true), ev('chat.run_complete', { turn_id: 'turn-1', status: 'completed' })];
    expect(run(events).out).toEqual(run(events).out);
  });

  it('ends at its own turn only: another turn’s run_complete passes by', () => {
    const { t, out } = run([ev('chat.run_complete', { turn_id: 'earlier', status: 'completed' }), text('turn-1:m1', 'x', true), ev('chat.run_complete', { turn_id: 'turn-1', status: 'completed' })]);
    expect(t.done).toBe(true);
    expect(out.filter((p) => p.event.type === 'RUN_FINISHED')).toHaveLength(1);
    expect(out.some((p) => p.event.type === 'TEXT_MESSAGE_CONTENT')).toBe(true);
  });

  it('carries its own turn only: what another turn says after the base (the end of an earlier reply, one cut off) passes by', () => {
    const { out } = run(
      [
        text('earlier:m1', 'tail of an earlier reply', true),
        ev('chat.tool_call', { event_id: 'earlier:tc1', tool_call_id: 'c0', tool_name: 'ask_user', component: 'C', agent: 'host', payload: {}, awaiting_response: true, interaction_type: 'input_request', display: 'inline' }),
        ev('chat.custom_event', { kind: 'handoff', payload: { from: 'host', to: 'specialist' } }),
        ev('chat.tool_call_complete', { event_id: 'older:tc9', tool_call_id: 'c9', tool_name: 'ask_user', response: { answer: 'x' } }),
        ev('chat.error', { error_code: 'MODEL_ERROR', message: 'earlier failed' }),
        ev('chat.run_complete', { turn_id: 'earlier', status: 'interrupted' }),
        opening(),
        text('turn-1:m1', 'mine', true),
        ev('chat.custom_event', { kind: 'handoff', payload: { from: 'host', to: 'specialist' } }),
        ev('chat.run_complete', { turn_id: 'turn-1', status: 'completed' }),
      ],
      'turn-1',
      { opened: false },
    );
    const texts = out.flatMap((p) => (p.event.type === 'TEXT_MESSAGE_CONTENT' ? [(p.event as { delta: string }).delta] : []));
    expect(texts).toEqual(['mine']);
    expect(out.map((p) => p.event.type).filter((t) => t.startsWith('TOOL_CALL') || t === 'CUSTOM')).toEqual(['CUSTOM']);
    expect(out.at(-1)?.event).toMatchObject({ type: 'RUN_FINISHED', outcome: { type: 'success' } });
  });

  it('a run that resumes opens at the answer to one of its interrupts', () => {
    const answer = ev('chat.tool_call_complete', { event_id: 'turn-0:tc1', tool_call_id: 'c1', tool_name: 'ask_user', response: { answer: 'Ada' } });
    const { out } = run([ev('chat.custom_event', { kind: 'handoff', payload: {} }), answer, text('turn-2:m1', 'Nice', true), ev('chat.run_complete', { turn_id: 'turn-2', status: 'completed' })], 'turn-2', {
      opened: false,
      answers: ['turn-0:tc1'],
    });
    expect(out.map((p) => p.event.type)).toEqual(['RUN_STARTED', 'TOOL_CALL_RESULT', 'STEP_STARTED', 'TEXT_MESSAGE_START', 'TEXT_MESSAGE_CONTENT', 'TEXT_MESSAGE_END', 'STEP_FINISHED', 'STATE_SNAPSHOT', 'RUN_FINISHED']);
  });

  it('finishes at its turn’s end even when it began reading past its opening', () => {
    const { t, out } = run([text('turn-1:m1', 'late', true), ev('chat.run_complete', { turn_id: 'turn-1', status: 'completed' })], 'turn-1', { opened: false });
    expect(t.done).toBe(true);
    expect(out.map((p) => p.event.type)).toEqual(['RUN_STARTED', 'STATE_SNAPSHOT', 'RUN_FINISHED']);
  });

  it('a turn a newer message cut off (interrupted, rolled back) finishes cancelled', () => {
    for (const status of ['interrupted', 'rolled_back'])
      expect(run([text('turn-1:m1', 'x'), ev('chat.run_complete', { turn_id: 'turn-1', status })]).out.at(-1)?.event).toMatchObject({ type: 'RUN_FINISHED', outcome: { type: 'cancelled' } });
  });

  it('a failed turn is RUN_ERROR, a stopped one RUN_FINISHED cancelled; a message left open is ended first', () => {
    const failed = run([text('turn-1:m1', 'x'), ev('chat.run_complete', { turn_id: 'turn-1', status: 'failed', reason: 'model down' })]).out.map((p) => p.event);
    expect(failed.slice(-4).map((e) => e.type)).toEqual(['TEXT_MESSAGE_END', 'STEP_FINISHED', 'STATE_SNAPSHOT', 'RUN_ERROR']);
    expect(failed.at(-1)).toMatchObject({ message: 'model down' });
    const stopped = run([ev('chat.run_complete', { turn_id: 'turn-1', status: 'stopped' })]).out.map((p) => p.event);
    expect(stopped.at(-1)).toMatchObject({ type: 'RUN_FINISHED', outcome: { type: 'cancelled' } });
  });

  it('reads Last-Event-ID strictly', () => {
    expect(parseEventId('12:3')).toEqual([12, 3]);
    for (const bad of ['', '12', '12:', 'a:1', '1:2:3', ' 1:2', '9999999999999999:0']) expect(parseEventId(bad)).toBeNull();
  });
});

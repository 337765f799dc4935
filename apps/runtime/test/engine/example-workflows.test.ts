/** The shipped example workflows, run turn by turn on the scripted provider. */
import { runTurn } from '../../src/engine/run-turn';
import { emptyState } from '../../src/engine/types';
import { collector, deepFreeze, messagesOf, registry, shapeOf, turn, workflow } from './harness';

const words = (s: string) => s.match(/\S+\s*/g) ?? [];

describe('assistant workflow', () => {
  const w = workflow('assistant');
  const reply = (msg: string, tier: string) =>
    `Thanks for your message. You said "${msg}" and I am the Tessera assistant, answering from a script, so no model server is needed. Your plan: ${tier}.`;

  it('streams the scripted reply word by word, closes the message, reports usage', async () => {
    const r = await turn(w, { kind: 'message', text: 'hello there' }, { turnId: 't1' });
    const text = reply('hello there', 'standard');
    expect(r.events).toEqual([
      ...words(text).map((delta) => ({
        type: 'chat.text',
        data: { message_id: 't1:m1', agent: 'assistant', role: 'assistant', delta, done: false },
      })),
      { type: 'chat.text', data: { message_id: 't1:m1', agent: 'assistant', role: 'assistant', delta: '', done: true, content: text } },
      {
        type: 'chat.usage_delta',
        // About 4 characters a token, 3 of framing per message and 3 priming the reply (scripted.ts):
        // prompt: the system prompt as rendered (78 characters) and "hello there"; completion: the reply.
        data: { prompt_tokens: 3 + (3 + 20) + (3 + 3), completion_tokens: Math.ceil(text.length / 4), total_tokens: 32 + Math.ceil(text.length / 4), agent: 'assistant', model: 'scripted', provider: 'scripted' },
      },
    ]);
    expect(r.status).toBe('completed');
    expect(r.awaiting).toEqual([]);
    expect(r.state).toEqual({
      current_agent: 'assistant',
      messages: [
        { role: 'user', content: 'hello there' },
        { role: 'assistant', agent: 'assistant', content: text },
      ],
      turns: 1,
      usage: { prompt_tokens: 32, completion_tokens: Math.ceil(text.length / 4), total_tokens: 32 + Math.ceil(text.length / 4) },
    });
  });

  it('uses the user_tier context variable when present', async () => {
    const r = await turn(w, { kind: 'message', text: 'hi' }, { context: { user_tier: 'enterprise' } });
    expect(messagesOf(r.events)).toEqual([{ agent: 'assistant', id: 'turn-1:m1', text: reply('hi', 'enterprise') }]);
  });

  it('continues a conversation without touching the previous state', async () => {
    const first = await turn(w, { kind: 'message', text: 'one' }, { turnId: 'a' });
    const before = deepFreeze(first.state);
    const second = await turn(w, { kind: 'message', text: 'two' }, { turnId: 'b', state: before });
    expect(second.state.messages).toHaveLength(4);
    expect(second.state.turns).toBe(2);
    expect(second.state.usage.total_tokens).toBeGreaterThan(before.usage.total_tokens);
    expect(before.messages).toHaveLength(2);
    expect(messagesOf(second.events)[0].id).toBe('b:m1');
  });

  it('is deterministic: the same turn re-run emits identical events', async () => {
    const a = await turn(w, { kind: 'message', text: 'same input' }, { turnId: 'x' });
    const b = await turn(w, { kind: 'message', text: 'same input' }, { turnId: 'x' });
    expect(b.events).toEqual(a.events);
    expect(b.state).toEqual(a.state);
  });
});

describe('handoff workflow', () => {
  const w = workflow('handoff');

  it('triage hands a billing question to the specialist, who answers in the same turn', async () => {
    const r = await turn(w, { kind: 'message', text: 'I have a billing question' }, { turnId: 'h' });
    expect(shapeOf(r.events)).toEqual([
      'chat.text*',
      'chat.text!',
      'chat.usage_delta',
      'chat.custom_event',
      'chat.text*',
      'chat.text!',
      'chat.usage_delta',
    ]);
    expect(r.events.find((e) => e.type === 'chat.custom_event')?.data).toEqual({
      kind: 'handoff',
      payload: { from: 'triage', to: 'specialist' },
    });
    expect(messagesOf(r.events)).toEqual([
      { id: 'h:m1', agent: 'triage', text: 'That sounds like a billing question, so I will transfer you to our billing specialist.' },
      {
        id: 'h:m2',
        agent: 'specialist',
        text: 'Hi, billing specialist here. About "I have a billing question": your last invoice is paid and nothing is due.',
      },
    ]);
    expect(r.events.filter((e) => e.type === 'chat.usage_delta').map((e) => e.data.agent)).toEqual(['triage', 'specialist']);
    expect(r.status).toBe('completed');
    expect(r.state.current_agent).toBe('specialist');
    const [, call, result] = r.state.messages;
    expect(call).toMatchObject({ role: 'assistant', agent: 'triage', tool_calls: [{ name: 'transfer_to_specialist', args: { reason: 'billing question' } }] });
    expect(result).toMatchObject({ role: 'tool', tool_name: 'transfer_to_specialist', content: '{"transferred_to":"specialist"}' });
    expect((result as { tool_call_id: string }).tool_call_id).toBe((call as { tool_calls: { id: string }[] }).tool_calls[0].id);
  });

  it('triage answers other questions itself', async () => {
    const r = await turn(w, { kind: 'message', text: 'What are your opening hours?' });
    expect(shapeOf(r.events)).toEqual(['chat.text*', 'chat.text!', 'chat.usage_delta']);
    expect(messagesOf(r.events)[0].agent).toBe('triage');
    expect(r.state.current_agent).toBe('triage');
  });
});

describe('ask_user workflow', () => {
  const w = workflow('ask_user');

  it('asks through a UI tool, awaits the answer, then continues with it', async () => {
    const first = await turn(w, { kind: 'message', text: 'Can you help me plan a trip?' }, { turnId: 'q1' });
    expect(shapeOf(first.events)).toEqual(['chat.text*', 'chat.text!', 'chat.usage_delta', 'chat.tool_call']);
    const call = first.events[first.events.length - 1].data;
    expect(call).toEqual({
      event_id: 'q1:tc1',
      tool_call_id: expect.stringMatching(/^call_[A-Za-z0-9_]+_1$/),
      tool_name: 'ask_user',
      component: 'UserInputRequest',
      agent: 'concierge',
      payload: { question: 'What name should I call you?' },
      awaiting_response: true,
      interaction_type: 'input_request',
      display: 'composer',
    });
    expect(first.status).toBe('awaiting_input');
    expect(first.awaiting).toEqual([{ event_id: 'q1:tc1', tool_call_id: call.tool_call_id, tool_name: 'ask_user', agent: 'concierge' }]);

    const second = await turn(
      w,
      { kind: 'tool_response', event_id: 'q1:tc1', tool_call_id: call.tool_call_id, tool_name: 'ask_user', agent: 'concierge', response: { answer: 'Ada' } },
      { turnId: 'q2', state: deepFreeze(first.state) },
    );
    expect(shapeOf(second.events)).toEqual(['chat.text*', 'chat.text!', 'chat.usage_delta']);
    expect(messagesOf(second.events)).toEqual([
      { id: 'q2:m1', agent: 'concierge', text: 'Nice to meet you, Ada! I will remember that for the rest of our chat.' },
    ]);
    expect(second.status).toBe('completed');
    expect(second.state.turns).toBe(2);
    expect(second.state.messages[2]).toEqual({ role: 'tool', tool_call_id: call.tool_call_id, tool_name: 'ask_user', content: '{"answer":"Ada"}' });
  });

  it('a message sent instead of the answer dismisses the pending call and starts over', async () => {
    const first = await turn(w, { kind: 'message', text: 'help' }, { turnId: 'q1' });
    const second = await turn(w, { kind: 'message', text: 'never mind, help again' }, { turnId: 'q2', state: first.state });
    const tool = second.state.messages[2];
    expect(tool).toMatchObject({ role: 'tool', tool_name: 'ask_user', content: expect.stringContaining('dismissed') });
    expect(second.status).toBe('awaiting_input');
    expect(second.awaiting[0].event_id).toBe('q2:tc1');
  });

  it('is deterministic across both turns, tool call ids included', async () => {
    const once = async () => {
      const a = await turn(w, { kind: 'message', text: 'help' }, { turnId: 'd1' });
      const [p] = a.awaiting;
      const b = await turn(w, { kind: 'tool_response', ...p, response: { answer: 'Bo' } }, { turnId: 'd2', state: a.state });
      return [a.events, b.events, b.state];
    };
    expect(await once()).toEqual(await once());
  });

  it('a response to no awaiting call fails without changing the state', async () => {
    const first = await turn(w, { kind: 'message', text: 'help' });
    const r = await turn(
      w,
      { kind: 'tool_response', event_id: 'nope', tool_call_id: 'nope', tool_name: 'ask_user', agent: 'concierge', response: {} },
      { state: first.state },
    );
    expect(r.status).toBe('failed');
    expect(r.state).toBe(first.state);
    expect(r.events).toEqual([{ type: 'chat.error', data: { error_code: 'TOOL_CALL_NOT_FOUND', message: expect.stringContaining('nope') } }]);
  });
});

describe('greeter workflow', () => {
  const w = workflow('greeter');

  it('the agent speaks first, answering the hidden greeting prompt', async () => {
    const r = await turn(w, { kind: 'greeting' }, { turnId: 'g' });
    expect(shapeOf(r.events)).toEqual(['chat.text*', 'chat.text!', 'chat.usage_delta']);
    expect(r.events.some((e) => e.type === 'chat.text' && e.data.role === 'user')).toBe(false);
    expect(messagesOf(r.events)).toEqual([
      {
        id: 'g:m1',
        agent: 'host',
        text: 'Hello and welcome! I am the Tessera greeter. Tell me what you are working on and I will point you the right way.',
      },
    ]);
    expect(r.state.messages[0]).toEqual({ role: 'user', content: 'Greet the user and introduce yourself.' });
    expect(r.status).toBe('completed');
  });

  it('stops promptly when aborted mid-stream and closes the message', async () => {
    const ac = new AbortController();
    const started = Date.now();
    let deltas = 0;
    const { events, emit } = collector();
    const r = await runTurn({
      workflow: w,
      state: emptyState(w.starting_agent),
      context: {},
      input: { kind: 'greeting' },
      turnId: 's',
      signal: ac.signal,
      providers: registry,
      emit: async (type, data) => {
        await emit(type, data);
        if (type === 'chat.text' && ++deltas === 3) setTimeout(() => ac.abort(), 10);
      },
    });
    expect(Date.now() - started).toBeLessThan(1000);
    expect(r.status).toBe('stopped');
    const texts = events.filter((e) => e.type === 'chat.text');
    expect(texts).toHaveLength(4);
    const last = events[events.length - 1];
    expect(last).toEqual({
      type: 'chat.text',
      data: { message_id: 's:m1', agent: 'host', role: 'assistant', delta: '', done: true, content: 'Hello and welcome! ' },
    });
    expect(r.state.messages[1]).toEqual({ role: 'assistant', agent: 'host', content: 'Hello and welcome! ' });
    expect(r.state.turns).toBe(1);
  });
});

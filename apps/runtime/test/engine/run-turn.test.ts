/** Engine rules beyond the happy paths, with fake providers standing in for models. */
import { ModelProviderError } from '../../src/providers/errors';
import { runTurn } from '../../src/engine/run-turn';
import { parseWorkflow } from '../../src/engine/workflows';
import type { LoadedWorkflow } from '../../src/engine/types';
import { createProviderRegistry } from '../../src/providers/registry';
import { fakeProvider, finish, messagesOf, registryWith, shapeOf, turn } from './harness';

function inline(over: Record<string, unknown> = {}, agent: Record<string, unknown> = {}): LoadedWorkflow {
  return parseWorkflow(
    'inline/workflow.json',
    JSON.stringify({
      name: 'inline',
      starting_agent: 'a',
      ui_tools: [
        { name: 'show_card', component: 'Card', awaits_response: false, display: 'inline' },
        { name: 'confirm', component: 'Confirm', awaits_response: true, display: 'modal' },
      ],
      agents: [
        { name: 'a', system_prompt: 'Agent A for {{context.company|nobody}}.', tools: ['show_card', 'confirm'], handoffs: ['b'], ...agent },
        { name: 'b', system_prompt: 'Agent B.' },
      ],
      ...over,
    }),
  );
}

const say = (text: string) => () => [{ type: 'text-delta' as const, text }, finish()];
const call = (name: string, args: Record<string, unknown> = {}) => () => [
  { type: 'tool-call' as const, id: 'model-id', name, args },
  finish('tool-calls'),
];

describe('runTurn', () => {
  it('gives the model the agent system prompt (context interpolated), its UI tools and handoff tools', async () => {
    const p = fakeProvider([say('ok')]);
    await turn(inline(), { kind: 'message', text: 'hi' }, { providers: registryWith(p), context: { company: 'Acme' } });
    const [req] = p.requests;
    expect(req.system).toBe('Agent A for Acme.');
    expect(req.model).toBe('fake-model');
    expect(req.messages).toEqual([{ role: 'user', content: 'hi' }]);
    expect(req.tools.map((t) => t.name)).toEqual(['show_card', 'confirm', 'transfer_to_b']);
    expect(req.tools[0].parameters).toEqual({ type: 'object' });
    expect(req.declared).toEqual(inline().agents[0].model); // the agent's model block, as declared, for the provider to read
  });

  it('a display-only UI tool gets a "displayed" result and the agent continues', async () => {
    const p = fakeProvider([call('show_card', { title: 'T' }), say('done')]);
    const r = await turn(inline(), { kind: 'message', text: 'hi' }, { providers: registryWith(p), turnId: 'u' });
    expect(shapeOf(r.events)).toEqual(['chat.usage_delta', 'chat.tool_call', 'chat.text*', 'chat.text!', 'chat.usage_delta']);
    expect(r.events[1].data).toMatchObject({
      event_id: 'u:tc1',
      tool_name: 'show_card',
      component: 'Card',
      payload: { title: 'T' },
      awaiting_response: false,
      interaction_type: 'display',
      display: 'inline',
    });
    expect(r.status).toBe('completed');
    expect(p.requests[1].messages.slice(1)).toEqual([
      { role: 'assistant', agent: 'a', content: '', tool_calls: [{ id: r.events[1].data.tool_call_id, name: 'show_card', args: { title: 'T' }, event_id: 'u:tc1' }] },
      { role: 'tool', tool_call_id: r.events[1].data.tool_call_id, tool_name: 'show_card', content: 'displayed' },
    ]);
    expect(r.state.usage).toEqual({ prompt_tokens: 20, completion_tokens: 4, total_tokens: 24 });
  });

  it('an unknown tool emits UNKNOWN_TOOL, answers the call with an error and continues', async () => {
    const p = fakeProvider([call('launch_rocket'), say('sorry')]);
    const r = await turn(inline(), { kind: 'message', text: 'hi' }, { providers: registryWith(p) });
    expect(shapeOf(r.events)).toEqual(['chat.usage_delta', 'chat.error', 'chat.text*', 'chat.text!', 'chat.usage_delta']);
    expect(r.events[1].data).toEqual({ error_code: 'UNKNOWN_TOOL', message: 'Agent "a" called unknown tool "launch_rocket"' });
    expect(p.requests[1].messages[2]).toMatchObject({ role: 'tool', tool_name: 'launch_rocket', content: '{"error":"unknown tool \\"launch_rocket\\""}' });
    expect(r.status).toBe('completed');
  });

  it('two awaiting calls: the first answer keeps the turn awaiting, the second lets the agent go on', async () => {
    const p = fakeProvider([
      () => [
        { type: 'tool-call', id: 'x', name: 'confirm', args: { n: 1 } },
        { type: 'tool-call', id: 'x', name: 'confirm', args: { n: 2 } },
        finish('tool-calls'),
      ],
      say('both answered'),
    ]);
    const providers = registryWith(p);
    const w = inline();
    const t1 = await turn(w, { kind: 'message', text: 'hi' }, { providers, turnId: 't1' });
    expect(t1.status).toBe('awaiting_input');
    expect(t1.awaiting.map((a) => a.event_id)).toEqual(['t1:tc1', 't1:tc2']);
    expect(new Set(t1.awaiting.map((a) => a.tool_call_id)).size).toBe(2); // ours, though the model repeated "x"
    const [first, second] = t1.awaiting;
    const t2 = await turn(w, { kind: 'tool_response', ...first, response: { ok: true } }, { providers, state: t1.state, turnId: 't2' });
    expect(t2.status).toBe('awaiting_input');
    expect(t2.awaiting).toEqual([second]);
    expect(t2.events).toEqual([]);
    const t3 = await turn(w, { kind: 'tool_response', ...second, tool_call_id: 'unknown-but-event-id-matches', response: { ok: false } }, { providers, state: t2.state, turnId: 't3' });
    expect(t3.status).toBe('completed');
    expect(messagesOf(t3.events).map((m) => m.text)).toEqual(['both answered']);
    expect(p.requests).toHaveLength(2);
  });

  it('only the first handoff of a reply counts', async () => {
    const p = fakeProvider([
      () => [
        { type: 'tool-call', id: '1', name: 'transfer_to_b', args: {} },
        { type: 'tool-call', id: '2', name: 'transfer_to_b', args: {} },
        finish('tool-calls'),
      ],
      say('B here'),
    ]);
    const r = await turn(inline(), { kind: 'message', text: 'hi' }, { providers: registryWith(p) });
    expect(r.events.filter((e) => e.type === 'chat.custom_event')).toHaveLength(1);
    expect(p.requests[1].system).toBe('Agent B.');
    expect(r.state.current_agent).toBe('b');
  });

  it('a provider error emits MODEL_ERROR without secrets and fails, closing the partial message', async () => {
    const p = fakeProvider([]);
    p.stream = async function* () {
      yield { type: 'text-delta', text: 'Partial ' };
      throw new ModelProviderError('401 Unauthorized: bad key sk-live-abcdef1234567890', 401);
    };
    const r = await turn(inline(), { kind: 'message', text: 'hi' }, { providers: registryWith(p), turnId: 'e' });
    expect(shapeOf(r.events)).toEqual(['chat.text*', 'chat.text!', 'chat.error']);
    const err = r.events[2].data;
    expect(err.error_code).toBe('MODEL_ERROR');
    expect(err.message).toContain('401 Unauthorized');
    expect(err.message).not.toContain('sk-live');
    expect(r.status).toBe('failed');
    expect(r.error).toBe(err.message);
    expect(r.state.messages[1]).toEqual({ role: 'assistant', agent: 'a', content: 'Partial ' });
  });

  it('an unconfigured provider fails with the variable to set', async () => {
    const w = inline({}, { model: { provider: 'openai-compatible' } });
    const r = await turn(w, { kind: 'message', text: 'hi' }, { providers: createProviderRegistry({}) });
    expect(r.status).toBe('failed');
    expect(r.events).toEqual([{ type: 'chat.error', data: { error_code: 'MODEL_ERROR', message: expect.stringContaining('OPENAI_BASE_URL') } }]);
  });

  it('a blueprint agent gets its prompt from resolveBlueprint, and fails clearly without one', async () => {
    const w = inline({}, { system_prompt: undefined, blueprint: 'support-v2' });
    const p = fakeProvider([say('ok')]);
    const ok = await turn(w, { kind: 'message', text: 'hi' }, {
      providers: registryWith(p),
      resolveBlueprint: async (name) => `Blueprint ${name} for {{context.company}}.`,
      context: { company: 'Acme' },
    });
    expect(ok.status).toBe('completed');
    expect(p.requests[0].system).toBe('Blueprint support-v2 for Acme.');

    const missing = await turn(w, { kind: 'message', text: 'hi' }, { providers: registryWith(p) });
    expect(missing.status).toBe('failed');
    expect(missing.events).toEqual([
      { type: 'chat.error', data: { error_code: 'BLUEPRINT_ERROR', message: 'Agent "a" uses blueprint "support-v2" but this runtime has no blueprint source' } },
    ]);

    const broken = await turn(w, { kind: 'message', text: 'hi' }, {
      providers: registryWith(p),
      resolveBlueprint: async () => {
        throw new Error('agent-manager unreachable');
      },
    });
    expect(broken.status).toBe('failed');
    expect(broken.error).toContain('agent-manager unreachable');
  });

  it('stops after max_turn_steps model calls', async () => {
    const p = fakeProvider([call('show_card')]);
    const r = await turn(inline({ max_turn_steps: 3 }), { kind: 'message', text: 'hi' }, { providers: registryWith(p) });
    expect(p.requests).toHaveLength(3);
    expect(r.status).toBe('failed');
    expect(r.events[r.events.length - 1]).toEqual({ type: 'chat.error', data: { error_code: 'MAX_TURN_STEPS', message: expect.stringContaining('3 model calls') } });
  });

  it('an already aborted signal stops before calling the model', async () => {
    const p = fakeProvider([say('never')]);
    const ac = new AbortController();
    ac.abort();
    const r = await turn(inline(), { kind: 'message', text: 'hi' }, { providers: registryWith(p), signal: ac.signal });
    expect(r.status).toBe('stopped');
    expect(p.requests).toHaveLength(0);
    expect(r.events).toEqual([]);
    expect(r.state.messages).toEqual([{ role: 'user', content: 'hi' }]);
  });

  it('context defaults of the workflow apply when the caller gives none', async () => {
    const w = inline({ context_variables: { company: { default: 'DefaultCo' } } });
    const p = fakeProvider([say('ok')]);
    await turn(w, { kind: 'message', text: 'hi' }, { providers: registryWith(p) });
    await turn(w, { kind: 'message', text: 'hi' }, { providers: registryWith(p), context: { company: 'Given' } });
    expect(p.requests.map((r) => r.system)).toEqual(['Agent A for DefaultCo.', 'Agent A for Given.']);
  });

  it('a rejected emit rejects the turn and closes the provider stream', async () => {
    let closed = false;
    const p = fakeProvider([]);
    p.stream = async function* () {
      try {
        yield { type: 'text-delta', text: 'a ' };
        yield { type: 'text-delta', text: 'b ' };
        yield finish();
      } finally {
        closed = true;
      }
    };
    const w = inline();
    await expect(
      runTurn({
        workflow: w,
        state: { current_agent: 'a', messages: [], turns: 0, usage: { prompt_tokens: 0, completion_tokens: 0, total_tokens: 0 } },
        context: {},
        input: { kind: 'message', text: 'hi' },
        turnId: 'x',
        signal: new AbortController().signal,
        providers: registryWith(p),
        emit: async () => {
          throw new Error('store down');
        },
      }),
    ).rejects.toThrow('store down');
    expect(closed).toBe(true);
  });
});

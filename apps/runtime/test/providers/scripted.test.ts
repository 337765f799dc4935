import type { ScriptedReply } from '@tessera/contracts';
import { isAbortError } from '../../src/providers/errors';
import { createScriptedProvider } from '../../src/providers/scripted';
import type { ModelChunk, ModelRequest } from '../../src/providers/types';

const provider = createScriptedProvider();

/** A request as the engine makes it; `script` and `tokenDelayMs` go where the engine puts them, the agent's declared model block. */
const req = ({ script, tokenDelayMs, ...over }: Partial<ModelRequest> & { script?: ScriptedReply[]; tokenDelayMs?: number } = {}): ModelRequest => ({
  model: 'scripted',
  system: 'Be nice.',
  messages: [{ role: 'user', content: 'Hello there' }],
  tools: [],
  declared: { provider: 'scripted', script, token_delay_ms: tokenDelayMs },
  ...over,
});

async function run(r: ModelRequest, signal = new AbortController().signal): Promise<ModelChunk[]> {
  const out: ModelChunk[] = [];
  for await (const c of provider.stream(r, signal)) out.push(c);
  return out;
}
const textOf = (chunks: ModelChunk[]) =>
  chunks
    .filter((c) => c.type === 'text-delta')
    .map((c) => (c as { text: string }).text)
    .join('');

describe('scripted provider', () => {
  it('echoes the last user message word by word when there is no script', async () => {
    const chunks = await run(req());
    expect(chunks).toEqual([
      { type: 'text-delta', text: 'You ' },
      { type: 'text-delta', text: 'said: ' },
      { type: 'text-delta', text: 'Hello ' },
      { type: 'text-delta', text: 'there' },
      // As a model server counts, about 4 characters a token and 3 of framing per message:
      // prompt: reply priming 3 + "Be nice." (3 + 2) + "Hello there" (3 + 3) = 14; completion: "You said: Hello there" = 6
      { type: 'finish', reason: 'stop', usage: { prompt_tokens: 14, completion_tokens: 6, total_tokens: 20 } },
    ]);
    expect(provider.deterministic).toBe(true);
  });

  it('keeps every whitespace of the text in the deltas', async () => {
    const text = '  Two  spaces,\nnew line\tand tab. ';
    const chunks = await run(req({ script: [{ text }] }));
    expect(textOf(chunks)).toBe(text);
    expect(chunks[0]).toEqual({ type: 'text-delta', text: '  Two  ' });
  });

  it('picks the first entry whose `when` is in the last user message, case-insensitively', async () => {
    const script: ScriptedReply[] = [{ when: 'BILLING', text: 'billing' }, { when: 'hello', text: 'greeting' }, { text: 'fallback' }];
    expect(textOf(await run(req({ script, messages: [{ role: 'user', content: 'a Billing question' }] })))).toBe('billing');
    expect(textOf(await run(req({ script })))).toBe('greeting');
    expect(textOf(await run(req({ script, messages: [{ role: 'user', content: 'other' }] })))).toBe('fallback');
  });

  it('after a tool result prefers the @tool: entry and fills in the response', async () => {
    const script: ScriptedReply[] = [
      { when: '@tool:ask_user', text: 'You answered {{last_tool_response.answer}} ({{last_tool_response}})' },
      { text: 'Asking.', tool_calls: [{ tool: 'ask_user', args: { question: 'About "{{last_user_message}}"?' } }] },
    ];
    const first = await run(req({ script }));
    expect(first).toEqual([
      { type: 'text-delta', text: 'Asking.' },
      { type: 'tool-call', id: 'call_1_1', name: 'ask_user', args: { question: 'About "Hello there"?' } },
      // completion: "Asking." (2) + the call: framing 3 + "ask_user" (2) + '{"question":"About \"Hello there\"?"}' (37 characters: 10)
      { type: 'finish', reason: 'tool-calls', usage: { prompt_tokens: 14, completion_tokens: 17, total_tokens: 31 } },
    ]);
    const after = await run(
      req({
        script,
        messages: [
          { role: 'user', content: 'Hello there' },
          { role: 'assistant', content: 'Asking.', tool_calls: [{ id: 'call_1_1', name: 'ask_user', args: {} }] },
          { role: 'tool', tool_call_id: 'call_1_1', tool_name: 'ask_user', content: '{"answer":"blue"}' },
        ],
      }),
    );
    expect(textOf(after)).toBe('You answered blue ({"answer":"blue"})');
  });

  it('after a tool result with no @tool: entry, never repeats an entry that calls tools', async () => {
    const script: ScriptedReply[] = [{ text: 'Asking.', tool_calls: [{ tool: 'show', args: {} }] }];
    const messages: ModelRequest['messages'] = [
      { role: 'user', content: 'hi' },
      { role: 'assistant', content: 'Asking.', tool_calls: [{ id: 'c', name: 'show', args: {} }] },
      { role: 'tool', tool_call_id: 'c', tool_name: 'show', content: 'displayed' },
    ];
    const chunks = await run(req({ script, messages }));
    expect(chunks).toEqual([{ type: 'finish', reason: 'stop', usage: expect.objectContaining({ completion_tokens: 0 }) }]);
  });

  it('renders context values, with fallbacks, never "undefined"', async () => {
    const script: ScriptedReply[] = [{ text: 'Tier {{context.user_tier}}/{{context.plan|free}}/{{context.missing}}/{{context.n}}.' }];
    expect(textOf(await run(req({ script, context: { user_tier: 'pro', n: 3 } })))).toBe('Tier pro/free//3.');
    expect(textOf(await run(req({ script })))).toBe('Tier /free//.');
  });

  it('is deterministic', async () => {
    const r = req({ script: [{ text: 'One two three', tool_calls: [{ tool: 't', args: { a: 1 } }] }] });
    expect(await run(r)).toEqual(await run(r));
  });

  it('paces words with tokenDelayMs and stops promptly on abort with an AbortError', async () => {
    const ac = new AbortController();
    const r = req({ script: [{ text: 'one two three four five six seven eight nine ten' }], tokenDelayMs: 200 });
    const seen: string[] = [];
    const started = Date.now();
    let abortedAt = 0;
    const err = await (async () => {
      for await (const c of provider.stream(r, ac.signal)) {
        if (c.type === 'text-delta') seen.push(c.text);
        if (seen.length === 2 && !abortedAt) {
          abortedAt = Date.now();
          setTimeout(() => ac.abort(), 50);
        }
      }
    })().catch((e) => e);
    expect(isAbortError(err)).toBe(true);
    expect(seen).toEqual(['one ', 'two ']);
    expect(abortedAt - started).toBeGreaterThanOrEqual(190); // one pause between the two words
    expect(Date.now() - abortedAt).toBeLessThan(150); // aborted 50 ms later, not at the next 200 ms tick
  });

  it('throws an AbortError at once when the signal is already aborted', async () => {
    const ac = new AbortController();
    ac.abort();
    await expect(run(req(), ac.signal)).rejects.toMatchObject({ name: 'AbortError' });
  });

  it('without a delay streams with no timers: many whole replies finish before the event loop turns', async () => {
    const r = req({ script: [{ text: 'w '.repeat(20).trim() }] });
    const signal = new AbortController().signal;
    let turned = false;
    setImmediate(() => (turned = true));
    let chunks = 0;
    for (let i = 0; i < 100; i++) for await (const c of provider.stream(r, signal)) if (c.type === 'text-delta') chunks++;
    expect(chunks).toBe(2000);
    expect(turned).toBe(false);
  });
});

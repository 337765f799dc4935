import { createPricer } from './pricing';

/**
 * Each provider's usage as the runtime's provider tests read it from the wire
 * (apps/runtime/test/providers: openai-compatible.test.ts, anthropic.test.ts), priced by hand from
 * the providers' published prices, USD per million tokens.
 */
const AT = new Date('2026-06-01T00:00:00Z');
const M = 1_000_000;
const within1pct = (got: number | null, want: number) => {
  expect(got).not.toBeNull();
  expect(Math.abs(got! - want) / want).toBeLessThan(0.01);
};

describe('pricing', () => {
  const pricer = createPricer();

  it('prices OpenAI cached input at the cached rate (gpt-4o: $2.50 input, $1.25 cached, $10 output)', () => {
    // prompt_tokens 2006 of which prompt_tokens_details.cached_tokens 1920; completion 300
    const hand = ((2006 - 1920) * 2.5 + 1920 * 1.25 + 300 * 10) / M;
    within1pct(pricer.costOf({ input: 2006, cacheRead: 1920, output: 300, reasoning: 0, model: 'gpt-4o', provider: 'openai-compatible' }, AT), hand);
  });

  it('prices Anthropic cache writes and reads (claude-sonnet-4: $3 input, $3.75 cache write, $0.30 cache read, $15 output)', () => {
    // input_tokens 21, cache_creation_input_tokens 1880, cache_read_input_tokens 3200, output_tokens 412
    const hand = (21 * 3 + 1880 * 3.75 + 3200 * 0.3 + 412 * 15) / M;
    within1pct(pricer.costOf({ input: 21 + 1880 + 3200, cacheWrite: 1880, cacheRead: 3200, output: 412, model: 'claude-sonnet-4-20250514', provider: 'anthropic' }, AT), hand);
  });

  it('prices a reasoning model’s thinking as output (o3-mini: $1.10 input, $4.40 output)', () => {
    // completion_tokens 1186 of which completion_tokens_details.reasoning_tokens 1024
    const hand = (75 * 1.1 + 1186 * 4.4) / M;
    within1pct(pricer.costOf({ input: 75, cacheRead: 0, output: 1186, reasoning: 1024, model: 'o3-mini', provider: 'openai-compatible' }, AT), hand);
  });

  it('prices an unknown model as unknown, never as free', () => {
    expect(pricer.costOf({ input: 12, output: 5, model: 'llama3.2', provider: 'openai-compatible' }, AT)).toBeNull();
    expect(pricer.costOf({ input: 12, output: 5, model: 'scripted', provider: 'scripted' }, AT)).toBeNull();
    expect(pricer.costOf({ input: 12, output: 5, model: null }, AT)).toBeNull();
    expect(pricer.costOf({ input: 12, output: 5, model: '  ' }, AT)).toBeNull();
  });

  it('takes a provider name the price table does not know as no provider: the model decides', () => {
    within1pct(pricer.costOf({ input: 1000, output: 100, model: 'gpt-4o', provider: 'my-gateway' }, AT), (1000 * 2.5 + 100 * 10) / M);
  });

  it('prices usage that does not add up (more cache reads than input) as unknown', () => {
    expect(pricer.costOf({ input: 10, cacheRead: 500, output: 1, model: 'gpt-4o' }, AT)).toBeNull();
  });

  it('lets an override win over the table and price a model the table does not know; cache prices default to input', () => {
    const p = createPricer({ 'gpt-4o': { input: 1, output: 2 }, scripted: { input: 0.1, output: 0.2, cache_read: 0.01 } });
    within1pct(p.costOf({ input: 1000, cacheRead: 400, output: 100, model: 'gpt-4o' }, AT), (1000 * 1 + 100 * 2) / M);
    within1pct(p.costOf({ input: 1000, cacheRead: 400, output: 100, model: 'scripted', provider: 'scripted' }, AT), (600 * 0.1 + 400 * 0.01 + 100 * 0.2) / M);
    // Exactly the model named: a near name is not it.
    expect(p.costOf({ input: 1, output: 1, model: 'scripted-2' }, AT)).toBeNull();
  });
});

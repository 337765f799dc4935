import { createProviderRegistry } from '../../src/providers/registry';

describe('provider registry', () => {
  it('always has the scripted provider', () => {
    const reg = createProviderRegistry({});
    expect(reg.get('scripted').name).toBe('scripted');
    expect(reg.get('scripted')).toBe(reg.get('scripted'));
    expect(reg.defaultModel('scripted')).toBe('scripted');
  });

  it('names the variables to set for an unconfigured provider', () => {
    const reg = createProviderRegistry({});
    expect(() => reg.get('openai-compatible')).toThrow(/OPENAI_BASE_URL/);
    expect(() => reg.defaultModel('openai-compatible')).toThrow(/OPENAI_BASE_URL/);
    expect(() => reg.get('anthropic')).toThrow(/ANTHROPIC_API_KEY/);
  });

  it('builds configured providers once, with their default models', () => {
    const reg = createProviderRegistry({
      openai: { baseURL: 'http://127.0.0.1:1/v1', model: 'llama3' },
      anthropic: { apiKey: 'k', model: 'claude-x' },
    });
    expect(reg.get('openai-compatible').name).toBe('openai-compatible');
    expect(reg.get('openai-compatible')).toBe(reg.get('openai-compatible'));
    expect(reg.defaultModel('openai-compatible')).toBe('llama3');
    expect(reg.get('anthropic').deterministic).toBe(false);
    expect(reg.defaultModel('anthropic')).toBe('claude-x');
  });
});

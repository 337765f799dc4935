import { ConfigError } from '@tessera/kit';
import { loadObservabilityConfig } from './config';

describe('observability config', () => {
  it('has local defaults: its own schema, the runtime’s BullMQ prefix, 30 days of retention', () => {
    const c = loadObservabilityConfig({});
    expect(c.PORT).toBe(8765);
    expect(new URL(c.DATABASE_URL).searchParams.get('schema')).toBe('observability');
    expect(c.BULL_PREFIX).toBe('tessera');
    expect(c.RETENTION_DAYS).toBe(30);
    expect(c.INGEST_KEYS.size).toBe(0);
  });

  it('reads ingest keys per app', () => {
    const c = loadObservabilityConfig({ INGEST_KEYS: 'app1:key-one-0123456789abc, app2:key-two:with-colon-0123' });
    expect([...c.INGEST_KEYS]).toEqual([
      ['key-one-0123456789abc', 'app1'],
      ['key-two:with-colon-0123', 'app2'],
    ]);
  });

  it('refuses a malformed or short key without printing it', () => {
    for (const bad of ['app1', ':key-without-app-0123456', 'app1:short']) {
      let error: unknown;
      try {
        loadObservabilityConfig({ INGEST_KEYS: bad });
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(ConfigError);
      expect((error as Error).message).toMatch(/INGEST_KEYS: entry 1 must be/);
      expect((error as Error).message).not.toContain(bad.split(':').pop());
    }
  });

  it('reads price overrides per model, and refuses a bad one naming the variable and what is wrong', () => {
    expect(loadObservabilityConfig({}).PRICE_OVERRIDES).toEqual({});
    const c = loadObservabilityConfig({ PRICE_OVERRIDES: '{"my-model": {"input": 0.5, "output": 1.5, "cache_read": 0.05}}' });
    expect(c.PRICE_OVERRIDES).toEqual({ 'my-model': { input: 0.5, output: 1.5, cache_read: 0.05 } });
    const refusal = (v: string) => {
      try {
        loadObservabilityConfig({ PRICE_OVERRIDES: v });
      } catch (e) {
        expect(e).toBeInstanceOf(ConfigError);
        return (e as Error).message;
      }
      throw new Error(`${v} was taken`);
    };
    expect(refusal('{"m": {"input": 1')).toMatch(/PRICE_OVERRIDES: not JSON/);
    expect(refusal('{"m": {"input": -1, "output": 1}}')).toMatch(/PRICE_OVERRIDES\.m\.input/);
    expect(refusal('{"m": {"input": 1}}')).toMatch(/PRICE_OVERRIDES\.m\.output/);
    expect(refusal('{"m": {"input": 1, "output": 1, "cached": 1}}')).toMatch(/PRICE_OVERRIDES\.m.*cached/);
    expect(refusal('[1]')).toMatch(/PRICE_OVERRIDES/);
  });
});

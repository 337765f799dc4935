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
});

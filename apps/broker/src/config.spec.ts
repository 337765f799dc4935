import { ConfigError } from '@tessera/kit';
import { loadBrokerConfig } from './config';

describe('broker config', () => {
  it('has local defaults', () => {
    const c = loadBrokerConfig({});
    expect(c).toMatchObject({ PORT: 8001, RUNTIME_URL: 'http://127.0.0.1:8000', PUBLIC_WS_URL: 'ws://localhost:8080', APP_ID: 'demo-app', RUNTIME_TIMEOUT_MS: 10_000 });
    expect(c.CONTEXT_SOURCE_URL).toBeUndefined();
  });

  it('refuses a public URL that is not a WebSocket URL and an app id with a slash', () => {
    expect(() => loadBrokerConfig({ PUBLIC_WS_URL: 'http://x' })).toThrow(ConfigError);
    expect(() => loadBrokerConfig({ APP_ID: 'a/b' })).toThrow(/APP_ID/);
    expect(loadBrokerConfig({ PUBLIC_WS_URL: 'wss://api.example.com/' }).PUBLIC_WS_URL).toBe('wss://api.example.com');
  });
});

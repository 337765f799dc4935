import { ConfigError } from '@tessera/kit';
import { loadGatewayConfig, parseBytes, serviceInstances } from './config';

describe('gateway config', () => {
  it('has local defaults for every service', () => {
    const c = loadGatewayConfig({});
    expect(c.PORT).toBe(8080);
    expect(c.RUNTIME_URL).toBe('http://127.0.0.1:8000');
    expect(c.BROKER_URL).toBe('http://127.0.0.1:8001');
    expect(c.BRIDGE_URL).toBe('http://127.0.0.1:3000');
    expect(c.UPLOAD_BODY_LIMIT).toBe(25 * 1024 * 1024);
    expect(c.OBSERVABILITY_BODY_LIMIT).toBe(8 * 1024 * 1024);
    expect(c.RATE_LIMIT_PER_MIN).toBe(600);
  });

  it('takes `off` for a service that is not deployed, and refuses nonsense', () => {
    expect(loadGatewayConfig({ BRIDGE_URL: 'off' }).BRIDGE_URL).toBe('off');
    expect(() => loadGatewayConfig({ BRIDGE_URL: 'bridge' })).toThrow(ConfigError);
    expect(() => loadGatewayConfig({ UPLOAD_BODY_LIMIT: 'lots' })).toThrow(/UPLOAD_BODY_LIMIT/);
    expect(() => loadGatewayConfig({ BODY_LIMIT: 'lots' })).toThrow(/BODY_LIMIT/);
  });

  it('takes several instances of a service, separated by commas', () => {
    const c = loadGatewayConfig({ OBSERVABILITY_URL: 'http://observability-1:8765, http://observability-2:8765' });
    expect(serviceInstances(c.OBSERVABILITY_URL).map((u) => u.origin)).toEqual(['http://observability-1:8765', 'http://observability-2:8765']);
    expect(serviceInstances('off')).toEqual([]);
    for (const bad of ['http://a:1,', 'http://a:1,,http://b:2', 'http://a:1,off', 'ftp://a:1', 'http://a:1,b:2']) {
      expect(() => loadGatewayConfig({ OBSERVABILITY_URL: bad })).toThrow(/OBSERVABILITY_URL/);
    }
  });

  it('reads sizes the way express does', () => {
    expect(parseBytes('1mb')).toBe(1048576);
    expect(parseBytes('512KB')).toBe(524288);
    expect(parseBytes('100')).toBe(100);
    expect(parseBytes('1.5kb')).toBe(1536);
    expect(parseBytes('big')).toBeNull();
  });
});

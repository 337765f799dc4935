import express from 'express';
import { buildOpenApi } from '@tessera/contracts';
import { call, closedPort } from '@tessera/kit/testing';
import { startStandIn, startTestGateway, token, type StandIn, type TestGateway } from './support';

/** A stand-in service with a /health and an /openapi.json of its own. */
async function service(paths: string[], health: 'ok' | 'degraded' = 'ok'): Promise<StandIn> {
  const app = express();
  const doc = buildOpenApi({
    title: 'stand-in',
    version: '1',
    routes: paths.map((path) => ({ method: 'get' as const, path, summary: path, access: 'user' as const, responses: { 200: { description: 'ok' } } })),
  });
  app.get('/health', (_req, res) => res.json({ status: health, service: 'stand-in', uptime_s: 1 }));
  app.get('/openapi.json', (_req, res) => res.json(doc));
  app.get('/api/workflows', (_req, res) => res.json({}));
  return startStandIn(app);
}

describe('gateway /ready and merged /openapi.json', () => {
  let runtime: StandIn;
  let broker: StandIn;
  let agents: StandIn;
  let gw: TestGateway;
  let docsPort: number;

  beforeAll(async () => {
    runtime = await service(['/api/workflows', '/api/chats/{app_id}/{workflow_name}/start', '/health', '/openapi.json']);
    broker = await service(['/api/mozaiks/session', '/api/mozaiks/sessions'], 'degraded');
    agents = await service(['/agents', '/agents/{name}', '/health']);
    docsPort = await closedPort();
    gw = await startTestGateway({
      RUNTIME_URL: runtime.url,
      BROKER_URL: broker.url,
      AGENTS_URL: agents.url,
      DOCUMENTS_URL: `http://127.0.0.1:${docsPort}`,
      OPENAPI_CACHE_MS: '60000',
    });
  });

  afterAll(async () => {
    await gw.stop();
    await Promise.all([runtime.close(), broker.close(), agents.close()]);
  });

  it('/health is the gateway alone', async () => {
    const r = await call(gw.url, 'GET', '/health');
    expect(r.status).toBe(200);
    expect(r.json).toMatchObject({ status: 'ok', service: 'gateway' });
  });

  it('/ready reports each service, degraded (200) when one is down or degraded', async () => {
    const r = await call(gw.url, 'GET', '/ready');
    expect(r.status).toBe(200);
    expect(r.json.status).toBe('degraded');
    expect(r.json.checks.redis.status).toBe('ok');
    expect(r.json.services.runtime).toMatchObject({ status: 'ok', url: runtime.url });
    expect(r.json.services.broker.status).toBe('degraded');
    expect(r.json.services.agents.status).toBe('ok');
    expect(r.json.services.documents).toMatchObject({ status: 'down', error: 'ECONNREFUSED' });
    expect(r.json.disabled.sort()).toEqual(['bridge', 'observability']);
    expect(r.ms).toBeLessThan(2500);
  });

  it('/ready is 503 when the gateway’s Redis is down, while proxying goes on (rate limit fails open)', async () => {
    const lonely = await startTestGateway({ RUNTIME_URL: runtime.url, BROKER_URL: 'off', REDIS_URL: `redis://127.0.0.1:${await closedPort()}` }, { redisAway: true });
    try {
      const r = await call(lonely.url, 'GET', '/ready');
      expect(r.status).toBe(503);
      expect(r.json.status).toBe('down');
      expect(r.json.checks.redis.status).toBe('down');
      const proxied = await call(lonely.url, 'GET', '/api/workflows', { token: await token('alice') });
      expect(proxied.status).toBe(200);
    } finally {
      await lonely.stop();
    }
  });

  it('/openapi.json merges every service under its public paths and lists the missing ones', async () => {
    const r = await call(gw.url, 'GET', '/openapi.json');
    expect(r.status).toBe(200);
    const paths = Object.keys(r.json.paths).sort();
    expect(paths).toEqual(
      [
        '/health',
        '/ready',
        '/openapi.json',
        '/asyncapi.json',
        '/metrics',
        '/api/workflows',
        '/api/chats/{app_id}/{workflow_name}/start',
        '/api/mozaiks/session',
        '/api/mozaiks/sessions',
        '/api/agents',
        '/api/agents/{name}',
      ].sort(),
    );
    // The gateway's own /health is the one listed, not the runtime's.
    expect(r.json.paths['/health'].get.summary).toBe('Liveness of the gateway');
    expect(r.json['x-unavailable']).toEqual([{ service: 'documents', url: `http://127.0.0.1:${docsPort}`, error: 'ECONNREFUSED' }]);
  });

  it('serves the merged document from its cache', async () => {
    await call(gw.url, 'GET', '/openapi.json');
    await agents.close();
    const r = await call(gw.url, 'GET', '/openapi.json');
    // Cached briefly (a shorter while because documents was missing), then rebuilt.
    expect(Object.keys(r.json.paths)).toContain('/api/agents/{name}');
    await new Promise((res) => setTimeout(res, 2_100));
    const later = await call(gw.url, 'GET', '/openapi.json');
    expect(Object.keys(later.json.paths)).not.toContain('/api/agents/{name}');
    expect(later.json['x-unavailable'].map((u: { service: string }) => u.service).sort()).toEqual(['agents', 'documents']);
  });
});

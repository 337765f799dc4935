import { createHash } from 'node:crypto';
import express from 'express';
import WebSocket from 'ws';
import { buildOpenApi } from '@tessera/contracts';
import { call, closedPort } from '@tessera/kit/testing';
import { startStandIn, startTestGateway, token, type StandIn, type TestGateway } from './support';

/**
 * A service that runs as several instances (`OBSERVABILITY_URL=http://a,http://b`): requests and
 * upgrades are spread over them, one that is stopped costs clients nothing, /ready reports each.
 */

/** A stand-in instance that names itself in every answer (HTTP body and first socket message). */
async function instance(name: string, port?: number): Promise<StandIn> {
  const app = express();
  app.get('/health', (_req, res) => res.json({ status: 'ok', service: name, uptime_s: 1 }));
  app.get('/openapi.json', (_req, res) =>
    res.json(buildOpenApi({ title: name, version: '1', routes: [{ method: 'get', path: '/sessions', access: 'public', summary: `sessions of ${name}`, responses: { 200: { description: 'ok' } } }] })),
  );
  app.get('/sessions', (_req, res) => res.json({ instance: name }));
  app.post('/events', (req, res) => {
    const hash = createHash('sha256');
    let bytes = 0;
    req.on('data', (c: Buffer) => ((bytes += c.length), hash.update(c)));
    req.on('end', () => res.json({ instance: name, bytes, sha256: hash.digest('hex') }));
  });
  return startStandIn(app, (wss) => wss.on('connection', (ws) => ws.send(name)), port);
}

/** Opens a socket through the gateway and resolves with the instance that greeted it. */
function greeting(url: string): Promise<{ ws: WebSocket; from: string }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    ws.once('message', (d) => resolve({ ws, from: d.toString() }));
    ws.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
    ws.once('error', reject);
  });
}

const counts = (names: string[]) => names.reduce<Record<string, number>>((m, n) => ((m[n] = (m[n] ?? 0) + 1), m), {});

describe('gateway: several instances of a service', () => {
  let a: StandIn;
  let b: StandIn;
  let gw: TestGateway;
  let operator: string;
  const sessions = async () => (await call(gw.url, 'GET', '/api/observability/sessions', { token: operator })).json?.instance as string;
  /** /ready's body; it answers 200 as long as one instance is up. */
  const ready = async () => {
    const r = await call(gw.url, 'GET', '/ready');
    expect(r.status).toBe(200);
    return r.json;
  };

  beforeAll(async () => {
    [a, b] = await Promise.all([instance('a'), instance('b')]);
    gw = await startTestGateway({
      RUNTIME_URL: 'off',
      BROKER_URL: 'off',
      OBSERVABILITY_URL: `${a.url}, ${b.url}`,
      UPSTREAM_CONNECT_TIMEOUT_MS: '500',
      OPENAPI_CACHE_MS: '0',
    });
    operator = await token('op', { roles: ['operator'] });
  });

  afterAll(async () => {
    await gw.stop();
    await Promise.all([a.close(), b.close()]);
  });

  it('spreads HTTP requests over the instances in turn', async () => {
    const seen: string[] = [];
    for (let i = 0; i < 10; i++) seen.push(await sessions());
    expect(counts(seen)).toEqual({ a: 5, b: 5 });
    // In turn, not at random: no instance answers twice in a row.
    for (let i = 1; i < seen.length; i++) expect(seen[i]).not.toBe(seen[i - 1]);
  });

  it('spreads WebSocket upgrades over the instances', async () => {
    const opened = await Promise.all(Array.from({ length: 6 }, () => greeting(`${gw.url.replace('http', 'ws')}/api/observability/ws?access_token=${operator}`)));
    expect(counts(opened.map((o) => o.from))).toEqual({ a: 3, b: 3 });
    opened.forEach((o) => o.ws.close());
  });

  it('/ready reports each instance', async () => {
    const { status, services } = await ready();
    expect(status).toBe('ok');
    expect(services.observability).toMatchObject({
      status: 'ok',
      url: `${a.url},${b.url}`,
      instances: [
        { status: 'ok', url: a.url },
        { status: 'ok', url: b.url },
      ],
    });
  });

  describe('with one instance stopped', () => {
    const port = () => Number(new URL(b.url).port);
    beforeAll(async () => b.close());
    afterAll(async () => {
      b = await instance('b', port());
    });

    it('every upgrade is taken by the other (the first to meet the stopped one is passed on)', async () => {
      const opened = await Promise.all(Array.from({ length: 4 }, () => greeting(`${gw.url.replace('http', 'ws')}/api/observability/ws?access_token=${operator}`)));
      expect(opened.map((o) => o.from)).toEqual(['a', 'a', 'a', 'a']);
      opened.forEach((o) => o.ws.close());
    });

    it('every request is answered by the other, bodies intact', async () => {
      const seen: string[] = [];
      for (let i = 0; i < 10; i++) seen.push(await sessions());
      expect(seen).toEqual(Array(10).fill('a'));
      // A request with a body whose first instance refused: the next one gets the whole body.
      const body = Buffer.alloc(300_000, 'x');
      for (let i = 0; i < 4; i++) {
        const r = await call(gw.url, 'POST', '/api/observability/events', { raw: body, headers: { 'content-type': 'application/json', 'content-length': String(body.length) } });
        expect(r.status).toBe(200);
        expect(r.json).toEqual({ instance: 'a', bytes: body.length, sha256: createHash('sha256').update(body).digest('hex') });
      }
    });

    it('/ready shows the stopped instance down and the service degraded, still 200', async () => {
      const { status, services } = await ready();
      expect(status).toBe('degraded');
      expect(services.observability).toMatchObject({
        status: 'degraded',
        error: '1 of 2 instances down',
        instances: [
          { status: 'ok', url: a.url },
          { status: 'down', url: b.url, error: 'ECONNREFUSED' },
        ],
      });
    });

    it('the merged OpenAPI comes from the instance that answers', async () => {
      const r = await call(gw.url, 'GET', '/openapi.json');
      expect(r.json.paths['/api/observability/sessions'].get.summary).toBe('sessions of a');
      expect(r.json['x-unavailable']).toEqual([]);
    });
  });

  it('an instance that is back gets its share again', async () => {
    // The instance that refused is tried last for a short while (DOWN_FOR_MS), then in turn again.
    await new Promise((r) => setTimeout(r, 2_100));
    const seen: string[] = [];
    for (let i = 0; i < 6; i++) seen.push(await sessions());
    expect(counts(seen)).toEqual({ a: 3, b: 3 });
  });

  it('every instance down: 503 in the error shape, for requests and upgrades', async () => {
    const dead = await startTestGateway({
      RUNTIME_URL: 'off',
      BROKER_URL: 'off',
      OBSERVABILITY_URL: `http://127.0.0.1:${await closedPort()},http://127.0.0.1:${await closedPort()}`,
    });
    try {
      const r = await call(dead.url, 'GET', '/api/observability/sessions', { token: operator });
      expect(r.status).toBe(503);
      expect(r.json.error).toMatchObject({ code: 'SERVICE_UNAVAILABLE', details: { service: 'observability', reason: 'ECONNREFUSED' } });
      await expect(greeting(`${dead.url.replace('http', 'ws')}/api/observability/ws?access_token=${operator}`)).rejects.toThrow('HTTP 503');
      const ready = await call(dead.url, 'GET', '/ready');
      expect(ready.json.services.observability).toMatchObject({ status: 'down', error: 'every instance is down' });
      const doc = await call(dead.url, 'GET', '/openapi.json');
      expect(doc.json['x-unavailable']).toEqual([expect.objectContaining({ service: 'observability', error: 'ECONNREFUSED' })]);
    } finally {
      await dead.stop();
    }
  });
});

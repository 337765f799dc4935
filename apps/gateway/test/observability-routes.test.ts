import { createHash, randomBytes } from 'node:crypto';
import express from 'express';
import WebSocket from 'ws';
import { SERVICE_KEY_HEADER } from '@tessera/kit';
import { call } from '@tessera/kit/testing';
import { startStandIn, startTestGateway, token, type StandIn, type TestGateway } from './support';

/**
 * `/api/observability/*` as observability's clients use it: outside agents and OpenTelemetry
 * exporters post events and OTLP exports (up to ~8 MB, JSON or protobuf) with an ingest key and
 * no user token; operators read, stop and watch with a token; the live socket upgrades.
 */
describe('gateway: observability routes', () => {
  let obs: StandIn;
  let gw: TestGateway;
  let operator: string;
  const seen: { method: string; path: string; headers: Record<string, unknown>; bytes: number; sha256: string }[] = [];
  const wsPaths: string[] = [];

  beforeAll(async () => {
    const app = express();
    // Records what arrived, and answers as the service's ingest would.
    app.use((req, res) => {
      const hash = createHash('sha256');
      let bytes = 0;
      req.on('data', (c: Buffer) => ((bytes += c.length), hash.update(c)));
      req.on('end', () => {
        seen.push({ method: req.method, path: req.originalUrl, headers: { ...req.headers }, bytes, sha256: hash.digest('hex') });
        res.json({ ok: true, bytes });
      });
    });
    obs = await startStandIn(app, (wss) => wss.on('connection', (ws, req) => (wsPaths.push(req.url ?? ''), ws.send('live'))));
    gw = await startTestGateway({ RUNTIME_URL: 'off', BROKER_URL: 'off', OBSERVABILITY_URL: obs.url });
    operator = await token('op', { roles: ['operator'] });
  });

  afterAll(async () => {
    await gw.stop();
    await obs.close();
  });

  const last = () => seen[seen.length - 1];

  it('ingest passes without a token, with its ingest key; a client’s service key never does', async () => {
    const body = { events: [{ event_type: 'session_start', session_id: 's1', timestamp: new Date().toISOString() }] };
    const r = await call(gw.url, 'POST', '/api/observability/events', { body, headers: { 'x-ingest-key': 'ik-1', [SERVICE_KEY_HEADER]: 'forged' } });
    expect(r.status).toBe(200);
    expect(last()).toMatchObject({ method: 'POST', path: '/events' });
    expect(last().headers['x-ingest-key']).toBe('ik-1');
    expect(last().headers[SERVICE_KEY_HEADER]).toBeUndefined();
    expect(last().headers.authorization).toBeUndefined();
  });

  it.each([
    ['application/x-protobuf', 6 * 1024 * 1024],
    ['application/json', 7 * 1024 * 1024],
  ])('an OTLP export (%s, %i bytes) passes whole, without a token', async (type, size) => {
    const body = randomBytes(size);
    const r = await call(gw.url, 'POST', '/api/observability/v1/traces', { raw: body, headers: { 'content-type': type, 'content-length': String(size), 'x-ingest-key': 'ik-1' } });
    expect(r.status).toBe(200);
    expect(last()).toMatchObject({ method: 'POST', path: '/v1/traces', bytes: size, sha256: createHash('sha256').update(body).digest('hex') });
    expect(last().headers['content-type']).toBe(type);
  });

  it('an export over the ingest limit (8 MB) is a 413, whatever it declares', async () => {
    const before = seen.length;
    const big = Buffer.alloc(9 * 1024 * 1024, 1);
    const declared = await call(gw.url, 'POST', '/api/observability/v1/traces', { raw: big, headers: { 'content-type': 'application/x-protobuf', 'content-length': String(big.length) } });
    expect(declared.status).toBe(413);
    expect(declared.json.error.details).toEqual({ limit_bytes: 8 * 1024 * 1024 });
    const chunked = await call(gw.url, 'POST', '/api/observability/v1/traces', { raw: big, headers: { 'content-type': 'application/x-protobuf', 'transfer-encoding': 'chunked' } });
    expect(chunked.status).toBe(413);
    // Other observability routes keep the ordinary limit (1 MB).
    const patch = await call(gw.url, 'PATCH', '/api/observability/sessions/s1/metadata', { token: operator, raw: Buffer.alloc(2 * 1024 * 1024, 32), headers: { 'content-type': 'application/json', 'content-length': String(2 * 1024 * 1024) } });
    expect(patch.status).toBe(413);
    expect(seen.slice(before).filter((s) => s.bytes > 1024 * 1024)).toEqual([]);
  });

  it.each([
    ['GET', '/api/observability/sessions'],
    ['GET', '/api/observability/sessions/s1'],
    ['GET', '/api/observability/events/s1'],
    ['GET', '/api/observability/usage'],
    ['PATCH', '/api/observability/sessions/s1/metadata'],
    ['DELETE', '/api/observability/sessions/s1'],
    ['POST', '/api/observability/sessions/s1/stop'],
    ['GET', '/api/observability/events'],
    ['PUT', '/api/observability/v1/traces'],
  ])('%s %s needs a token', async (method, path) => {
    const before = seen.length;
    const r = await call(gw.url, method, path);
    expect(r.status).toBe(401);
    expect(seen.length).toBe(before);
    const ok = await call(gw.url, method, path, { token: operator });
    expect(ok.status).toBe(200);
    expect(last().path).toBe(path.replace('/api/observability', ''));
    expect(last().headers.authorization).toBe(`Bearer ${operator}`);
  });

  it('the live socket upgrades at /api/observability/ws with a token, and not without', async () => {
    const ws = new WebSocket(`${gw.url.replace('http', 'ws')}/api/observability/ws?access_token=${operator}`);
    const first = await new Promise<string>((resolve, reject) => {
      ws.once('message', (d) => resolve(d.toString()));
      ws.once('error', reject);
    });
    expect(first).toBe('live');
    expect(wsPaths[wsPaths.length - 1]).toBe(`/ws?access_token=${operator}`);
    ws.close();
    const refused = await new Promise<number>((resolve) => {
      const anon = new WebSocket(`${gw.url.replace('http', 'ws')}/api/observability/ws`);
      anon.once('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
      anon.once('error', () => resolve(-1));
    });
    expect(refused).toBe(401);
  });

  it('ingest is rate limited by address', async () => {
    const limited = await startTestGateway({ RUNTIME_URL: 'off', BROKER_URL: 'off', OBSERVABILITY_URL: obs.url, RATE_LIMIT_PER_MIN: '3' });
    try {
      const statuses: number[] = [];
      for (let i = 0; i < 5; i++) statuses.push((await call(limited.url, 'POST', '/api/observability/events', { body: { events: [] }, headers: { 'x-ingest-key': 'ik-1' } })).status);
      expect(statuses).toEqual([200, 200, 200, 429, 429]);
    } finally {
      await limited.stop();
    }
  });
});

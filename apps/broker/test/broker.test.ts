import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import express from 'express';
import { call, closedPort } from '@tessera/kit/testing';
import { logger, serve, SERVICE_KEY, startTestBroker, token, type TestBroker } from './support';

/**
 * The broker against a stand-in runtime that records what it is asked and answers as told:
 * what the broker sends (user, backend context, headers) and how it maps each failure.
 */
describe('broker with a stand-in runtime', () => {
  const received: { path: string; headers: Record<string, unknown>; body: any }[] = [];
  let runtime: Awaited<ReturnType<typeof serve>>;
  let hostApp: Awaited<ReturnType<typeof serve>>;
  let broker: TestBroker;
  let dir: string;
  const requests = new Set<string>();

  beforeAll(async () => {
    const rt = express();
    rt.use(express.json());
    rt.use((req, _res, next) => {
      received.push({ path: req.originalUrl, headers: { ...req.headers }, body: req.body });
      next();
    });
    rt.get('/health', (_req, res) => res.json({ status: 'ok' }));
    rt.post('/api/chat/start', async (req, res) => {
      const b = req.body;
      if (b.workflow_name === 'missing') return void res.status(404).json({ error: { code: 'NOT_FOUND', message: 'no workflow "missing"' } });
      if (b.workflow_name === 'limited') return void res.status(429).set('Retry-After', '7').json({ error: { code: 'RATE_LIMITED', message: 'slow down' } });
      if (b.workflow_name === 'boom') return void res.status(500).json({ error: { code: 'INTERNAL', message: 'TypeError: x is undefined', details: { stack: 'at secret.ts:1' } } });
      if (b.workflow_name === 'garbage') return void res.json({ nope: true });
      if (b.workflow_name === 'slow') await new Promise((r) => setTimeout(r, 1_000));
      const reused = b.client_request_id !== undefined && requests.has(b.client_request_id);
      if (b.client_request_id) requests.add(b.client_request_id);
      res.status(reused ? 200 : 201).json({ chat_id: 'chat-1', status: 'created', reused, websocket_url: `/ws/${b.workflow_name}/${b.app_id}/chat-1/${b.user_id}` });
    });
    rt.get('/api/sessions/recent/:app/:user', (req, res) => res.json({ found: true, chat_id: 'chat-1', workflow_name: 'assistant' }));
    rt.get('/api/sessions/:app/:user', (req, res) =>
      res.json([
        {
          chat_id: 'chat-1',
          app_id: req.params.app,
          user_id: req.params.user,
          workflow_name: 'assistant',
          status: 'in_progress',
          created_at: new Date(0).toISOString(),
          updated_at: new Date(0).toISOString(),
          last_index: 3,
        },
      ]),
    );
    runtime = await serve(rt);

    // The host application's context endpoint.
    const host = express();
    host.get('/internal/user-context', (req, res) => {
      if (req.header('x-tessera-service-key') !== SERVICE_KEY) return void res.status(401).json({});
      if (req.query.user_id === 'nobody') return void res.status(404).end();
      if (req.query.user_id === 'broken') return void res.status(500).send('oops');
      res.json({ internal_customer_id: `CUST-${String(req.query.user_id)}`, account_age_days: 420, app_seen: req.query.app_id });
    });
    hostApp = await serve(host);

    dir = mkdtempSync(join(tmpdir(), 'broker-ctx-'));
    writeFileSync(join(dir, 'context.json'), JSON.stringify({ '*': { support_priority: 'normal', user_tier: 'free' }, alice: { support_priority: 'high' } }));
    broker = await startTestBroker({
      RUNTIME_URL: runtime.url,
      CONTEXT_FILE: join(dir, 'context.json'),
      CONTEXT_SOURCE_URL: `${hostApp.url}/internal/user-context`,
      RUNTIME_TIMEOUT_MS: '400',
    });
  });

  afterAll(async () => {
    await broker.stop();
    await runtime.close();
    await hostApp.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('starts a chat for the token’s user with backend-only context and returns the gateway socket URL', async () => {
    const alice = await token('alice', { tier: 'pro', permissions: ['read', 'write'] });
    const r = await call(broker.url, 'POST', '/api/mozaiks/session', {
      token: alice,
      body: { workflow_name: 'assistant', client_request_id: 'req-1', context: { user_tier: 'enterprise', page: 'home' } },
      headers: { 'x-request-id': 'rid-42' },
    });
    expect(r.status).toBe(200);
    expect(r.json).toEqual({ chat_id: 'chat-1', websocket_url: 'ws://gateway.test:8080/ws/assistant/demo-app/chat-1/alice', workflow_name: 'assistant', reused: false });
    const sent = received.filter((x) => x.path === '/api/chat/start').at(-1)!;
    expect(sent.body).toEqual({
      app_id: 'demo-app',
      user_id: 'alice',
      workflow_name: 'assistant',
      initial_context: {
        user_tier: 'pro',
        user_permissions: ['read', 'write'],
        support_priority: 'high',
        internal_customer_id: 'CUST-alice',
        account_age_days: 420,
        app_seen: 'demo-app',
      },
      client_request_id: 'req-1',
      ui_context: { user_tier: 'enterprise', page: 'home' },
    });
    expect(sent.headers.authorization).toBe(`Bearer ${alice}`);
    expect(sent.headers['x-tessera-service-key']).toBe(SERVICE_KEY);
    expect(sent.headers['x-request-id']).toBe('rid-42');

    const again = await call(broker.url, 'POST', '/api/mozaiks/session', { token: alice, body: { workflow_name: 'assistant', client_request_id: 'req-1' } });
    expect(again.json.reused).toBe(true);
  });

  it('uses the context file’s defaults when the token has no tier, and goes on when the host has nothing (404)', async () => {
    const r = await call(broker.url, 'POST', '/api/mozaiks/session', { token: await token('nobody'), body: { workflow_name: 'assistant' } });
    expect(r.status).toBe(200);
    expect(received.at(-1)!.body.initial_context).toEqual({ support_priority: 'normal', user_tier: 'free' });
  });

  it('refuses to start when the host’s context endpoint fails (503), rather than start without it', async () => {
    const r = await call(broker.url, 'POST', '/api/mozaiks/session', { token: await token('broken'), body: { workflow_name: 'assistant' } });
    expect(r.status).toBe(503);
    expect(r.json).toEqual({ error: { code: 'SERVICE_UNAVAILABLE', message: 'user context unavailable' } });
  });

  it('never takes the user from the body, and checks the token and its apps', async () => {
    const alice = await token('alice');
    const withUser = await call(broker.url, 'POST', '/api/mozaiks/session', { token: alice, body: { workflow_name: 'assistant', user_id: 'bob' } });
    expect(withUser.status).toBe(400);
    expect(withUser.json.error.code).toBe('VALIDATION_FAILED');
    const badName = await call(broker.url, 'POST', '/api/mozaiks/session', { token: alice, body: { workflow_name: '../etc' } });
    expect(badName.status).toBe(400);

    const otherApp = await call(broker.url, 'POST', '/api/mozaiks/session', { token: await token('alice', { apps: ['other-app'] }), body: { workflow_name: 'assistant' } });
    expect(otherApp.status).toBe(403);
    expect(otherApp.json.error.message).toBe('token does not allow app "demo-app"');

    const expired = await token('alice', {}, Math.floor(Date.now() / 1000) - 60);
    for (const t of [undefined, expired, `${alice.slice(0, -3)}abc`]) {
      const r = await call(broker.url, 'POST', '/api/mozaiks/session', { token: t, body: { workflow_name: 'assistant' } });
      expect(r.status).toBe(401);
      const list = await call(broker.url, 'GET', '/api/mozaiks/sessions', { token: t });
      expect(list.status).toBe(401);
    }
  });

  it('lists the user’s sessions and the recent one from the runtime, with the user’s token', async () => {
    const bob = await token('bob');
    const list = await call(broker.url, 'GET', '/api/mozaiks/sessions', { token: bob });
    expect(list.status).toBe(200);
    expect(list.json[0]).toMatchObject({ chat_id: 'chat-1', user_id: 'bob', app_id: 'demo-app' });
    expect(received.at(-1)!.headers.authorization).toBe(`Bearer ${bob}`);
    expect(received.at(-1)!.headers['x-tessera-service-key']).toBeUndefined();
    const recent = await call(broker.url, 'GET', '/api/mozaiks/sessions/recent', { token: bob });
    expect(recent.json).toEqual({ found: true, chat_id: 'chat-1', workflow_name: 'assistant' });
    expect(received.at(-1)!.path).toBe('/api/sessions/recent/demo-app/bob');
  });

  it('maps runtime failures: 4xx as is, 5xx → 502 without its details, slow → 503, broken reply → 502', async () => {
    const errors = jest.spyOn(logger, 'error');
    const alice = await token('alice');
    const start = (workflow_name: string) => call(broker.url, 'POST', '/api/mozaiks/session', { token: alice, body: { workflow_name } });

    const missing = await start('missing');
    expect(missing.status).toBe(404);
    expect(missing.json).toEqual({ error: { code: 'NOT_FOUND', message: 'no workflow "missing"' } });
    const limited = await start('limited');
    expect(limited.status).toBe(429);
    expect(limited.headers['retry-after']).toBe('7');

    const boom = await start('boom');
    expect(boom.status).toBe(502);
    expect(boom.json).toEqual({ error: { code: 'BAD_GATEWAY', message: 'AI service failed' } });
    expect(boom.text).not.toContain('secret.ts');
    expect(errors).toHaveBeenCalledWith('runtime failed', expect.objectContaining({ status: 500, body: expect.stringContaining('secret.ts') }));

    const slow = await start('slow');
    expect(slow.status).toBe(503);
    expect(slow.json).toEqual({ error: { code: 'SERVICE_UNAVAILABLE', message: 'AI service unavailable' } });
    expect(slow.ms).toBeLessThan(1_000);

    const garbage = await start('garbage');
    expect(garbage.status).toBe(502);
    errors.mockRestore();
  });

  it('answers /health ok, /ready, /openapi.json and /metrics', async () => {
    const h = await call(broker.url, 'GET', '/health');
    expect(h.json).toMatchObject({ status: 'ok', service: 'broker', checks: { runtime: { status: 'ok' } } });
    expect((await call(broker.url, 'GET', '/ready')).status).toBe(200);
    const doc = await call(broker.url, 'GET', '/openapi.json');
    expect(Object.keys(doc.json.paths)).toEqual(expect.arrayContaining(['/api/mozaiks/session', '/api/mozaiks/sessions', '/api/mozaiks/sessions/recent']));
    expect((await call(broker.url, 'GET', '/metrics')).text).toContain('http_request_duration_seconds');
  });

  it('with the runtime down: 503 "AI service unavailable" at once, and /health degraded (not down)', async () => {
    const lonely = await startTestBroker({ RUNTIME_URL: `http://127.0.0.1:${await closedPort()}` });
    try {
      const r = await call(lonely.url, 'POST', '/api/mozaiks/session', { token: await token('alice'), body: { workflow_name: 'assistant' } });
      expect(r.status).toBe(503);
      expect(r.json).toEqual({ error: { code: 'SERVICE_UNAVAILABLE', message: 'AI service unavailable' } });
      expect(r.ms).toBeLessThan(1_000);
      const list = await call(lonely.url, 'GET', '/api/mozaiks/sessions', { token: await token('alice') });
      expect(list.status).toBe(503);
      const h = await call(lonely.url, 'GET', '/health');
      expect(h.status).toBe(200);
      expect(h.json.status).toBe('degraded');
      expect(h.json.checks.runtime.status).toBe('degraded');
      expect((await call(lonely.url, 'GET', '/ready')).status).toBe(200);
    } finally {
      await lonely.stop();
    }
  });
});

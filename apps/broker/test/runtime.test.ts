import express from 'express';
import pg from 'pg';
import { pgConnectionString } from '@tessera/kit';
import { call } from '@tessera/kit/testing';
import { SECRET, serve, SERVICE_KEY, startTestBroker, token, type TestBroker } from './support';
import { startRuntime, type RuntimeProcesses } from './runtime-process';

/** The broker against the real runtime (child processes), with the host application's context endpoint. */
describe('broker with the real runtime', () => {
  let runtime: RuntimeProcesses;
  let host: Awaited<ReturnType<typeof serve>>;
  let broker: TestBroker;

  const contextOf = async (chatId: string) => {
    const c = new pg.Client({ connectionString: pgConnectionString(runtime.databaseUrl) });
    await c.connect();
    try {
      return (await c.query(`SELECT context FROM "${runtime.schema}".chats WHERE id = $1`, [chatId])).rows[0]?.context;
    } finally {
      await c.end();
    }
  };

  beforeAll(async () => {
    const app = express();
    app.get('/ctx', (req, res) => {
      if (req.header('x-tessera-service-key') !== SERVICE_KEY) return void res.status(401).end();
      res.json({ internal_customer_id: `CUST-${String(req.query.user_id)}`, account_age_days: 12 });
    });
    [runtime, host] = await Promise.all([startRuntime({ JWT_SECRET: SECRET, SERVICE_KEY }), serve(app)]);
    broker = await startTestBroker({ RUNTIME_URL: runtime.url, CONTEXT_SOURCE_URL: `${host.url}/ctx` });
  }, 30_000);

  afterAll(async () => {
    await broker?.stop();
    await host?.close();
    await runtime?.stop();
  });

  it('starts a chat whose context holds the backend values as is and the client’s under ui_', async () => {
    const alice = await token('alice', { tier: 'enterprise', permissions: ['read', 'export'] });
    const r = await call(broker.url, 'POST', '/api/mozaiks/session', {
      token: alice,
      body: { workflow_name: 'assistant', client_request_id: 'abc', context: { user_tier: 'free', internal_customer_id: 'forged', page: 'pricing' } },
    });
    expect(r.status).toBe(200);
    expect(r.json.websocket_url).toBe(`ws://gateway.test:8080/ws/assistant/demo-app/${r.json.chat_id}/alice`);
    expect(await contextOf(r.json.chat_id)).toEqual({
      user_tier: 'enterprise',
      user_permissions: ['read', 'export'],
      internal_customer_id: 'CUST-alice',
      account_age_days: 12,
      ui_user_tier: 'free',
      ui_internal_customer_id: 'forged',
      ui_page: 'pricing',
    });
    const again = await call(broker.url, 'POST', '/api/mozaiks/session', { token: alice, body: { workflow_name: 'assistant', client_request_id: 'abc' } });
    expect(again.json).toMatchObject({ chat_id: r.json.chat_id, reused: true });

    const list = await call(broker.url, 'GET', '/api/mozaiks/sessions', { token: alice });
    expect(list.json).toEqual([expect.objectContaining({ chat_id: r.json.chat_id, user_id: 'alice', app_id: 'demo-app', workflow_name: 'assistant' })]);
    const recent = await call(broker.url, 'GET', '/api/mozaiks/sessions/recent', { token: alice });
    expect(recent.status).toBe(200);
    expect(recent.json).toEqual({ found: true, chat_id: r.json.chat_id, workflow_name: 'assistant' });
    const none = await call(broker.url, 'GET', '/api/mozaiks/sessions/recent', { token: await token('nobody') });
    expect(none.json).toEqual({ found: false, chat_id: null, workflow_name: null });
  });

  it('passes the runtime’s refusal on with its status and error body', async () => {
    const r = await call(broker.url, 'POST', '/api/mozaiks/session', { token: await token('alice'), body: { workflow_name: 'no_such_workflow' } });
    expect(r.status).toBeGreaterThanOrEqual(400);
    expect(r.status).toBeLessThan(500);
    expect(r.json.error.message).toContain('no_such_workflow');
  });

  it('reports the runtime degraded and answers 503 once it is gone', async () => {
    expect((await call(broker.url, 'GET', '/health')).json.status).toBe('ok');
    await runtime.stopApi();
    const r = await call(broker.url, 'POST', '/api/mozaiks/session', { token: await token('alice'), body: { workflow_name: 'assistant' } });
    expect(r.status).toBe(503);
    expect(r.json).toEqual({ error: { code: 'SERVICE_UNAVAILABLE', message: 'AI service unavailable' } });
    const h = await call(broker.url, 'GET', '/health');
    expect(h.json).toMatchObject({ status: 'degraded', checks: { runtime: { status: 'degraded' } } });
  });
});

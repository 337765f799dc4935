/** The service as `npm start` runs it: `src/main.ts` in a process of its own. */
import { resolve } from 'node:path';
import { closedPort, spawnService, type ServiceProcess, entryOf } from '@tessera/kit/testing';
import { http, ingest, operator, ROOT, serviceVars, sid, testEnv, type Env } from './harness';

let env: Env;
let proc: ServiceProcess;
let url: string;

beforeAll(async () => {
  env = await testEnv('process');
  const port = await closedPort();
  url = `http://127.0.0.1:${port}`;
  proc = await spawnService({
    name: 'observability',
    entry: resolve(ROOT, entryOf('observability')),
    cwd: ROOT,
    env: { ...serviceVars(env), LOG_LEVEL: 'info', PORT: String(port), HOST: '127.0.0.1' },
    ready: { url: `${url}/ready` },
  });
}, 30_000);
afterAll(async () => {
  await proc?.stop('SIGKILL');
  await env?.dropSchema();
});

test('serves health, readiness, metrics and its OpenAPI document', async () => {
  expect((await http(url, 'GET', '/health')).body).toMatchObject({ status: 'ok', service: 'observability' });
  expect((await http(url, 'GET', '/ready')).body).toMatchObject({ status: 'ok', checks: { redis: { status: 'ok' }, database: { status: 'ok' } } });
  const id = sid('m');
  await ingest(url, { event_type: 'session_start', session_id: id });
  expect((await http(url, 'GET', '/metrics')).body).toMatch(/events_total\{kind="observability_ingested",service="observability"\} 1/);
  const doc = (await http(url, 'GET', '/openapi.json')).body;
  expect(Object.keys(doc.paths)).toEqual(
    expect.arrayContaining(['/events', '/events/{session_id}', '/sessions', '/sessions/{session_id}', '/sessions/{session_id}/metadata', '/sessions/{session_id}/stop', '/v1/traces']),
  );
});

test('odd paths and queries are 4xx naming what is wrong', async () => {
  const op = await operator(['app1']);
  const cases: [string, number, RegExp?][] = [
    ['/sessions/%00', 400, /session_id/],
    ['/sessions/%E0%A4%A', 400],
    [`/events/${'x'.repeat(300)}`, 400, /session_id/],
    ['/events/abc?after=-1', 400, /after/],
    ['/events/abc?limit=abc', 400, /limit/],
    ['/sessions?limit=100000', 400, /limit/],
    ['/nowhere', 404],
  ];
  for (const [path, status, msg] of cases) {
    const r = await http(url, 'GET', path, { token: op });
    expect([path, r.status]).toEqual([path, status]);
    if (msg) expect(r.body.error.message).toMatch(msg);
  }
});

test('SIGTERM drains and exits 0', async () => {
  const t0 = Date.now();
  const exited = new Promise<number | null>((r) => proc.child.once('exit', (code) => r(code)));
  proc.child.kill('SIGTERM');
  expect(await exited).toBe(0);
  expect(Date.now() - t0).toBeLessThan(5_000);
  expect(proc.output()).toMatch(/shutdown complete/);
  expect(proc.output()).not.toMatch(/error while closing|timed out/);
});

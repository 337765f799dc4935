import { HealthReply } from '@tessera/contracts';
import { createHttpApp, createLogger, createRedis, finalizeHttpApp, healthRouter, Metrics, runChecks } from '../src';
import { TEST_REDIS_URL } from '../src/testing';
import { serve } from './support';

const logger = createLogger('metrics-test', 'silent');
const redis = createRedis(TEST_REDIS_URL, logger, 'metrics-test');
const state = { storeDown: false, downstreamDown: false, shuttingDown: false };

let url: string;
let close: () => Promise<void>;

beforeAll(async () => {
  const metrics = new Metrics('kit-metrics-test');
  metrics.watchQueue('runtime-turns', async () => ({ waiting: 3, active: 1 }));
  metrics.watchQueue('broken-queue', async () => {
    throw new Error('redis away');
  });
  const app = createHttpApp({ logger, metrics });
  app.use(metrics.router());
  app.use(
    healthRouter({
      service: 'kit-metrics-test',
      ready: {
        redis: async () => void (await redis.ping()),
        store: async () => {
          if (state.storeDown) throw new Error('connection refused');
        },
      },
      liveness: {
        downstream: async () => {
          if (state.downstreamDown) throw new Error('runtime unreachable');
        },
      },
      isShuttingDown: () => state.shuttingDown,
    }),
  );
  app.get('/things/:id', (req, res) => res.json({ id: req.params.id }));
  finalizeHttpApp(app, logger);
  ({ url, close } = await serve(app));
});
afterAll(async () => {
  await close();
  await redis.quit();
});
afterEach(() => Object.assign(state, { storeDown: false, downstreamDown: false, shuttingDown: false }));

async function getJson(path: string) {
  const res = await fetch(url + path);
  return { status: res.status, body: HealthReply.parse(await res.json()) };
}

describe('/metrics', () => {
  it('serves Prometheus text with the request latency by route template', async () => {
    expect((await fetch(`${url}/things/42`)).status).toBe(200);
    expect((await fetch(`${url}/things/43`)).status).toBe(200);
    expect((await fetch(`${url}/no/such/route`)).status).toBe(404);

    const res = await fetch(`${url}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    const text = await res.text();
    expect(text).toContain('# TYPE http_request_duration_seconds histogram');
    const count = (route: string, status: string) =>
      text.split('\n').find((l) => l.startsWith('http_request_duration_seconds_count{') && l.includes(`route="${route}"`) && l.includes(`status="${status}"`));
    // Both requests share the template's label: no label per id.
    const things = count('/things/:id', '200');
    expect(things).toContain('method="GET"');
    expect(things).toContain('service="kit-metrics-test"');
    expect(things).toMatch(/ 2$/);
    expect(count('unmatched', '404')).toMatch(/ 1$/);
    expect(text).not.toContain('route="/things/42"');
  });

  it('reports queue depth on each scrape and survives a failing source', async () => {
    const text = await (await fetch(`${url}/metrics`)).text();
    const depth = (state: string) => text.split('\n').find((l) => l.startsWith('queue_depth{') && l.includes('queue="runtime-turns"') && l.includes(`state="${state}"`));
    expect(depth('waiting')).toMatch(/ 3$/);
    expect(depth('active')).toMatch(/ 1$/);
    expect(text).not.toContain('broken-queue');
    expect(text).toContain('process_cpu_user_seconds_total');
  });
});

describe('health', () => {
  it('/ready is 200 when every critical check passes', async () => {
    const { status, body } = await getJson('/ready');
    expect(status).toBe(200);
    expect(body).toMatchObject({ status: 'ok', service: 'kit-metrics-test', checks: { redis: { status: 'ok' }, store: { status: 'ok' } } });
  });

  it('/ready is 503 with the check down when a check throws', async () => {
    state.storeDown = true;
    const { status, body } = await getJson('/ready');
    expect(status).toBe(503);
    expect(body.status).toBe('down');
    expect(body.checks?.store).toMatchObject({ status: 'down', error: 'connection refused' });
    expect(body.checks?.redis.status).toBe('ok');
  });

  it('/ready is 503 while the service shuts down', async () => {
    state.shuttingDown = true;
    const { status, body } = await getJson('/ready');
    expect(status).toBe(503);
    expect(body.status).toBe('down');
  });

  it('/health stays 200 and says degraded when a non-critical dependency fails', async () => {
    expect((await getJson('/health')).body.status).toBe('ok');
    state.downstreamDown = true;
    const { status, body } = await getJson('/health');
    expect(status).toBe(200);
    expect(body).toMatchObject({ status: 'degraded', checks: { downstream: { status: 'down', error: 'runtime unreachable' } } });
  });

  it('a check that hangs is down after its timeout', async () => {
    const checks = await runChecks({ hung: () => new Promise(() => undefined), quick: async () => 'degraded' }, 50);
    expect(checks.hung).toMatchObject({ status: 'down', error: 'timed out after 50 ms' });
    expect(checks.quick.status).toBe('degraded');
  });
});

/**
 * What one HTTP request costs a service, layer by layer: the same authenticated GET answered with
 * the same small JSON by servers that each add a layer of the kit's stack, in one run.
 *
 *   npx tsx tools/bench/http-stack.ts [--cpu-prof]
 *
 * Each server is its own process (TypeScript loaded by tsx, as the services run in the benchmarks);
 * the load is keep-alive, 10 in flight, from this process; the figure is the server's CPU per
 * request (/proc, around the timed part), best of two rounds taken in turn. Servers:
 *   - node: node's `http` alone, reading the bearer token (the kit's auth, cached) and answering
 *     with a request id
 *   - express: an express app with that one route, on node's own request and response objects
 *     (express gives each its prototypes as it comes in)
 *   - express, prototypes in place: the same app on a server whose requests and responses have
 *     the app's prototypes from the start (the kit's `expressServerOptions`)
 *   - kit, node's objects: a service as every Tessera service is built (`serviceApp`: request id,
 *     security headers, CORS, metrics, access log, JSON body parser, health, routes declared with
 *     their access rule, 404 and the error shape), the route a `user` route with its path
 *     parameters parsed by zod, declared last of 60 (as the runtime's AG-UI route is among its
 *     routes), on a plain `http.createServer(app)`
 *   - kit: the same as every service serves it (the kit's `listen`)
 *   - kit, route first: the same with the route declared first (what the router's walk costs)
 *   - kit, POST of a JSON body: the kit's route as a POST of a 1.6 KB body (an AG-UI RunAgentInput
 *     of five messages) that zod validates, answered with the same JSON: what a request that
 *     carries a body adds (the body parser, its depth check, its schema)
 * Knobs (env): BENCH_REQUESTS (20000), BENCH_MODES (comma-separated names from MODES).
 * --cpu-prof writes each server's CPU profile to tmp/bench-prof/.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import { z } from 'zod';
import { createAuth, createLogger, expressServerOptions, listen, Metrics, serviceApp, signToken, type Principal } from '@tessera/kit';
import { agent, pooled } from './lib/http';
import { cpuSecondsOf, freePort, ROOT } from './lib/proc';

const SECRET = 'http-stack-bench-secret-0123456789abcdef';
const REQUESTS = Number(process.env.BENCH_REQUESTS ?? 20_000);
const ALL = ['node', 'express', 'express-proto', 'kit-plain', 'kit', 'kit-first', 'kit-post'] as const;
type Mode = (typeof ALL)[number];
const LABEL: Record<Mode, string> = {
  node: "node's http",
  express: 'express',
  'express-proto': 'express, prototypes in place',
  'kit-plain': "kit, node's objects",
  kit: 'kit (as services serve)',
  'kit-first': 'kit, route first',
  'kit-post': 'kit, POST of a JSON body',
};
const MODES = (process.env.BENCH_MODES?.split(',') ?? ALL) as Mode[];
for (const m of MODES) if (!ALL.includes(m)) throw new Error(`unknown server "${m}" (${ALL.join(', ')})`);
const ROUTES = 60;
/** The POST's body: a RunAgentInput as a frontend sends its fifth run. */
const POSTED = JSON.stringify({
  threadId: 'thread-1',
  runId: 'run-5',
  state: {},
  tools: [],
  context: [],
  forwardedProps: {},
  messages: Array.from({ length: 9 }, (_, i) => ({ id: `m${i}`, role: i % 2 ? 'assistant' : 'user', content: 'Once upon a time a quick brown fox jumped over the lazy dog, twenty words or so.' })),
});
const Posted = z.object({
  threadId: z.string().max(128),
  runId: z.string().max(128),
  state: z.unknown(),
  tools: z.array(z.unknown()),
  context: z.array(z.unknown()),
  forwardedProps: z.unknown(),
  messages: z.array(z.object({ id: z.string(), role: z.enum(['user', 'assistant', 'system', 'tool']), content: z.string() })),
});
const reply = (sub: string, appId: string) => ({ app_id: appId, user: sub, workflows: [{ name: 'assistant', description: 'a helpful assistant' }] });

async function serve(mode: Mode, port: number): Promise<void> {
  const auth = createAuth({ enabled: true, secret: SECRET });
  let server: http.Server;
  if (mode === 'node') {
    server = http.createServer((req, res) => {
      const token = req.headers.authorization?.slice(7) ?? '';
      auth.verify(token).then(
        (p) => {
          const body = JSON.stringify(reply(p.sub, req.url!.split('/')[3]));
          res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body), 'x-request-id': crypto.randomUUID() });
          res.end(body);
        },
        () => {
          res.writeHead(401).end();
        },
      );
    });
  } else if (mode === 'express' || mode === 'express-proto') {
    const express = (await import('express')).default;
    const app = express();
    app.get('/api/things/:app_id/:name', (req, res, next) => {
      auth.verify(req.headers.authorization?.slice(7) ?? '').then((p) => void res.json(reply(p.sub, req.params.app_id)), next);
    });
    server = mode === 'express-proto' ? http.createServer(expressServerOptions(app), app) : http.createServer(app);
  } else {
    const logger = createLogger('http-stack', 'warn');
    const metrics = new Metrics('http-stack');
    const target = {
      method: mode === 'kit-post' ? 'post' : 'get',
      ...(mode === 'kit-post' && { body: Posted }),
      path: '/api/things/{app_id}/{name}',
      access: 'user',
      summary: 'the measured route',
      params: z.object({ app_id: z.string().min(1).max(64), name: z.string().min(1).max(64) }),
      responses: { 200: { description: 'ok' } },
    } as const;
    const others = Array.from({ length: ROUTES - 1 }, (_, i) => ({ method: 'get', path: `/api/other${i}/{app_id}`, access: 'user', summary: `other ${i}`, responses: { 200: { description: 'ok' } } }) as const);
    const { app } = serviceApp({
      service: 'http-stack',
      api: { title: 'http-stack', readySummary: 'nothing' },
      services: { logger, metrics, config: { CORS_ORIGINS: [] } },
      health: { ready: {} },
      guards: { user: auth.middleware() },
      routes: (routes) => {
        const measured = () => routes.route(target, async ({ params }, req, res) => void res.json(reply((req.principal as Principal).sub, params.app_id)));
        if (mode === 'kit-first') measured();
        for (const o of others) routes.route(o, async (_input, _req, res) => void res.json({}));
        if (mode !== 'kit-first') measured();
      },
    });
    if (mode !== 'kit-plain') {
      // As every service listens (the kit's listen: its server options, limits and timeouts).
      await listen(app, port);
      return void process.stdout.write('listening\n');
    }
    server = http.createServer(app);
  }
  server.keepAliveTimeout = 60_000;
  server.listen(port, '127.0.0.1', () => process.stdout.write('listening\n'));
}

async function start(mode: Mode): Promise<{ child: ChildProcess; port: number }> {
  const port = await freePort();
  const prof = process.argv.includes('--cpu-prof') ? ['--cpu-prof', `--cpu-prof-dir=${ROOT}/tmp/bench-prof`, `--cpu-prof-name=http-stack-${mode}-${Date.now()}.cpuprofile`] : [];
  const child = spawn(process.execPath, [...prof, '--import', 'tsx', __filename, 'serve', mode, String(port)], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => d.toString().includes('listening') && resolve());
    child.once('exit', (code) => reject(new Error(`${mode} server exited with ${code}`)));
  });
  return { child, port };
}

function get(port: number, token: string, post: boolean): Promise<number> {
  return new Promise((resolve, reject) => {
    const headers = { authorization: `Bearer ${token}`, ...(post && { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(POSTED)) }) };
    const req = http.request({ host: '127.0.0.1', port, method: post ? 'POST' : 'GET', path: '/api/things/app1/assistant', agent, headers }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end(post ? POSTED : undefined);
  });
}

async function measure(mode: Mode, token: string): Promise<{ mode: Mode; cpuUs: number; rate: number }> {
  const { child, port } = await start(mode);
  try {
    const call = async () => {
      const status = await get(port, token, mode === 'kit-post');
      if (status !== 200) throw new Error(`${mode}: status ${status}`);
    };
    await pooled(2_000, 10, call);
    const c0 = cpuSecondsOf(child.pid!);
    const t0 = performance.now();
    await pooled(REQUESTS, 10, call);
    const secs = (performance.now() - t0) / 1000;
    return { mode, cpuUs: ((cpuSecondsOf(child.pid!) - c0) / REQUESTS) * 1e6, rate: REQUESTS / secs };
  } finally {
    // SIGINT: a profile (--cpu-prof) is written on a normal exit only.
    child.kill('SIGINT');
    await new Promise((r) => child.once('exit', r));
  }
}

async function main(): Promise<void> {
  const token = await signToken(SECRET, { sub: 'bench-user', apps: ['app1'] });
  console.log(`http-stack: ${REQUESTS} authenticated requests per server (GETs; the POST's body ${Buffer.byteLength(POSTED)} B), 10 in flight, keep-alive`);
  const rows: { mode: Mode; cpuUs: number; rate: number }[] = [];
  // Twice, alternating, so that a busy moment does not fall on one server only.
  for (let round = 0; round < 2; round++) for (const mode of MODES) rows.push(await measure(mode, token));
  const best = (mode: Mode) => rows.filter((r) => r.mode === mode).sort((a, b) => a.cpuUs - b.cpuUs)[0];
  const base = best(MODES[0]);
  console.log(`server                          CPU µs/request  × ${LABEL[MODES[0]]}  requests/s`);
  for (const mode of MODES) {
    const r = best(mode);
    console.log(`${LABEL[mode].padEnd(32)}${r.cpuUs.toFixed(0).padStart(14)}${(r.cpuUs / base.cpuUs).toFixed(2).padStart(5 + LABEL[MODES[0]].length)}${r.rate.toFixed(0).padStart(12)}`);
  }
  agent.destroy();
}

if (process.argv[2] === 'serve') {
  process.once('SIGINT', () => process.exit(0));
  void serve(process.argv[3] as Mode, Number(process.argv[4]));
}
else
  main().catch((e) => {
    console.error(e);
    process.exit(1);
  });

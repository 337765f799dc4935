import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { SERVICES } from '../services';
import { NOT_SERVICES, skeletonProblems } from '../skeleton';

/** The service skeleton (README, "The service skeleton") holds for every service, and `npm start` runs each as its main.ts says. */
const ROOT = resolve(__dirname, '../../..');

it('every service has the skeleton: main.ts is runMain, only services.ts connects and builds auth, only the kit answers health, routes in routes/, writes in store/, publishes in bus/', () => {
  expect(skeletonProblems(ROOT)).toEqual([]);
});

it('npm start runs every service, each from its main.ts or worker.ts', () => {
  const services = readdirSync(join(ROOT, 'apps')).filter((n) => !NOT_SERVICES.includes(n) && !n.startsWith('.'));
  expect([...new Set(SERVICES.map((s) => s.app))].sort()).toEqual(services.sort());
  for (const s of SERVICES) expect(s.entry).toMatch(new RegExp(`^apps/${s.app}/src/(main|worker)\\.ts$`));
});

it('tests and benchmarks start services from the one stack definition (tools/scripts/services.ts, read through the kit’s entryOf), never an entry file they name themselves', () => {
  for (const s of SERVICES) expect(existsSync(join(ROOT, s.entry))).toBe(true);
  // libs/client's tests may not depend on the kit (module boundaries): its runtime process names its entries.
  const dirs = [...readdirSync(join(ROOT, 'apps')).map((a) => `apps/${a}/test`), 'libs/kit/src', 'libs/kit/test', 'tools/bench'];
  const named: string[] = [];
  const walk = (dir: string) => {
    if (!existsSync(join(ROOT, dir))) return;
    for (const e of readdirSync(join(ROOT, dir), { withFileTypes: true })) {
      const rel = `${dir}/${e.name}`;
      if (e.isDirectory()) walk(rel);
      else if (/\.tsx?$/.test(e.name) && rel !== 'libs/kit/src/stack.ts' && /['"]apps\/[a-z-]+\/src\/(main|worker)\.ts['"]/.test(readFileSync(join(ROOT, rel), 'utf8'))) named.push(rel);
    }
  };
  dirs.forEach(walk);
  expect(named).toEqual([]);
});

describe('an app that leaves the skeleton', () => {
  let root: string;
  const write = (path: string, text: string) => {
    mkdirSync(dirname(join(root, path)), { recursive: true });
    writeFileSync(join(root, path), text);
  };

  beforeAll(() => {
    root = mkdtempSync(join(tmpdir(), 'tessera-skeleton-'));
    // A copy of a real service, then each way of leaving the skeleton.
    for (const f of ['main.ts', 'config.ts', 'services.ts', 'server.ts', 'app.ts']) write(`apps/good/src/${f}`, readFileSync(join(ROOT, 'apps/broker/src', f), 'utf8'));
    write('apps/good/src/routes/sessions.ts', "const list = { method: 'get' } as const satisfies RouteSpec;\nroutes.route(list, handler);\n");
    write('apps/good/src/store/sessions.ts', "await pool.query('INSERT INTO sessions (id) VALUES ($1)', [id]);\nawait prisma.session.update({ where });\n");
    write('apps/good/src/bus/control.ts', "await publisher.publish(channelOf('sessionControl'), m);\n");
    write(
      'apps/bad/src/main.ts',
      [
        "import { createLogger, createRedis } from '@tessera/kit';",
        "import { loadBadConfig } from './config';",
        'async function main() {',
        '  const config = loadBadConfig();',
        "  const logger = createLogger('bad', config.LOG_LEVEL);",
        "  const redis = createRedis(config.REDIS_URL, logger, 'bad');",
        '}',
        'main().catch(() => process.exit(1));',
      ].join('\n'),
    );
    write('apps/bad/src/config.ts', 'export {};\n');
    write('apps/bad/src/app.ts', "import { createAuth, healthRouter } from '@tessera/kit';\nexport const auth = createAuth(s);\napp.use(healthRouter({ service: 'bad', ready: {} }));\n");
    write('apps/bad/src/routes/ping.ts', "// createRedis( in a comment is no call\nr.get('/health', (_req, res) => res.json({}));\n");
    write('apps/bad/src/mission/routes.ts', "const list = { method: 'get' } as const satisfies RouteSpec;\nroutes.route(list, handler);\n");
    write('apps/bad/src/ingest/writer.ts', "// DELETE FROM in a comment is no write\nawait pool.query(`UPDATE sessions SET status = 'finished'`);\n");
    write('apps/bad/src/routes/upload.ts', "await s.db.prisma.attachment.create({ data });\nawait s.bus.publish(channelOf('sessionControl'), m);\nconst bus = new BusPublisher(redis);\n");
    write('apps/console/src/main.tsx', 'render();\n');
  });
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it('is named, file by file, with the reason; a copy of a real service is not', () => {
    const problems = skeletonProblems(root);
    expect(problems.filter((p) => p.startsWith('apps/good/'))).toEqual([]);
    expect(problems.filter((p) => p.startsWith('apps/console/'))).toEqual([]);
    expect(problems).toEqual(
      expect.arrayContaining([
        'apps/bad/src/services.ts: missing (every connection (Redis, PostgreSQL, clients of other services) and auth, with one close())',
        'apps/bad/src/server.ts: missing (start as deployed (start<App>Server), the shutdown order declared)',
        'apps/bad/src/main.ts: is 8 lines long (at most 6: imports and runMain)',
        'apps/bad/src/main.ts: does more than runMain(name, loadConfig, start)',
        'apps/bad/src/main.ts: builds a Redis connection (createRedis) outside services.ts',
        'apps/bad/src/app.ts: builds the token verifier (createAuth) outside services.ts',
        "apps/bad/src/app.ts: registers /health (healthRouter): serviceApp's health option does",
        'apps/bad/src/routes/ping.ts: registers /health or /ready by hand',
        'apps/bad/src/mission/routes.ts: declares a route (RouteSpec) outside src/routes/',
        'apps/bad/src/mission/routes.ts: registers a route (routes.route) outside src/routes/',
        'apps/bad/src/ingest/writer.ts: writes to the database (SQL) outside src/store/',
        'apps/bad/src/routes/upload.ts: writes to the database (Prisma) outside src/store/',
        'apps/bad/src/routes/upload.ts: publishes on a bus channel (channelOf) outside src/bus/',
        'apps/bad/src/routes/upload.ts: builds a bus publisher (new BusPublisher) outside services.ts',
      ]),
    );
    expect(problems.filter((p) => p.startsWith('apps/bad/src/ingest/writer.ts'))).toHaveLength(1);
    expect(problems.filter((p) => p.startsWith('apps/bad/src/routes/ping.ts'))).toHaveLength(1);
  });
});

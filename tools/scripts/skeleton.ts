import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

/**
 * The service skeleton (README, "The service skeleton"), checked: every service of `apps/` has the
 * same files, its process entries are `runMain` and nothing else, and only its composition root
 * (services.ts) makes connections and the token verifier, only the kit's `serviceApp` answers
 * health and builds the HTTP app. tools/scripts/test/skeleton.test.ts runs it on the repository.
 */

/** The files every service has, and what each holds. */
export const SKELETON = {
  'src/main.ts': 'the process: runMain(name, loadConfig, start)',
  'src/config.ts': 'the environment, one zod schema',
  'src/services.ts': 'every connection (Redis, PostgreSQL, clients of other services) and auth, with one close()',
  'src/server.ts': 'start as deployed (start<App>Server), the shutdown order declared',
  'src/app.ts': "the HTTP app: the kit's serviceApp with the routes",
  'src/routes': 'the routes, one file per resource',
} as const;

/**
 * What only one folder of a service's src/ does: a route is declared in routes/, a write to the
 * database is made in store/, a message is put on the bus in bus/ (its publisher built in
 * services.ts). A reader looking for who writes a table or publishes a channel opens one folder.
 */
const ONLY_IN_FOLDER: { folder: string; checks: [RegExp, string][] }[] = [
  {
    folder: 'routes',
    checks: [
      [/\bsatisfies RouteSpec\b|:\s*RouteSpec(\[\])?\s*=/, 'declares a route (RouteSpec)'],
      [/\broutes\.route\(/, 'registers a route (routes.route)'],
    ],
  },
  {
    folder: 'store',
    checks: [
      [/\bINSERT INTO\b|\bUPDATE\s+"?[a-z_]+"?\s+SET\b|\bDELETE FROM\b/, 'writes to the database (SQL)'],
      [/\bprisma\.\w+\.(create|createMany|update|updateMany|upsert|delete|deleteMany)\(|\$executeRaw/, 'writes to the database (Prisma)'],
    ],
  },
  { folder: 'bus', checks: [[/\.publish\(\s*channelOf\(/, 'publishes on a bus channel (channelOf)']] },
];

/** apps/ folders that are not services: the console is a static web app the gateway serves. */
export const NOT_SERVICES = ['console'];

/** Process entries: at most this many non-empty lines (imports, a doc comment, the one call). */
export const ENTRY_MAX_LINES = 6;

const ONLY_IN_SERVICES: [RegExp, string][] = [
  [/\bcreateRedis\(/, 'builds a Redis connection (createRedis)'],
  [/\bnew Redis\(/, 'builds a Redis connection (new Redis)'],
  [/\bcreateAuth\(/, 'builds the token verifier (createAuth)'],
  [/\bnew BusPublisher\(/, 'builds a bus publisher (new BusPublisher)'],
];

const ONLY_IN_THE_KIT: [RegExp, string][] = [
  [/\bhealthRouter\(/, "registers /health (healthRouter): serviceApp's health option does"],
  [/\.(get|all|use)\(\s*['"`]\/(health|ready)\b/, 'registers /health or /ready by hand'],
  [/path:\s*['"`]\/(health|ready)['"`]/, "declares /health or /ready: serviceApp's api.healthSummary and health options do"],
  [/\b(createHttpApp|finalizeHttpApp|declareRoutes)\(/, 'builds the HTTP app itself: serviceApp does'],
];

function sourceFiles(dir: string): string[] {
  if (!existsSync(dir)) return [];
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...sourceFiles(p));
    else if (/\.tsx?$/.test(name) && !/\.spec\.tsx?$/.test(name)) out.push(p);
  }
  return out;
}

/** Code without comments, so that a comment naming `createRedis(` is not a call. */
function code(text: string): string {
  return text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/(^|[^:])\/\/.*$/gm, '$1');
}

/** What an entry (main.ts, worker.ts) does besides `runMain(...)`, or that it is too long. */
export function entryProblems(text: string): string[] {
  const lines = text.split('\n').filter((l) => l.trim());
  const problems: string[] = [];
  if (lines.length > ENTRY_MAX_LINES) problems.push(`is ${lines.length} lines long (at most ${ENTRY_MAX_LINES}: imports and runMain)`);
  const statements = code(text)
    .replace(/^import[\s\S]*?from\s+['"][^'"]+['"];?/gm, '')
    .split('\n')
    .filter((l) => l.trim());
  if (statements.length !== 1 || !/^runMain\(/.test(statements[0].trim())) problems.push('does more than runMain(name, loadConfig, start)');
  return problems;
}

/** Every way the apps under `root/apps` leave the skeleton, as `apps/<app>/…: why`; empty when none does. */
export function skeletonProblems(root: string): string[] {
  const problems: string[] = [];
  const appsDir = join(root, 'apps');
  const apps = readdirSync(appsDir).filter((n) => statSync(join(appsDir, n)).isDirectory() && !NOT_SERVICES.includes(n));
  for (const app of apps) {
    const dir = join(appsDir, app);
    const rel = (p: string) => relative(root, p);
    for (const f of Object.keys(SKELETON)) if (!existsSync(join(dir, f))) problems.push(`apps/${app}/${f}: missing (${SKELETON[f as keyof typeof SKELETON]})`);
    for (const entry of ['src/main.ts', 'src/worker.ts']) {
      const p = join(dir, entry);
      if (existsSync(p)) for (const why of entryProblems(readFileSync(p, 'utf8'))) problems.push(`${rel(p)}: ${why}`);
    }
    const server = join(dir, 'src/server.ts');
    if (existsSync(server) && !/export async function start\w*\(/.test(readFileSync(server, 'utf8'))) problems.push(`${rel(server)}: exports no start function`);
    for (const p of sourceFiles(join(dir, 'src'))) {
      const text = code(readFileSync(p, 'utf8'));
      if (!p.endsWith(join('src', 'services.ts'))) for (const [re, why] of ONLY_IN_SERVICES) if (re.test(text)) problems.push(`${rel(p)}: ${why} outside services.ts`);
      for (const [re, why] of ONLY_IN_THE_KIT) if (re.test(text)) problems.push(`${rel(p)}: ${why}`);
      for (const { folder, checks } of ONLY_IN_FOLDER) {
        if (relative(join(dir, 'src'), p).split(/[\\/]/)[0] === folder) continue;
        for (const [re, why] of checks) if (re.test(text)) problems.push(`${rel(p)}: ${why} outside src/${folder}/`);
      }
    }
  }
  return problems;
}

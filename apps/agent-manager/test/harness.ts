/**
 * Test harness: real agent-manager instances on a real project directory (a fresh temp dir per
 * test file) and real Redis, started by the same function main.ts uses, or as processes.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Redis } from 'ioredis';
import type { agents } from '@tessera/contracts';
import { BusSubscriber, channelOf, createLogger, DEV_JWT_SECRET, signToken } from '@tessera/kit';
import { call, closedPort, spawnService, TEST_REDIS_URL, until, type ServiceProcess, entryOf } from '@tessera/kit/testing';
import { loadAgentManagerConfig, type AgentManagerConfig } from '../src/config';
import { startAgentManagerServer, type RunningAgentManager } from '../src/server';

export const ROOT = resolve(__dirname, '../../..');
export const SECRET = DEV_JWT_SECRET;
export const SERVICE_KEY = 'test-service-key-0123456789';

/** The app a token allowing any app acts in when it names none (DEFAULT_APP_ID), and the one `user()` has. */
export const DEFAULT_APP = 'app1';

/** An app's folders: `.agent-orchestrator/apps/{app}/` holds the document's layout. */
export const appFolders = (dir: string, app: string) => ({
  agents: join(dir, '.agent-orchestrator/apps', app, 'agents'),
  versions: join(dir, '.agent-orchestrator/apps', app, 'agent-versions'),
});

/** `agents` and `versions`: the default app's folders. */
export async function projectDir(name: string): Promise<{ dir: string; agents: string; versions: string; remove: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), `am-${name}-`));
  return { dir, ...appFolders(dir, DEFAULT_APP), remove: () => rm(dir, { recursive: true, force: true }) };
}

/** What every agent-manager process of a test is configured with, here or in a child. */
export function serviceVars(dir: string): Record<string, string> {
  return {
    NODE_ENV: 'test',
    REDIS_URL: TEST_REDIS_URL,
    JWT_SECRET: SECRET,
    SERVICE_KEY,
    AGENT_MANAGER_PROJECT_DIR: dir,
    DEFAULT_APP_ID: DEFAULT_APP,
    RUNTIME_URL: 'off',
    OBSERVABILITY_URL: 'off',
  };
}

export function configFor(dir: string, extra: Record<string, string> = {}): AgentManagerConfig {
  return loadAgentManagerConfig({ ...serviceVars(dir), LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent', PORT: '0', HOST: '127.0.0.1', SHUTDOWN_TIMEOUT_MS: '5000', ...extra });
}

export interface Instance {
  url: string;
  am: RunningAgentManager;
  close(): Promise<void>;
}

export async function startAgentManager(dir: string, extra: Record<string, string> = {}): Promise<Instance> {
  const config = configFor(dir, extra);
  const am = await startAgentManagerServer(config, createLogger('agent-manager-test', config.LOG_LEVEL));
  return { url: am.url, am, close: () => am.shutdown.run() };
}

/** An agent manager in its own process (`src/main.ts`), as deployed. */
export async function spawnAgentManager(dir: string, extra: Record<string, string> = {}): Promise<ServiceProcess & { url: string }> {
  const port = await closedPort();
  const url = `http://127.0.0.1:${port}`;
  const p = await spawnService({
    name: 'agent-manager',
    entry: resolve(ROOT, entryOf('agent-manager')),
    cwd: ROOT,
    env: { ...serviceVars(dir), LOG_LEVEL: 'warn', PORT: String(port), HOST: '127.0.0.1', ...extra },
    ready: { url: `${url}/health` },
    timeoutMs: 20_000,
  });
  return { ...p, url };
}

/** An operator (roles claim holds "operator"); of any app without `apps` (then acting in DEFAULT_APP unless a request names one). */
export const operator = (sub = 'op-1', apps?: string[]) => signToken(SECRET, { sub, roles: ['operator'], ...(apps && { apps }) }, { expiresIn: '1h' });
/** A signed-in user of an app: may read its agents, not change them. */
export const user = (sub = 'user-1', apps = [DEFAULT_APP]) => signToken(SECRET, { sub, apps }, { expiresIn: '1h' });

export async function http(base: string, method: string, path: string, opts: { body?: unknown; token?: string; headers?: Record<string, string>; raw?: string } = {}) {
  const r = await call(base, method, path, opts);
  return { status: r.status, body: r.json === undefined ? r.text : r.json };
}

/** Announcements on Redis, as the runtime receives them (with the app). */
export async function listenChanges(): Promise<{ changes: agents.AgentChangeAnnouncement[]; close: () => Promise<void> }> {
  const sub = new Redis(TEST_REDIS_URL, { maxRetriesPerRequest: null });
  const changes: agents.AgentChangeAnnouncement[] = [];
  await new BusSubscriber(sub, createLogger('agent-changes-test', 'warn')).subscribe(channelOf('agentChanges'), { onMessage: (c) => void changes.push(c) });
  return { changes, close: async () => void (await sub.quit()) };
}

/**
 * Everything `url`'s instance announced so far has reached `bus`: it creates an agent in an app of
 * its own (`flush-app`, out of every test's way) and waits for that announcement. An instance
 * publishes on one connection, in order, and Redis delivers in that order: what came before is here.
 */
export async function announcementsFlushed(bus: Changes, url: string, token: string): Promise<void> {
  const name = uniq('flush');
  const created = await http(url, 'POST', '/agents?app_id=flush-app', { token, body: { name, description: 'a marker', system_prompt: 'p' } });
  if (created.status !== 201) throw new Error(`the marker agent was not created: ${created.status} ${JSON.stringify(created.body)}`);
  await until(() => bus.changes.some((c) => c.name === name), 5_000, `the marker ${name} announced`);
}

export type Project = Awaited<ReturnType<typeof projectDir>>;

export type Changes = Awaited<ReturnType<typeof listenChanges>>;

/** What a test file of the API owns: its project directory, the agent manager on it, the announcements it made, an operator's and a user's token (`operator()`, `user()`). */
export interface Served {
  project: Project;
  am: Instance;
  bus: Changes;
  op: string;
  usr: string;
  close: () => Promise<void>;
}

/**
 * A project directory (`prepare` writes into it what was there before the service), a listener of
 * the announcements, then the agent manager on that directory: every announcement it makes is heard.
 */
export async function serveProject(name: string, opts: { prepare?: (project: Project) => Promise<void>; extra?: Record<string, string> } = {}): Promise<Served> {
  const project = await projectDir(name);
  await opts.prepare?.(project);
  const bus = await listenChanges();
  const am = await startAgentManager(project.dir, opts.extra).catch(async (e) => {
    await bus.close();
    await project.remove();
    throw e;
  });
  const [op, usr] = await Promise.all([operator(), user()]);
  return {
    project,
    am,
    bus,
    op,
    usr,
    close: async () => {
      await bus.close();
      await am.close();
      await project.remove();
    },
  };
}

/** `serveProject` for the tests of one file: served before them (`use` receives it), closed after them. */
export function serveProjectForThisFile(name: string, opts: Parameters<typeof serveProject>[1], use: (served: Served) => void): void {
  let served: Served | undefined;
  beforeAll(async () => {
    served = await serveProject(name, opts);
    use(served);
  });
  afterAll(async () => {
    await served?.close();
  });
}

export const uniq = (name: string) => `${name}-${Math.random().toString(36).slice(2, 8)}`;

/** Shared with every service's tests (kit/testing). */
export { until } from '@tessera/kit/testing';

export const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

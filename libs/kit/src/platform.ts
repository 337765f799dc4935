/**
 * The whole platform for tests, as child processes started the way `npm start` starts them
 * (`node --import tsx apps/<app>/src/<entry>.ts`): gateway, broker, runtime and its turn worker,
 * observability, agent manager, document server, bridge. Each run has its own ports, PostgreSQL
 * schemas, BullMQ prefix, Redis keys, blob and agent folders, and app ids, so it never meets another
 * test file's data. The bridge's agent servers are the bridge tests' stand-in for `opencode serve`
 * (same ready line, auth, health and event stream; it starts in milliseconds and needs no model),
 * run in the bridge's default sandbox.
 */
import { randomBytes } from 'node:crypto';
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { signToken } from './auth';
import { closedPort, freshSchema, spawnService, TEST_REDIS_URL, type ServiceProcess } from './testing';
import { entryOf } from './stack';

export const REPO_ROOT = resolve(__dirname, '../../..');

export interface Platform {
  /** The gateway's origin. */
  url: string;
  /** The app the stack's operator token is for; `otherAppId` is a second tenant. */
  appId: string;
  otherAppId: string;
  /** An operator of `appId` (roles: operator), as `npm start` prints one. */
  token: string;
  /** Signs another token with this stack's secret. */
  sign: (claims: { sub: string; [k: string]: unknown }) => Promise<string>;
  serviceKey: string;
  /** Ingest keys of each app, for observability's `POST /events`. */
  ingestKeys: Record<string, string>;
  /** Each service's own origin (what only services and the gateway reach). */
  services: Record<'runtime' | 'observability' | 'agentManager' | 'documents' | 'bridge' | 'broker', string>;
  processes: ServiceProcess[];
  stop: () => Promise<void>;
}

export interface PlatformOptions {
  /** Workflow folders copied after the runtime's examples. */
  workflows?: string[];
  /** The subject of the operator token the platform hands back (default `platform-operator`). */
  operator?: string;
  /** The console's built files, served by the gateway at /console/. */
  consoleDist?: string;
  /** Extra settings per service (`runtime` applies to its worker too). */
  env?: Partial<Record<'gateway' | 'runtime' | 'observability' | 'agentManager' | 'documents' | 'bridge' | 'broker', Record<string, string>>>;
}

function spawnHttp(name: string, entry: string, env: Record<string, string>, port: number): Promise<ServiceProcess> {
  return spawnService({ name, entry: join(REPO_ROOT, entry), cwd: REPO_ROOT, env: { ...env, PORT: String(port) }, ready: { url: `http://127.0.0.1:${port}/health` }, timeoutMs: 60_000 });
}

export async function startPlatform(opts: PlatformOptions = {}): Promise<Platform> {
  const id = randomBytes(4).toString('hex');
  const secret = `platform-test-secret-${randomBytes(16).toString('hex')}`;
  const serviceKey = `platform-service-key-${id}-0123456789`;
  const appId = `app-${id}`;
  const otherAppId = `other-${id}`;
  const ingestKeys = { [appId]: `ingest-${id}-${randomBytes(8).toString('hex')}`, [otherAppId]: `ingest-other-${id}-${randomBytes(8).toString('hex')}` };
  const [runtimeDb, obsDb, docsDb] = await Promise.all([
    freshSchema(join(REPO_ROOT, 'apps/runtime/prisma/migrations'), 'pl_rt'),
    freshSchema(join(REPO_ROOT, 'apps/observability/prisma/migrations'), 'pl_obs'),
    freshSchema(join(REPO_ROOT, 'apps/document-server/prisma/migrations'), 'pl_doc'),
  ]);
  const [gwPort, rtPort, obsPort, amPort, docPort, bridgePort, brokerPort, agentPorts] = await Promise.all(Array.from({ length: 8 }, () => closedPort()));
  const url = `http://127.0.0.1:${gwPort}`;
  const tmp = mkdtempSync(join(tmpdir(), 'tessera-platform-'));
  const agentRoot = join(tmpdir(), `tessera-platform-agents-${id}`);
  const workflows = join(tmp, 'workflows');
  cpSync(join(REPO_ROOT, 'apps/runtime/workflows'), workflows, { recursive: true });
  for (const extra of opts.workflows ?? []) cpSync(extra, workflows, { recursive: true });
  const at = (p: number) => `http://127.0.0.1:${p}`;
  const common = {
    NODE_ENV: 'test',
    LOG_LEVEL: 'warn',
    REDIS_URL: TEST_REDIS_URL,
    JWT_SECRET: secret,
    SERVICE_KEY: serviceKey,
    HOST: '127.0.0.1',
    // A browser's origin is the gateway's: its fetches and sockets carry it.
    CORS_ORIGINS: url,
    SHUTDOWN_TIMEOUT_MS: '3000',
  };
  const bull = `test-platform-${id}`;
  const runtimeEnv = {
    ...common,
    DATABASE_URL: runtimeDb.url,
    BULL_PREFIX: bull,
    WORKFLOWS_DIR: workflows,
    AGENTS_URL: at(amPort),
    // Every turn reads its blueprint afresh: a test's next turn sees an operator's change at once.
    BLUEPRINT_CACHE_MS: '0',
    DOCUMENTS_URL: 'off',
    WS_MESSAGES_PER_SECOND: '200',
    WS_MESSAGE_BURST: '400',
    ...opts.env?.runtime,
  };
  const started = await Promise.allSettled([
    spawnHttp('runtime', entryOf('runtime'), runtimeEnv, rtPort),
    spawnService({ name: 'runtime-worker', entry: join(REPO_ROOT, entryOf('runtime-worker')), cwd: REPO_ROOT, env: { ...runtimeEnv, LOG_LEVEL: 'info' }, ready: { log: 'runtime worker ready' }, timeoutMs: 60_000 }),
    spawnHttp(
      'observability',
      entryOf('observability'),
      { ...common, DATABASE_URL: obsDb.url, BULL_PREFIX: bull, INGEST_KEYS: Object.entries(ingestKeys).map(([app, key]) => `${app}:${key}`).join(','), ...opts.env?.observability },
      obsPort,
    ),
    spawnHttp('agent-manager', entryOf('agent-manager'), { ...common, AGENT_MANAGER_PROJECT_DIR: join(tmp, 'agents'), RUNTIME_URL: at(rtPort), OBSERVABILITY_URL: at(obsPort), ...opts.env?.agentManager }, amPort),
    spawnHttp('document-server', entryOf('document-server'), { ...common, DATABASE_URL: docsDb.url, BLOB_DIR: join(tmp, 'blobs'), ...opts.env?.documents }, docPort),
    spawnHttp('broker', entryOf('broker'), { ...common, RUNTIME_URL: at(rtPort), PUBLIC_WS_URL: url.replace(/^http/, 'ws'), APP_ID: appId, ...opts.env?.broker }, brokerPort),
    spawnHttp(
      'bridge',
      entryOf('bridge'),
      {
        ...common,
        BRIDGE_REDIS_PREFIX: `test:platform-bridge:${id}`,
        BACKEND_BRIDGE_PUBLIC_URL: `${url}/api/bridge`,
        OBSERVABILITY_URL: at(obsPort),
        OPENCODE_COMMAND: process.execPath,
        OPENCODE_ARGS: `${join(REPO_ROOT, 'apps/bridge/test/fixtures/stand-in-agent.mjs')} --hostname {host} --port {port}`,
        // A port someone else holds is skipped.
        OPENCODE_BASE_PORT: String(agentPorts),
        OPENCODE_MAX_PORT: String(Math.min(agentPorts + 9, 65_535)),
        // Not under `tmp` (mkdtemp makes it 0700): the sandbox's user must reach its own directory.
        OPENCODE_WORK_ROOT: agentRoot,
        ...opts.env?.bridge,
      },
      bridgePort,
    ),
    spawnHttp(
      'gateway',
      entryOf('gateway'),
      {
        ...common,
        RUNTIME_URL: at(rtPort),
        BROKER_URL: at(brokerPort),
        OBSERVABILITY_URL: at(obsPort),
        AGENTS_URL: at(amPort),
        DOCUMENTS_URL: at(docPort),
        BRIDGE_URL: at(bridgePort),
        RATE_LIMIT_PER_MIN: '0',
        RATE_LIMIT_PREFIX: `test:platform-rl:${id}`,
        ...(opts.consoleDist && { CONSOLE_DIST: opts.consoleDist }),
        ...opts.env?.gateway,
      },
      gwPort,
    ),
  ]);
  const processes = started.filter((s): s is PromiseFulfilledResult<ServiceProcess> => s.status === 'fulfilled').map((s) => s.value);
  const stop = async () => {
    await Promise.all(processes.map((p) => p.stop()));
    await Promise.all([runtimeDb.drop(), obsDb.drop(), docsDb.drop()]);
    rmSync(tmp, { recursive: true, force: true });
    rmSync(agentRoot, { recursive: true, force: true });
  };
  const failed = started.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (failed) {
    await stop();
    throw failed.reason;
  }
  const sign = (claims: { sub: string; [k: string]: unknown }) => signToken(secret, claims, { expiresIn: '1h' });
  const token = await sign({ sub: opts.operator ?? 'platform-operator', apps: [appId], roles: ['operator'] });
  const services = { runtime: at(rtPort), observability: at(obsPort), agentManager: at(amPort), documents: at(docPort), bridge: at(bridgePort), broker: at(brokerPort) };
  return { url, appId, otherAppId, token, sign, serviceKey, ingestKeys, services, processes, stop };
}

/**
 * The real stack the console talks to, as child processes started the way `npm start` starts them
 * (`node --import tsx apps/<app>/src/<entry>.ts`): gateway, broker, runtime and its turn worker,
 * observability, agent manager, document server, bridge. The broker's context source is a
 * CONTEXT_FILE, as `npm start`'s, giving the stack's operator the plan `CONTEXT_PLAN`. Each run has its own ports, PostgreSQL
 * schemas, BullMQ prefix, Redis keys, blob and agent folders, and app id, so it never meets another
 * test file's data. The bridge's agent servers are the bridge tests' stand-in for `opencode serve`
 * (same ready line, auth, health and event stream; it starts in milliseconds and needs no model).
 */
import { randomBytes } from 'node:crypto';
import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { signToken } from '@tessera/kit';
import { closedPort, freshSchema, spawnService, TEST_REDIS_URL, type ServiceProcess } from '@tessera/kit/testing';

export const ROOT = resolve(__dirname, '../../..');
/** The stack's operator, and the plan the broker's context source gives them. */
export const OPERATOR = 'console-operator';
export const CONTEXT_PLAN = 'pro';

export interface Stack {
  /** The gateway's origin; the console is at `${url}/console/`. */
  url: string;
  appId: string;
  /** An operator of `appId` (roles: operator), as `npm start` prints one. */
  token: string;
  /** Signs another token with this stack's secret. */
  sign: (claims: { sub: string; [k: string]: unknown }) => Promise<string>;
  processes: ServiceProcess[];
  stop: () => Promise<void>;
}

async function spawnHttp(name: string, entry: string, env: Record<string, string>, port: number): Promise<ServiceProcess> {
  return spawnService({ name, entry: join(ROOT, entry), cwd: ROOT, env: { ...env, PORT: String(port) }, ready: { url: `http://127.0.0.1:${port}/health` }, timeoutMs: 60_000 });
}

export async function startStack(opts: { workflows?: string } = {}): Promise<Stack> {
  const id = randomBytes(4).toString('hex');
  const secret = `console-test-secret-${randomBytes(16).toString('hex')}`;
  const serviceKey = `console-service-key-${id}-0123456789`;
  const appId = `console-${id}`;
  const [runtimeDb, obsDb, docsDb] = await Promise.all([
    freshSchema(join(ROOT, 'apps/runtime/prisma/migrations'), 'con_rt'),
    freshSchema(join(ROOT, 'apps/observability/prisma/migrations'), 'con_obs'),
    freshSchema(join(ROOT, 'apps/document-server/prisma/migrations'), 'con_doc'),
  ]);
  const [gwPort, rtPort, obsPort, amPort, docPort, bridgePort, agentPorts, brokerPort] = await Promise.all(Array.from({ length: 8 }, () => closedPort()));
  const url = `http://127.0.0.1:${gwPort}`;
  const tmp = mkdtempSync(join(tmpdir(), 'tessera-console-'));
  const agentRoot = join(tmpdir(), `tessera-console-agents-${id}`);
  const workflows = join(tmp, 'workflows');
  cpSync(join(ROOT, 'apps/runtime/workflows'), workflows, { recursive: true });
  cpSync(opts.workflows ?? join(__dirname, 'fixtures/workflows'), workflows, { recursive: true });
  // The host application's backend-only user context (document 000 §3), as npm start's dev-context.json.
  const contextFile = join(tmp, 'context.json');
  writeFileSync(contextFile, JSON.stringify({ '*': { user_tier: 'standard' }, [OPERATOR]: { user_tier: CONTEXT_PLAN, support_priority: 'high' } }));
  const at = (p: number) => `http://127.0.0.1:${p}`;
  const common = {
    NODE_ENV: 'test',
    LOG_LEVEL: 'warn',
    REDIS_URL: TEST_REDIS_URL,
    JWT_SECRET: secret,
    SERVICE_KEY: serviceKey,
    HOST: '127.0.0.1',
    // The console's origin is the gateway's: its fetches and sockets carry it.
    CORS_ORIGINS: url,
    SHUTDOWN_TIMEOUT_MS: '3000',
  };
  const bull = `test-console-${id}`;
  const runtimeEnv = {
    ...common,
    DATABASE_URL: runtimeDb.url,
    BULL_PREFIX: bull,
    WORKFLOWS_DIR: workflows,
    AGENTS_URL: at(amPort),
    // Every turn reads its blueprint afresh: a test's next turn sees an operator's change at once,
    // with no wait for the worker to hear the announcement.
    BLUEPRINT_CACHE_MS: '0',
    DOCUMENTS_URL: 'off',
    WS_MESSAGES_PER_SECOND: '200',
    WS_MESSAGE_BURST: '400',
  };
  const started = await Promise.allSettled([
    spawnHttp('runtime', 'apps/runtime/src/main.ts', runtimeEnv, rtPort),
    spawnService({ name: 'runtime-worker', entry: join(ROOT, 'apps/runtime/src/worker.ts'), cwd: ROOT, env: { ...runtimeEnv, LOG_LEVEL: 'info' }, ready: { log: 'runtime worker ready' }, timeoutMs: 60_000 }),
    spawnHttp('observability', 'apps/observability/src/main.ts', { ...common, DATABASE_URL: obsDb.url, BULL_PREFIX: bull, INGEST_KEYS: `${appId}:ingest-${id}-0123456789` }, obsPort),
    spawnHttp('agent-manager', 'apps/agent-manager/src/main.ts', { ...common, AGENT_MANAGER_PROJECT_DIR: join(tmp, 'agents'), RUNTIME_URL: at(rtPort), OBSERVABILITY_URL: at(obsPort) }, amPort),
    spawnHttp('broker', 'apps/broker/src/main.ts', { ...common, RUNTIME_URL: at(rtPort), PUBLIC_WS_URL: url.replace(/^http/, 'ws'), APP_ID: appId, CONTEXT_FILE: contextFile }, brokerPort),
    spawnHttp('document-server', 'apps/document-server/src/main.ts', { ...common, DATABASE_URL: docsDb.url, BLOB_DIR: join(tmp, 'blobs') }, docPort),
    spawnHttp(
      'bridge',
      'apps/bridge/src/main.ts',
      {
        ...common,
        BRIDGE_REDIS_PREFIX: `test:console-bridge:${id}`,
        BACKEND_BRIDGE_PUBLIC_URL: `${url}/api/bridge`,
        // A session is the app and user of the token that bootstraps it (the gateway passes it on), and
        // observability gets its events under them: the stack's operator of `appId` sees its own.
        // Agent servers run in the bridge's default sandbox (bubblewrap), as `npm start` runs them.
        OBSERVABILITY_URL: at(obsPort),
        OPENCODE_COMMAND: process.execPath,
        OPENCODE_ARGS: `${join(ROOT, 'apps/bridge/test/fixtures/stand-in-agent.mjs')} --hostname {host} --port {port}`,
        // A port someone else holds is skipped.
        OPENCODE_BASE_PORT: String(agentPorts),
        OPENCODE_MAX_PORT: String(Math.min(agentPorts + 9, 65_535)),
        // Not under `tmp` (mkdtemp makes it 0700): the sandbox's user must reach its own directory.
        OPENCODE_WORK_ROOT: agentRoot,
      },
      bridgePort,
    ),
    spawnHttp(
      'gateway',
      'apps/gateway/src/main.ts',
      {
        ...common,
        RUNTIME_URL: at(rtPort),
        BROKER_URL: at(brokerPort),
        OBSERVABILITY_URL: at(obsPort),
        AGENTS_URL: at(amPort),
        DOCUMENTS_URL: at(docPort),
        BRIDGE_URL: at(bridgePort),
        RATE_LIMIT_PER_MIN: '0',
        RATE_LIMIT_PREFIX: `test:console-rl:${id}`,
        CONSOLE_DIST: join(ROOT, 'apps/console/dist'),
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
  const token = await sign({ sub: OPERATOR, apps: [appId], roles: ['operator'] });
  return { url, appId, token, sign, processes, stop };
}

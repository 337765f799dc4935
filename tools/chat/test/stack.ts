/**
 * What `npm run chat` talks to, as processes started the way `npm start` starts them
 * (`node --import tsx apps/<app>/src/<entry>.ts`): the runtime's API and its turn worker on a fresh
 * PostgreSQL schema and BullMQ prefix, the session broker (app demo-app, npm start's development
 * context file), and the gateway in front, which a test can kill and start again on its port.
 * The other services are "not deployed" (`off`).
 */
import { randomBytes } from 'node:crypto';
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { closedPort, freshSchema, spawnService, testPrefix, TEST_REDIS_URL, type ServiceProcess } from '@tessera/kit/testing';

export const ROOT = resolve(__dirname, '../../..');
/** The runtime's socket heartbeat: a conversation of these tests outlasts several. */
export const HEARTBEAT_MS = 1_000;

export interface ChatStack {
  /** The gateway's origin. */
  url: string;
  secret: string;
  /** Kills the gateway at once (no close frames: a dropped connection) and waits until it is gone. */
  killGateway(): Promise<void>;
  /** Starts the gateway again on the same port. */
  startGateway(): Promise<void>;
  stop(): Promise<void>;
}

function spawnHttp(name: string, entry: string, env: Record<string, string>, port: number): Promise<ServiceProcess> {
  return spawnService({ name, entry: join(ROOT, entry), cwd: ROOT, env: { ...env, PORT: String(port) }, ready: { url: `http://127.0.0.1:${port}/health` }, timeoutMs: 60_000 });
}

export async function startChatStack(): Promise<ChatStack> {
  const id = randomBytes(4).toString('hex');
  const secret = `chat-test-secret-${randomBytes(16).toString('hex')}`;
  const serviceKey = `chat-test-service-key-${id}-0123456789`;
  const [db, gwPort, rtPort, brokerPort] = await Promise.all([freshSchema(join(ROOT, 'apps/runtime/prisma/migrations'), 'chat'), closedPort(), closedPort(), closedPort()]);
  const url = `http://127.0.0.1:${gwPort}`;
  const workflows = mkdtempSync(join(tmpdir(), 'tessera-chat-workflows-'));
  cpSync(join(ROOT, 'apps/runtime/workflows'), workflows, { recursive: true });
  cpSync(join(__dirname, 'workflows'), workflows, { recursive: true });
  const common = { NODE_ENV: 'test', LOG_LEVEL: 'warn', REDIS_URL: TEST_REDIS_URL, JWT_SECRET: secret, SERVICE_KEY: serviceKey, HOST: '127.0.0.1', SHUTDOWN_TIMEOUT_MS: '3000' };
  const runtimeEnv = {
    ...common,
    DATABASE_URL: db.url,
    BULL_PREFIX: `test-chat-${id}`,
    WORKFLOWS_DIR: workflows,
    AGENTS_URL: 'off',
    DOCUMENTS_URL: 'off',
    OBSERVABILITY_EVENTS: 'false',
    WS_HEARTBEAT_MS: String(HEARTBEAT_MS),
  };
  const gatewayEnv = {
    ...common,
    RUNTIME_URL: `http://127.0.0.1:${rtPort}`,
    BROKER_URL: `http://127.0.0.1:${brokerPort}`,
    OBSERVABILITY_URL: 'off',
    AGENTS_URL: 'off',
    DOCUMENTS_URL: 'off',
    BRIDGE_URL: 'off',
    RATE_LIMIT_PREFIX: testPrefix('chat-rl'),
  };
  const processes: ServiceProcess[] = [];
  let gateway: ServiceProcess | null = null;
  const stop = async () => {
    await Promise.all([...processes, gateway].map((p) => p?.stop()));
    rmSync(workflows, { recursive: true, force: true });
    await db.drop();
  };
  const started = await Promise.allSettled([
    spawnHttp('runtime', 'apps/runtime/src/main.ts', runtimeEnv, rtPort),
    spawnService({ name: 'runtime-worker', entry: join(ROOT, 'apps/runtime/src/worker.ts'), cwd: ROOT, env: { ...runtimeEnv, LOG_LEVEL: 'info' }, ready: { log: 'runtime worker ready' }, timeoutMs: 60_000 }),
    spawnHttp(
      'broker',
      'apps/broker/src/main.ts',
      { ...common, RUNTIME_URL: `http://127.0.0.1:${rtPort}`, PUBLIC_WS_URL: url.replace(/^http/, 'ws'), APP_ID: 'demo-app', CONTEXT_FILE: join(ROOT, 'tools/scripts/dev-context.json') },
      brokerPort,
    ),
    spawnHttp('gateway', 'apps/gateway/src/main.ts', gatewayEnv, gwPort),
  ]);
  for (const s of started) if (s.status === 'fulfilled') processes.push(s.value);
  const failed = started.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (failed) {
    await stop();
    throw failed.reason;
  }
  gateway = processes.pop()!;
  return {
    url,
    secret,
    killGateway: async () => {
      await gateway?.stop('SIGKILL');
      gateway = null;
    },
    startGateway: async () => {
      gateway = await spawnHttp('gateway', 'apps/gateway/src/main.ts', gatewayEnv, gwPort);
    },
    stop,
  };
}

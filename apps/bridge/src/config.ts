import { hostname } from 'node:os';
import { resolve } from 'node:path';
import { z } from 'zod';
import { BaseEnv, checkBaseEnv, env, loadConfig } from '@tessera/kit';

const serviceUrl = (def: string) =>
  z
    .string()
    .default(def)
    .refine((s) => s === 'off' || URL.canParse(s), 'must be a URL or "off"')
    .transform((s) => (s === 'off' ? null : s.replace(/\/+$/, '')));

/** The bridge's environment (document 004 §Configuration). Local defaults make `npm start` work with no .env. */
export const BridgeEnv = BaseEnv.extend({
  PORT: env.port(3000),
  /** How agent servers' MCP processes call the bridge back (`/api/session/{id}/info`). */
  BACKEND_BRIDGE_INTERNAL_URL: z.url().optional(),
  /** The public (proxied) base of `websocketUrl`, e.g. `https://host/api/bridge` behind the gateway. */
  BACKEND_BRIDGE_PUBLIC_URL: z.url().optional(),
  /** The agent server: a command and its arguments (`{host}`, `{port}` are filled in). */
  OPENCODE_COMMAND: z.string().min(1).default(resolve(process.cwd(), 'node_modules/.bin/opencode')),
  OPENCODE_ARGS: z.string().default('serve --hostname {host} --port {port}'),
  /** Address agent servers listen on, and the host named in `opencodeUrl`. */
  OPENCODE_HOST: z.string().min(1).default('127.0.0.1'),
  OPENCODE_PUBLIC_HOST: z.string().min(1).optional(),
  OPENCODE_BASE_PORT: env.port(30001),
  OPENCODE_MAX_PORT: env.port(30100),
  /** Agent servers on this instance at once (each idles at about 330 MB). */
  OPENCODE_MAX_SERVERS: env.int(10, 1),
  /** Agent servers one user may hold at once, across every instance (429 past it). */
  OPENCODE_MAX_SERVERS_PER_USER: env.int(2, 1),
  /** Agent servers one app may hold at once, across every instance (429 past it). */
  OPENCODE_MAX_SERVERS_PER_APP: env.int(20, 1),
  OPENCODE_IDLE_TIMEOUT: env.int(30 * 60_000, 500),
  /** A session that no request and no socket used since its bootstrap is closed after this long. */
  OPENCODE_UNUSED_TIMEOUT: env.int(2 * 60_000, 500),
  OPENCODE_CLEANUP_INTERVAL: env.int(60_000, 100),
  OPENCODE_START_TIMEOUT_MS: env.int(30_000, 1_000),
  /** One health probe's bound: a probe sent while OpenCode starts can hang for a minute. */
  OPENCODE_HEALTH_TIMEOUT_MS: env.int(1_500, 100),
  /** Where each server's working directory is made (removed with the server). */
  OPENCODE_WORK_ROOT: z.string().optional(),
  /** An MCP server (command line) the agent server starts, with the session's callback in its environment. */
  OPENCODE_MCP_COMMAND: z.string().optional(),
  OPENCODE_CORS_ORIGINS: env.list([]),
  DEFAULT_MODEL: z.string().optional(),
  /**
   * How agent servers are confined: `bwrap` (bubblewrap: an unprivileged user, its own PID, IPC
   * and UTS namespaces, a filesystem of its workspace and read-only system directories) or `off`
   * (the agent server runs as the bridge does: only for a machine nobody else uses).
   */
  AGENT_SANDBOX: z.enum(['bwrap', 'off']).default('bwrap'),
  BWRAP_PATH: z.string().min(1).default('/usr/bin/bwrap'),
  /** The system user agent servers run as when the bridge runs as root (`npm start` creates it). */
  AGENT_SANDBOX_USER: z.string().min(1).default('tessera-agent'),
  /** Variables of the bridge's environment that agent servers get (model providers' keys); nothing else is passed on. */
  AGENT_ENV: env.list(['OPENAI_API_KEY', 'OPENAI_BASE_URL', 'ANTHROPIC_API_KEY', 'ANTHROPIC_BASE_URL', 'OPENROUTER_API_KEY', 'GOOGLE_GENERATIVE_AI_API_KEY', 'GROQ_API_KEY', 'MISTRAL_API_KEY', 'DEEPSEEK_API_KEY', 'XAI_API_KEY', 'OLLAMA_HOST', 'HTTPS_PROXY', 'HTTP_PROXY', 'NO_PROXY']),
  /** Operators (OPERATOR_CLAIM holding OPERATOR_ROLE) see and close every session of their token's apps. */
  OPERATOR_CLAIM: z.string().min(1).default('roles'),
  OPERATOR_ROLE: z.string().min(1).default('operator'),
  /** The app of a session bootstrapped with a token that allows any app and names none (local development). */
  DEFAULT_APP_ID: z.string().min(1).default('demo-app'),
  /** Session events and stops: `off` sends none. */
  OBSERVABILITY_URL: serviceUrl('http://127.0.0.1:8765'),
  /** Redis keys of this deployment (tests give each file its own). */
  BRIDGE_REDIS_PREFIX: z.string().min(1).default('tessera:bridge'),
  /** The start of this process's name in Redis (the host name by default); the pid and a random tail make it unique per start. */
  BRIDGE_INSTANCE_ID: z.string().min(1).optional(),
  /** Signs session tokens; every instance must share it (SERVICE_KEY when unset). */
  BRIDGE_TOKEN_SECRET: z.string().min(16).optional(),
  WS_HEARTBEAT_MS: env.int(30_000, 100),
  WS_MAX_PAYLOAD: env.int(256 * 1024, 1024),
})
  .superRefine(checkBaseEnv)
  .superRefine((c, ctx) => {
    if (c.OPENCODE_MAX_PORT < c.OPENCODE_BASE_PORT) ctx.addIssue({ code: 'custom', path: ['OPENCODE_MAX_PORT'], message: 'must not be below OPENCODE_BASE_PORT' });
  });
export type BridgeConfig = z.infer<typeof BridgeEnv> & {
  instanceId: string;
  tokenSecret: string;
  /** What agent servers get of this process's environment (agentEnvironment). */
  agentEnv: Record<string, string>;
};

/** Never passed on, even when AGENT_ENV names them: the platform's own secrets and addresses. */
const PLATFORM_VARIABLES = /^(JWT_|JWKS_|SERVICE_KEY$|BRIDGE_|DATABASE_|REDIS_|INGEST_KEYS$|S3_|BACKEND_BRIDGE_|OBSERVABILITY_|TESSERA_|PG)/;
const LOCALE = /^(LANG|LANGUAGE|LC_[A-Z]+|TZ)$/;

/**
 * What an agent server gets of the bridge's environment: an allow-list (the locale, and the
 * variables AGENT_ENV names: model providers' keys the operator set for the agents), never the
 * platform's own secrets and addresses. An agent's tools run shell commands; whatever it gets,
 * the user it works for can read.
 */
export function agentEnvironment(parent: NodeJS.ProcessEnv, names: string[]): Record<string, string> {
  const allowed = new Set(names);
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(parent)) {
    if (v === undefined || PLATFORM_VARIABLES.test(k)) continue;
    if (allowed.has(k) || LOCALE.test(k)) out[k] = v;
  }
  return out;
}

export function loadBridgeConfig(e: Record<string, string | undefined> = process.env): BridgeConfig {
  const c = loadConfig(BridgeEnv, { ...e, PORT: e.PORT || e.BRIDGE_PORT });
  return {
    ...c,
    instanceId: `${c.BRIDGE_INSTANCE_ID ?? hostname()}-${process.pid}-${Math.random().toString(36).slice(2, 6)}`,
    tokenSecret: c.BRIDGE_TOKEN_SECRET ?? `bridge-session:${c.SERVICE_KEY}`,
    agentEnv: agentEnvironment(e, c.AGENT_ENV),
  };
}

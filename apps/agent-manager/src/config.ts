import { resolve } from 'node:path';
import { z } from 'zod';
import { agents } from '@tessera/contracts';
import { BaseEnv, checkBaseEnv, env, loadConfig } from '@tessera/kit';

/** A service's base URL, or `off` when it is not deployed (its check is skipped). */
const serviceUrl = (def: string) =>
  z
    .string()
    .default(def)
    .refine((s) => s === 'off' || URL.canParse(s), 'must be a URL or "off"')
    .transform((s) => (s === 'off' ? null : s.replace(/\/+$/, '')));

/** The agent manager's environment. Local defaults make `npm start` work with no .env. */
export const AgentManagerEnv = BaseEnv.extend({
  PORT: env.port(8767),
  /** The project whose `.agent-orchestrator/apps/{app}/agents/` hold each app's agents (the command-line tools' layout within an app's folder). */
  AGENT_MANAGER_PROJECT_DIR: z
    .string()
    .min(1)
    .default(process.cwd())
    .transform((p) => resolve(p)),
  /**
   * Agents belong to an app (`.agent-orchestrator/apps/{app}/agents/`). This app receives the
   * folders of before apps (`.agent-orchestrator/agents/*`, moved at start) and is where a token
   * allowing any app acts when it names none.
   */
  DEFAULT_APP_ID: agents.AgentAppId.default('demo-app'),
  /** Asked before an agent is deleted or deactivated: which running sessions use it. */
  RUNTIME_URL: serviceUrl('http://127.0.0.1:8000'),
  OBSERVABILITY_URL: serviceUrl('http://127.0.0.1:8765'),
  SESSION_CHECK_TIMEOUT_MS: env.int(3_000, 100),
  /** Token claim holding the caller's roles (a string or an array), and the role that may change agents. */
  OPERATOR_CLAIM: z.string().min(1).default('roles'),
  OPERATOR_ROLE: z.string().min(1).default('operator'),
  /** Pick up hand edits of the files as they happen; 0 = native file events, more = poll every so many ms (network file systems). */
  WATCH_POLL_MS: env.int(0, 0),
  /** A full pass over every agent's files, for changes the file events missed; 0 = none. */
  RECONCILE_INTERVAL_MS: env.int(60_000, 0),
  /** A lock not refreshed for this long belongs to a dead process and is taken over. */
  LOCK_STALE_MS: env.int(10_000, 2_000),
}).superRefine(checkBaseEnv);
export type AgentManagerConfig = z.infer<typeof AgentManagerEnv>;

/**
 * Document 001 §7 names the project directory AGENT_MANAGER_PROJECT_DIR "or use existing
 * AGENT_ORCHESTRATOR_PROJECT_DIR", and the listen address AGENT_MANAGER_HOST/PORT: both spellings work.
 */
export function loadAgentManagerConfig(e: Record<string, string | undefined> = process.env): AgentManagerConfig {
  return loadConfig(AgentManagerEnv, {
    ...e,
    AGENT_MANAGER_PROJECT_DIR: e.AGENT_MANAGER_PROJECT_DIR || e.AGENT_ORCHESTRATOR_PROJECT_DIR,
    PORT: e.PORT || e.AGENT_MANAGER_PORT,
    HOST: e.HOST || e.AGENT_MANAGER_HOST,
  });
}

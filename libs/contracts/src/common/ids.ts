import { z } from 'zod';

/** Identifiers that appear in URL paths: no slashes, no whitespace, bounded. */
export const PathId = z
  .string()
  .min(1)
  .max(128)
  .regex(/^[A-Za-z0-9._:@-]+$/, 'only letters, digits and . _ : @ - are allowed');
export const AppId = PathId.describe('Tenant / application boundary');
/** An app id that is also a folder name (the agent manager keeps an app's agents in its folder): never `.`, `..` or hidden. */
export const AgentAppId = AppId.refine((a) => !a.startsWith('.'), 'must not start with "."');
/**
 * The token's subject, as identity providers spell it: Auth0's `auth0|abc` and
 * `google-oauth2|1234`, base64-ish ids with `+ = ~`. Still nothing that splits or ends a path
 * (`/ ? # %`), no whitespace, no control characters.
 */
export const UserId = z
  .string()
  .min(1)
  .max(128)
  .regex(/^[A-Za-z0-9._:@|+=~-]+$/, 'only letters, digits and . _ : @ | + = ~ - are allowed')
  .describe('Authenticated principal');
export const ChatId = PathId.describe('Chat (run/session) id');
/** A workflow file's name (its folder's). */
export const WorkflowFileName = z
  .string()
  .min(1)
  .max(64)
  .regex(/^[A-Za-z0-9_-]+$/, 'workflow names are letters, digits, _ and -');
/**
 * `agent.<name>` names the one-agent workflow the runtime makes of the app's agent-manager agent
 * `<name>`: a chat with that agent, started, opened and resumed like any workflow's. No file can
 * take the name (a file's has no dot).
 */
export const AGENT_WORKFLOW_PREFIX = 'agent.';
export const WorkflowName = z
  .string()
  .min(1)
  .max(70)
  .regex(/^(?:[A-Za-z0-9_-]{1,64}|agent\.[A-Za-z0-9][A-Za-z0-9-]{0,59})$/, 'workflow names are letters, digits, _ and - (or agent.<agent name>: a chat with an agent)');

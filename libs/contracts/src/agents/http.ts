import { z } from 'zod';
import { AgentChangeAnnouncement } from '../bus/channels';
import { AgentAppId } from '../common/ids';
import { SafeText } from '../common/safe';

/**
 * Agent manager (document 001 §2): agent blueprints an operator edits, each an app's, stored as the
 * files the command-line tools read (`.agent-orchestrator/agents/{name}/`'s layout, in the app's
 * folder `.agent-orchestrator/apps/{app}/agents/{name}/`). Reached through the gateway at
 * `/api/agents/*`; the runtime reads a blueprint's system prompt from here.
 */

/**
 * Blueprints belong to an app: every request acts within one. A token allowing one app acts in
 * it; one allowing several names one (`app_id` query or this header); the service key always
 * names the app it acts for. A token allowing any app (no `apps` claim) acts in the named app,
 * else in the agent manager's DEFAULT_APP_ID.
 */
export const AGENT_APP_HEADER = 'x-tessera-app';
export { AgentAppId };
export const AppQuery = z.object({ app_id: AgentAppId.optional().describe(`The app to act in (or the ${AGENT_APP_HEADER} header); needed when the token allows several`) });

export const AGENT_NAME_RULE = 'letters, digits and hyphens, starting with a letter or digit, at most 60 characters';
/** Device names Windows refuses as file names whatever the extension: a folder named so cannot be made or copied there. */
const RESERVED = /^(con|prn|aux|nul|com[0-9]|lpt[0-9])$/i;

/** A name is also a folder name: this rule alone keeps every name inside the agents folder. */
export const AgentName = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9-]{0,59}$/, `must be ${AGENT_NAME_RULE}`)
  .refine((n) => !RESERVED.test(n), 'is a reserved device name (con, prn, aux, nul, com0-9, lpt0-9)');

export const AgentStatus = z.enum(['active', 'inactive']);
export type AgentStatus = z.infer<typeof AgentStatus>;

/** Names of MCP servers and skills as the command-line tools key them. */
const ItemName = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, 'must be letters, digits, ".", "_" or "-", starting with a letter or digit, at most 64 characters');

export const MAX_PROMPT_CHARS = 200_000;
const Description = SafeText.pipe(z.string().trim().min(1, 'is required').max(2_000));
const SystemPrompt = SafeText.pipe(z.string().min(1, 'is required').max(MAX_PROMPT_CHARS)).refine((s) => s.trim() !== '', 'is required');

/** How a server is started: `agent.mcp.json`'s `{"mcpServers": {name: {command, args, env?}}}` entries. */
export const McpServerDefinition = z.object({
  command: SafeText.pipe(z.string().min(1).max(4_096)),
  args: z.array(SafeText.pipe(z.string().max(4_096))).max(100).default([]),
  env: z.record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'must be an environment variable name'), SafeText.pipe(z.string().max(4_096))).optional(),
});
export type McpServerDefinition = z.infer<typeof McpServerDefinition>;

/**
 * An entry of `mcp_servers` in a request: a name (its definition is the agent's own, or the
 * project's `.mcp.json`; a name defined in neither is kept and reported in
 * `unresolved_mcp_servers`), or a name with its definition.
 */
export const McpServerRef = z.union([ItemName, McpServerDefinition.extend({ name: ItemName })]);
export type McpServerRef = z.infer<typeof McpServerRef>;

const McpServers = z.array(McpServerRef).max(50);
const Skills = z.array(ItemName).max(100);

export const Agent = z
  .object({
    name: z.string(),
    description: z.string(),
    system_prompt: z.string(),
    mcp_servers: z.array(z.string()).describe('Names of the agent\'s MCP servers, in the order given; those with a definition are in agent.mcp.json'),
    unresolved_mcp_servers: z
      .array(z.string())
      .default([])
      .describe('Names of mcp_servers that nothing defines (neither the request, the agent, nor the project\'s .mcp.json when they were set): kept, not started until defined'),
    skills: z.array(z.string()),
    status: AgentStatus,
    created_at: z.string(),
    updated_at: z.string(),
  })
  .meta({ id: 'Agent' });
export type Agent = z.infer<typeof Agent>;

export const AgentsReply = z.array(Agent).meta({ id: 'AgentsReply' });

export const CreateAgentBody = z
  .object({ name: AgentName, description: Description, system_prompt: SystemPrompt, mcp_servers: McpServers.default([]), skills: Skills.default([]) })
  .strict()
  .meta({ id: 'CreateAgentBody' });
export type CreateAgentBody = z.infer<typeof CreateAgentBody>;

/** Partial: only the fields given change. */
export const UpdateAgentBody = z
  .object({ description: Description, system_prompt: SystemPrompt, mcp_servers: McpServers, skills: Skills })
  .partial()
  .strict()
  .meta({ id: 'UpdateAgentBody' });
export type UpdateAgentBody = z.infer<typeof UpdateAgentBody>;

export const StatusBody = z.object({ status: AgentStatus }).strict().meta({ id: 'AgentStatusBody' });

export const AgentParams = z.object({ name: AgentName });
export const VersionParams = z.object({ name: AgentName, version: z.coerce.number().int().min(1).max(Number.MAX_SAFE_INTEGER) });

/** `?force=true`: delete or deactivate although sessions use the agent. */
export const ForceQuery = z.object({ force: z.enum(['true', 'false']).default('false').transform((v) => v === 'true') });

export const DeleteAgentReply = z.object({ success: z.literal(true), message: z.string() }).meta({ id: 'DeleteAgentReply' });

/** What made a version: a change through this API, or files edited by hand or by the command-line tools. */
export const VersionChange = z.enum(['created', 'updated', 'status', 'restored', 'deleted', 'edited_by_hand']);
export type VersionChange = z.infer<typeof VersionChange>;

/** One state of an agent, kept for good: version 1 is its first; the newest is what it is now. */
export const AgentVersion = z
  .object({
    version: z.number().int().positive(),
    saved_at: z.string(),
    change: VersionChange,
    restored_from: z.number().int().optional(),
    /** Null for a deletion. */
    agent: Agent.nullable(),
  })
  .meta({ id: 'AgentVersion' });
export type AgentVersion = z.infer<typeof AgentVersion>;

export const VersionsReply = z.object({ name: z.string(), versions: z.array(AgentVersion).describe('Newest first') }).meta({ id: 'AgentVersionsReply' });

/** A session that uses an agent, named in a refused delete or deactivation (409 details). */
export const SessionInUse = z.object({
  session_id: z.string(),
  source: z.enum(['runtime', 'observability']),
  workflow: z.string().nullable(),
  app_id: z.string().nullable(),
  status: z.string(),
});
export type SessionInUse = z.infer<typeof SessionInUse>;

/** What `Channel.agentChanges` carries (defined with the channel, bus/channels.ts). */
export { AgentChangeAnnouncement };

/** `?app_id=` of the runtime's active-chats question: open chats of that app only. */
export const ActiveChatsQuery = z.object({ app_id: AgentAppId });

/** The runtime's `GET /api/internal/blueprints/{name}/active-chats?app_id=` (service key only). */
export const ActiveChatsReply = z
  .object({
    blueprint: z.string(),
    workflows: z.array(z.string()).describe('Workflows with an agent on this blueprint'),
    chats: z.array(z.object({ chat_id: z.string(), app_id: z.string(), workflow_name: z.string(), status: z.string(), updated_at: z.string() })),
    /** All open chats, when more than `chats` lists. */
    total: z.number().int(),
  })
  .meta({ id: 'BlueprintActiveChatsReply' });
export type ActiveChatsReply = z.infer<typeof ActiveChatsReply>;

import { z } from 'zod';

/**
 * Redis pub/sub channels with their message schemas. A channel is either a fixed name or a
 * function of an id; `Channel.x.name(id)` gives the concrete channel.
 */

/** A timeline event as stored and delivered: the chat's increasing index is the order. */
export const TimelineEvent = z.object({
  index: z.number().int().positive(),
  type: z.string(),
  data: z.record(z.string(), z.unknown()),
  timestamp: z.string(),
});
export type TimelineEvent = z.infer<typeof TimelineEvent>;

/**
 * Events appended in one write, published as one message, in index order. Each carries its
 * client envelope already serialised (`wire`), so a socket server parses a batch once and
 * writes each envelope to its sockets as is.
 */
export const ChatEventBatch = z.object({
  chat_id: z.string(),
  events: z.array(z.object({ index: z.number().int().positive(), type: z.string(), wire: z.string() })).min(1),
});
export type ChatEventBatch = z.infer<typeof ChatEventBatch>;

/**
 * A stop names the session by its app and id: a session id is an app's (observability keys
 * sessions by both), so a consumer acts only on a stop naming its own chat's/session's app.
 */
export const SessionControl = z.discriminatedUnion('action', [
  z.object({
    action: z.literal('stop'),
    session_id: z.string().describe('chat id / bridge session id'),
    app_id: z.string().min(1).describe("the session's app: only that app's chat or bridge session stops"),
    reason: z.string().optional(),
    requested_by: z.string().optional(),
  }),
]);
export type SessionControl = z.infer<typeof SessionControl>;

/**
 * What observability instances tell each other's live sockets, after it is stored: one message per
 * ingested batch (its events by session, with the sessions as they now are), or a deletion.
 * Payloads are the service's reply shapes (contracts/observability), kept loose here so the bus
 * does not depend on them.
 */
export const ObservabilityLive = z.discriminatedUnion('kind', [
  z.object({
    kind: z.literal('ingested'),
    app_ids: z.array(z.string().nullable()),
    sessions: z.array(z.record(z.string(), z.unknown())),
    events: z.array(z.object({ session_id: z.string(), seq: z.number().int(), wire: z.string() })),
  }),
  z.object({ kind: z.literal('session_updated'), app_id: z.string().nullable(), session: z.record(z.string(), z.unknown()) }),
  z.object({ kind: z.literal('session_deleted'), app_id: z.string().nullable(), session_id: z.string() }),
]);
export type ObservabilityLive = z.infer<typeof ObservabilityLive>;

/**
 * An agent blueprint changed in the agent manager, through its API or by hand in its files:
 * whoever caches blueprints (the runtime) drops its copy of `name`.
 */
export const AgentChange = z.object({
  kind: z.enum(['created', 'updated', 'deleted']),
  name: z.string(),
  /** The agent's version after the change (its history: `GET /agents/{name}/versions`). */
  version: z.number().int(),
  source: z.enum(['api', 'files']),
  status: z.enum(['active', 'inactive']).nullable(),
  at: z.string(),
});
export type AgentChange = z.infer<typeof AgentChange>;

export const Channel = {
  chatEvents: { name: (chatId: string) => `tessera:chat:${chatId}:events`, schema: ChatEventBatch },
  sessionControl: { name: () => 'tessera:control:sessions', schema: SessionControl },
  observabilityLive: { name: () => 'tessera:observability:live', schema: ObservabilityLive },
  agentChanges: { name: () => 'tessera:agents:changes', schema: AgentChange },
} as const;

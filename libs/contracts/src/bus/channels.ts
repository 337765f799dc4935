import { z } from 'zod';
import { CloseReason } from '../bridge/ws';
import { AgentAppId } from '../common/ids';

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
  /**
   * A newer message of the chat (multitask_strategy `interrupt` or `rollback`) superseded the
   * turn running its older input: the worker running a turn of the chat whose input came before
   * `before_seq` cuts it off. The inputs are already cancelled in the database when this is sent.
   */
  z.object({
    action: z.literal('interrupt'),
    session_id: z.string().describe('chat id'),
    app_id: z.string().min(1),
    before_seq: z.string().regex(/^\d+$/).describe("the newer input's seq: a turn of an input before it is cut off"),
    rollback: z.boolean().describe('drop what the cut-off turn said from the conversation'),
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

/**
 * An agent change as announced on `Channel.agentChanges`: `AgentChange` plus the app whose agent
 * changed (a cache drops that app's copy only). Absent from an agent manager older than apps: the
 * name is dropped in every app.
 */
export const AgentChangeAnnouncement = AgentChange.extend({ app_id: AgentAppId.optional() });
export type AgentChangeAnnouncement = z.infer<typeof AgentChangeAnnouncement>;

/**
 * What bridge instances tell each other on their deployment's one channel. Every socket of a
 * session hears its session's messages in one order, whichever instance published them.
 */
export const BridgeSessionMessage = z.discriminatedUnion('kind', [
  /** An envelope for the session's sockets, serialised once by the publisher (bridge/ws SessionEnvelope). */
  z.object({ kind: z.literal('envelope'), sessionId: z.string(), wire: z.string() }),
  /** Close the session's sockets (the session is gone); `wire` is the `session.closed` envelope. */
  z.object({ kind: z.literal('closed'), sessionId: z.string(), reason: CloseReason, wire: z.string() }),
  /** Ask the instance that holds the agent server to close the session. */
  z.object({ kind: z.literal('close'), sessionId: z.string(), instance: z.string(), reason: CloseReason }),
  /** A request was resolved, timed out or cancelled: its waiter reads the outcome. */
  z.object({ kind: z.literal('settled'), requestId: z.string() }),
]);
export type BridgeSessionMessage = z.infer<typeof BridgeSessionMessage>;

/**
 * Every channel, keyed: its name (fixed, or a function of an id) and its message schema. The kit's
 * `BusPublisher` and `BusSubscriber` validate with these at both ends.
 */
export const Channel = {
  // The chat id is a hash tag: on a Redis Cluster the channel is on the slot of the chat's timeline tail, whose script publishes on it.
  chatEvents: { name: (chatId: string) => `tessera:chat:{${chatId}}:events`, schema: ChatEventBatch },
  sessionControl: { name: () => 'tessera:control:sessions', schema: SessionControl },
  observabilityLive: { name: () => 'tessera:observability:live', schema: ObservabilityLive },
  agentChanges: { name: () => 'tessera:agents:changes', schema: AgentChangeAnnouncement },
  /** One per bridge deployment, under its Redis prefix (`BRIDGE_REDIS_PREFIX`). */
  bridgeSessions: { name: (prefix: string) => `${prefix}:bus`, schema: BridgeSessionMessage },
} as const satisfies Record<string, { name: (...ids: string[]) => string; schema: z.ZodType }>;
export type ChannelKey = keyof typeof Channel;
export type ChannelMessage<K extends ChannelKey> = z.infer<(typeof Channel)[K]['schema']>;

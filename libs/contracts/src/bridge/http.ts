import { z } from 'zod';
import { SafeJsonRecord, SafeText } from '../common/safe';

/**
 * Backend bridge (document 004): a host application bootstraps a session and gets its own
 * OpenCode agent server plus a session-scoped WebSocket channel. Reached through the gateway at
 * `/api/bridge/*` (the bridge's own `/api/*`).
 */

const Text = (max: number) => SafeText.pipe(z.string().max(max));

/** Session context used by the MCP tools of the session's agent server. */
export const SessionInfoBody = z
  .object({
    tenantId: Text(256).optional(),
    groupId: Text(256).optional(),
    entityType: Text(256).optional(),
    app: Text(256).optional(),
  })
  .strict()
  .meta({ id: 'BridgeSessionInfoBody' });
export type SessionInfoBody = z.infer<typeof SessionInfoBody>;

export const SessionInfo = SessionInfoBody.extend({ updatedAt: z.string() }).meta({ id: 'BridgeSessionInfo' });
export type SessionInfo = z.infer<typeof SessionInfo>;

export const SessionInfoReply = SessionInfo.extend({ sessionId: z.string() }).meta({ id: 'BridgeSessionInfoReply' });

export const BootstrapBody = z
  .object({
    scadaUrl: Text(2_048).refine((s) => URL.canParse(s) && /^https?:$/.test(new URL(s).protocol), 'must be an http(s) URL'),
    accessToken: Text(16_384).pipe(z.string().min(1)),
    model: Text(256)
      .pipe(z.string().regex(/^[\w.-]+\/[\w.:@-]+$/, 'must be provider/model'))
      .optional(),
    sessionInfo: SessionInfoBody.optional(),
    appId: Text(128)
      .pipe(z.string().min(1))
      .optional()
      .describe("The app the session belongs to: with a user token, one of the token's apps (needed when the token allows more than one); with the service key, required"),
    userId: Text(256)
      .pipe(z.string().min(1))
      .optional()
      .describe("The session's owner: with the service key, required; with a user token, the token's subject (another value is refused)"),
  })
  .meta({ id: 'BridgeBootstrapBody' });
export type BootstrapBody = z.infer<typeof BootstrapBody>;

export const BootstrapReply = z
  .object({
    sessionId: z.string(),
    isNew: z.boolean(),
    scadaUrl: z.string(),
    opencodeUrl: z.string().describe('The agent server; HTTP basic auth with opencodeAuth'),
    opencodeAuth: z.object({ username: z.string(), password: z.string() }),
    opencodeSessionId: z.string().nullable().describe("A session created on the agent server at its start (null for a stand-in that has none)"),
    websocketUrl: z.string().describe("The session socket, with the session's token in its query: open it as it is"),
    sessionToken: z
      .string()
      .describe("This session's own credential (X-Session-Token, ?sessionToken= or Bearer) for its /api/session/{sessionId}/* calls and socket; the owner's platform token works too"),
    appId: z.string(),
    userId: z.string(),
    model: z.string().nullable(),
    sessionInfo: SessionInfo,
  })
  .meta({ id: 'BridgeBootstrapReply' });
export type BootstrapReply = z.infer<typeof BootstrapReply>;

export const SessionParams = z.object({ sessionId: Text(64).pipe(z.string().min(1)) });
export const RequestParams = SessionParams.extend({ requestId: Text(64).pipe(z.string().min(1)) });

export const PublishBody = z
  .object({ type: Text(128).pipe(z.string().min(1)), payload: z.union([SafeJsonRecord, z.array(z.unknown()), SafeText, z.number(), z.boolean(), z.null()]).optional() })
  .meta({ id: 'BridgePublishBody' });
export type PublishBody = z.infer<typeof PublishBody>;
export const PublishReply = z.object({ sessionId: z.string(), deliveredTo: z.number().int() }).meta({ id: 'BridgePublishReply' });

export const REQUEST_TIMEOUT = { min: 1_000, max: 180_000, default: 180_000 } as const;

export const RequestBody = PublishBody.extend({
  timeoutMs: z.number().int().optional().describe(`Clamped to ${REQUEST_TIMEOUT.min}..${REQUEST_TIMEOUT.max}; default ${REQUEST_TIMEOUT.default}`),
  longPollMs: z.number().int().min(0).optional().describe('Answer 202 pending after this long; then poll GET .../request/{requestId}/status'),
}).meta({ id: 'BridgeRequestBody' });
export type RequestBody = z.infer<typeof RequestBody>;

export const RequestStatus = z.enum(['pending', 'resolved', 'timeout', 'cancelled']);
export type RequestStatus = z.infer<typeof RequestStatus>;

export const RequestReply = z
  .object({ sessionId: z.string(), requestId: z.string(), response: z.unknown(), respondedAt: z.string() })
  .meta({ id: 'BridgeRequestReply' });
export const PendingReply = z
  .object({ status: z.literal('pending'), sessionId: z.string(), requestId: z.string(), expiresAt: z.string() })
  .meta({ id: 'BridgePendingReply' });
export const RequestStatusReply = z
  .object({
    sessionId: z.string(),
    requestId: z.string(),
    status: RequestStatus,
    expiresAt: z.string(),
    response: z.unknown().optional(),
    respondedAt: z.string().optional(),
  })
  .meta({ id: 'BridgeRequestStatusReply' });
export type RequestStatusReply = z.infer<typeof RequestStatusReply>;

export const ResponseBody = z.object({ response: z.unknown() }).meta({ id: 'BridgeResponseBody' });
export const ResponseReply = z.object({ sessionId: z.string(), requestId: z.string(), resolved: z.literal(true) }).meta({ id: 'BridgeResponseReply' });

export const ServerEntry = z.object({
  sessionId: z.string(),
  appId: z.string(),
  userId: z.string(),
  scadaUrl: z.string().describe('Origin and path only: a query string may carry credentials'),
  opencodeUrl: z.string(),
  port: z.number().int(),
  pid: z.number().int(),
  instance: z.string(),
  model: z.string().nullable(),
  startedAt: z.string(),
  lastActivityAt: z.string(),
  subscribers: z.number().int(),
});
export const ServersReply = z.object({ servers: z.array(ServerEntry) }).meta({ id: 'BridgeServersReply' });
export type ServersReply = z.infer<typeof ServersReply>;

export const BridgeHealth = z
  .object({
    status: z.enum(['ok', 'degraded', 'down']),
    service: z.string(),
    uptime_s: z.number(),
    instance: z.string(),
    capacity: z.object({
      servers: z.number().int().describe('agent servers on this instance'),
      maxServers: z.number().int(),
      available: z.number().int(),
      ports: z.object({ base: z.number().int(), max: z.number().int() }),
      sockets: z.number().int(),
    }),
  })
  .meta({ id: 'BridgeHealth' });
export type BridgeHealth = z.infer<typeof BridgeHealth>;

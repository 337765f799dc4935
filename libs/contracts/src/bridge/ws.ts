import { z } from 'zod';

/** Every message on a bridge session socket: `{type, sessionId, timestamp, payload}`. */
export const SessionEnvelopeType = z.enum(['session.snapshot', 'session.info.updated', 'session.event', 'session.closed', 'pong', 'error']);
export type SessionEnvelopeType = z.infer<typeof SessionEnvelopeType>;

export const SessionEnvelope = z
  .object({ type: SessionEnvelopeType, sessionId: z.string(), timestamp: z.string(), payload: z.unknown() })
  .meta({ id: 'BridgeSessionEnvelope' });
export type SessionEnvelope = z.infer<typeof SessionEnvelope>;

/** What a client may send: a ping (answered with pong), or the response to a `hub.request`. */
export const SessionClientMessage = z.discriminatedUnion('type', [
  z.object({ type: z.literal('ping') }),
  z.object({ type: z.literal('hub.response'), requestId: z.string().min(1).max(64), response: z.unknown() }),
]);
export type SessionClientMessage = z.infer<typeof SessionClientMessage>;

/** Why a session closed, in `session.closed`'s payload. */
export const CloseReason = z.enum(['idle', 'closed', 'crashed', 'stopped', 'shutdown', 'reaped']);
export type CloseReason = z.infer<typeof CloseReason>;

/** Socket close codes of the session channel (the handshake succeeded, the session did not). */
export const SessionCloseCode = { Unauthorized: 4401, UnknownSession: 4404, SessionClosed: 4000 } as const;

import { z } from 'zod';
import { INT4_MAX } from '../common/ranges';
import { Session, SessionAppId, SessionId, StoredEvent } from './http';

/**
 * `WS /ws` (document 001 §5). On connect: `init` with the newest page of sessions the operator may
 * see. Then, from every instance: `session_updated`, `session_deleted`, and `event` for sessions
 * the client subscribed to (or every event with `{"type":"subscribe","all":true}`).
 * A client that subscribes with `after` gets the stored events after that seq first, then
 * `subscribed`, then live ones: nothing lost, nothing twice across a reconnect. A session is an
 * app's: events and deletions name the app (`app_id`, null for none), and `subscribe` takes
 * `app_id` when the id is a session of several of the token's apps (else `AMBIGUOUS_SESSION`).
 */
export const ObsClientMessage = z.discriminatedUnion('type', [
  z
    .object({
      type: z.literal('subscribe'),
      /** One session's events (with `after`: the stored ones after that seq first)… */
      session_id: SessionId.optional(),
      /** Which app's session, when the id is a session of several of the token's apps ('' for none). */
      app_id: SessionAppId.optional(),
      after: z.number().int().min(-1).max(INT4_MAX).optional(),
      /** …or every event of the token's apps, live only. */
      all: z.literal(true).optional(),
    })
    .refine((m) => (m.session_id === undefined) !== (m.all === undefined), { message: 'give either session_id or all: true' }),
  z.object({ type: z.literal('unsubscribe'), session_id: SessionId, app_id: SessionAppId.optional() }),
  z.object({ type: z.literal('ping') }),
]);
export type ObsClientMessage = z.infer<typeof ObsClientMessage>;

export const ObsServerMessage = z.discriminatedUnion('type', [
  z.object({ type: z.literal('init'), sessions: z.array(Session) }),
  z.object({ type: z.literal('event'), session_id: z.string(), app_id: z.string().nullable(), event: StoredEvent }),
  z.object({ type: z.literal('session_updated'), session: Session }),
  z.object({ type: z.literal('session_deleted'), session_id: z.string(), app_id: z.string().nullable() }),
  z.object({ type: z.literal('subscribed'), session_id: z.string().nullable(), app_id: z.string().nullable().optional(), last_seq: z.number().int() }),
  z.object({ type: z.literal('pong') }),
  z.object({ type: z.literal('error'), code: z.string(), message: z.string() }),
]);
export type ObsServerMessage = z.infer<typeof ObsServerMessage>;

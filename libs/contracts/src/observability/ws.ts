import { z } from 'zod';
import { INT4_MAX } from '../common/ranges';
import { Session, SessionAppId, SessionId, StoredEvent } from './http';

/**
 * `WS /ws` (document 001 §5). On connect: `init` with the newest page of sessions the operator may
 * see (`next_cursor` pages the rest with `GET /sessions?cursor=`). Then, from every instance:
 * `session_updated`, `session_deleted`, and `event`: every event of the token's apps until the
 * client subscribes to a session, which narrows the socket to the sessions it subscribed to
 * (`{"type":"subscribe","all":true}` widens it again, `{"type":"unsubscribe","all":true}` stops the
 * rest). A client that subscribes with `after` gets the stored events after that seq first, then
 * `subscribed`, then live ones: nothing lost, nothing twice across a reconnect. A socket that falls
 * behind is not sent the events it did not subscribe to meanwhile; once it catches up it gets
 * `events_dropped` naming them by session and seq. A session is an app's: events and deletions name
 * the app (`app_id`, null for none), and `subscribe` takes `app_id` when the id is a session of
 * several of the token's apps (else `AMBIGUOUS_SESSION`).
 */
/** The live socket's URL query (besides the token): how it opens. */
export const LiveQuery = z.object({
  events: z
    .enum(['all', 'subscribed'])
    .optional()
    .describe('`all` (default, document 001): every event of the token\'s apps until the first subscribe; `subscribed` (a Tessera addition): only the sessions subscribed to, from the first frame'),
});

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
  z
    .object({
      type: z.literal('unsubscribe'),
      session_id: SessionId.optional(),
      app_id: SessionAppId.optional(),
      /** No more events of sessions the socket did not subscribe to. */
      all: z.literal(true).optional(),
    })
    .refine((m) => (m.session_id === undefined) !== (m.all === undefined), { message: 'give either session_id or all: true' }),
  z.object({ type: z.literal('ping') }),
]);
export type ObsClientMessage = z.infer<typeof ObsClientMessage>;

export const ObsServerMessage = z.discriminatedUnion('type', [
  z.object({
    type: z.literal('init'),
    sessions: z.array(Session),
    /** The rest, older: `GET /sessions?cursor=<next_cursor>` (null: there is none). */
    next_cursor: z.string().nullable(),
  }),
  z.object({ type: z.literal('event'), session_id: z.string(), app_id: z.string().nullable(), event: StoredEvent }),
  z.object({ type: z.literal('session_updated'), session: Session }),
  z.object({ type: z.literal('session_deleted'), session_id: z.string(), app_id: z.string().nullable() }),
  z.object({ type: z.literal('subscribed'), session_id: z.string().nullable(), app_id: z.string().nullable().optional(), last_seq: z.number().int() }),
  z.object({ type: z.literal('pong') }),
  z.object({ type: z.literal('error'), code: z.string(), message: z.string() }),
  /**
   * The socket fell behind (its unsent bytes passed the service's limit): events of sessions it did
   * not subscribe to were not sent meanwhile. Each session's missed seqs are `from_seq`..`to_seq`
   * (`GET /events/{session_id}?after=<from_seq - 1>` reads them); `truncated` when more sessions
   * missed events than are listed. Subscribed sessions' events are never dropped.
   */
  z.object({
    type: z.literal('events_dropped'),
    count: z.number().int(),
    sessions: z.array(z.object({ session_id: z.string(), app_id: z.string().nullable(), from_seq: z.number().int(), to_seq: z.number().int(), count: z.number().int() })),
    truncated: z.boolean(),
    message: z.string(),
  }),
]);
export type ObsServerMessage = z.infer<typeof ObsServerMessage>;

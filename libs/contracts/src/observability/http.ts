import { z } from 'zod';
import { INT4_MAX, Int4, IsoTimeInRange, QueryInt4, TIME_RANGE_MESSAGE, timeInRange } from '../common/ranges';
import { JSON_LIMITS, jsonProblems, SafeJsonRecord, SafeText } from '../common/safe';

/**
 * Observability (document 001 §1, §4.1, §5): agent sessions and their events, from runtime chats
 * (the `observability-events` queue), outside agents (`POST /events`) and OpenTelemetry
 * (`POST /v1/traces`). Reached through the gateway at `/api/observability/*`.
 */

export const SessionStatus = z.enum(['running', 'finished', 'stopped']);
export type SessionStatus = z.infer<typeof SessionStatus>;
export const SessionSource = z.enum(['runtime', 'bridge', 'external', 'otel']);
export type SessionSource = z.infer<typeof SessionSource>;

/** Session ids come from agents we do not control: any storable text, bounded. */
export const SessionId = SafeText.pipe(z.string().min(1).max(256));

const Text = (max: number) => SafeText.pipe(z.string().max(max));
/** Storable at every level (no NUL or lone surrogates, bounded depth and size), as SafeJsonRecord is for objects. */
const storable = <T extends z.ZodType>(schema: T) =>
  schema.superRefine((v, ctx) => {
    for (const p of jsonProblems(v, JSON_LIMITS)) ctx.addIssue({ code: 'custom', message: p.message, path: p.path });
  });
/** Free JSON an agent reports (a tool's input or output): any storable JSON value. */
const AnyJson = z.union([SafeJsonRecord, storable(z.array(z.unknown())), SafeText, z.number(), z.boolean(), z.null()]);
/** An app, as events name it (Text, not AppId: OTLP resources and older clients name apps freely). */
export const SessionAppId = Text(128);

/** `POST /events`: one event, as document 001 and the Claude Code hooks send it. */
export const IncomingEvent = z
  .object({
    event_type: Text(128).pipe(z.string().min(1)).describe('session_start, pre_tool, post_tool, session_stop, message, or any other name (kept as is)'),
    session_id: SessionId,
    session_name: Text(512).optional(),
    timestamp: z
      .union([z.iso.datetime({ offset: true }), z.number()])
      .refine((t) => timeInRange(typeof t === 'number' ? t : Date.parse(t)), TIME_RANGE_MESSAGE)
      .optional()
      .describe('ISO 8601, or epoch milliseconds; the time of receipt when absent'),
    tool_name: Text(256).optional(),
    tool_input: AnyJson.optional(),
    tool_output: AnyJson.optional(),
    error: Text(16_000).nullish(),
    exit_code: Int4().nullish(),
    reason: Text(4_000).nullish(),
    role: Text(64).optional(),
    content: z
      .array(storable(z.object({ type: Text(64), text: Text(200_000).optional() }).catchall(z.unknown())))
      .max(200)
      .optional(),
    event_id: Text(256).pipe(z.string().min(1)).optional().describe('Idempotency: the same id in a session is stored once'),
    /**
     * The app the session belongs to: a session id is an app's, the same id in two apps is two
     * sessions. An ingest key's events are its app's; the service key's events that name none
     * belong to no app (seen only by callers of every app).
     */
    app_id: SessionAppId.optional(),
    user_id: Text(256).optional(),
    agent_name: Text(256).optional(),
    project_dir: Text(1_024).optional(),
    workflow: Text(128).optional(),
    source: SessionSource.optional(),
    usage: z
      .object({
        input_tokens: Int4().min(0).describe('every input token, cached or not'),
        output_tokens: Int4().min(0),
        cache_read_tokens: Int4().min(0).describe('input tokens read from a prompt cache (part of input_tokens)'),
        cache_write_tokens: Int4().min(0).describe('input tokens written to a prompt cache (part of input_tokens)'),
        reasoning_tokens: Int4().min(0).describe('output tokens spent reasoning (part of output_tokens)'),
        model: Text(256).describe('the model the call used, as its provider names it: priced by it'),
        provider: Text(128).describe('openai, anthropic, …: helps find the price'),
      })
      .partial()
      .optional()
      .describe("a model call's tokens: an event with usage counts as one call in GET /usage"),
  })
  .meta({ id: 'IncomingEvent' });
export type IncomingEvent = z.infer<typeof IncomingEvent>;

/** A batch: up to 1,000 events; each is checked on its own, so one bad event never drops the rest. */
export const EventBatchBody = z.object({ events: z.array(z.unknown()).min(1).max(1000) }).meta({ id: 'EventBatchBody' });

export const EventVerdict = z.object({
  index: z.number().int(),
  status: z.enum(['accepted', 'duplicate', 'rejected']),
  event_id: z.string().optional(),
  reason: z.string().optional(),
});
export const IngestReply = z
  .object({ accepted: z.number().int(), duplicates: z.number().int(), rejected: z.number().int(), results: z.array(EventVerdict) })
  .meta({ id: 'IngestReply' });
export type IngestReply = z.infer<typeof IngestReply>;

export const Usage = z.object({ input_tokens: z.number().int(), output_tokens: z.number().int(), total_tokens: z.number().int() });

/** Characters of a session's title: a first message longer than this is cut at a word and ends with '…'. */
export const TITLE_MAX = 120;

export const Session = z
  .object({
    session_id: z.string(),
    session_name: z.string(),
    title: z
      .string()
      .nullable()
      .describe(`what a list shows: the session's name when it has one, else its first user message (a runtime chat's first user chat.text, an outside agent's first message of role user); an OpenTelemetry session's first user input message (gen_ai.input.messages), else its name (its agent's or root span's); cut to about ${TITLE_MAX} characters; null when there is nothing`),
    status: SessionStatus,
    created_at: z.string(),
    modified_at: z.string(),
    project_dir: z.string().nullable(),
    agent_name: z.string().nullable(),
    app_id: z.string().nullable(),
    user_id: z.string().nullable(),
    workflow: z.string().nullable(),
    source: SessionSource,
    event_count: z.number().int(),
    usage: Usage,
    model: z.string().nullable().describe('the model of the last model call of the session; null before one'),
    cost_usd: z
      .number()
      .min(0)
      .nullable()
      .describe('US dollars of the priced model calls; null when no call had a known price (unknown, never 0 for it): see unpriced_calls'),
    unpriced_calls: z.number().int().min(0).describe('model calls of a model with no known price: their tokens count in usage, not in cost_usd'),
    error_count: z.number().int(),
    /** From the first event to the last, in milliseconds. */
    duration_ms: z.number().int(),
    last_event_type: z.string().nullable(),
    last_event_at: z.string().nullable(),
  })
  .meta({ id: 'ObservedSession' });
export type Session = z.infer<typeof Session>;

/** An event as stored: `seq` is its order in the session (1, 2, …), what live clients resume from. */
export const StoredEvent = z
  .object({
    seq: z.number().int().positive(),
    session_id: z.string(),
    event_type: z.string(),
    event_id: z.string().nullable(),
    timestamp: z.string(),
    received_at: z.string(),
    agent_name: z.string().nullable(),
    /** The model a model call used (OpenTelemetry gen_ai.response.model, else gen_ai.request.model); null for other events. */
    model: z.string().nullable(),
    tool_name: z.string().nullable(),
    tool_input: z.unknown().optional(),
    tool_output: z.unknown().optional(),
    error: z.string().nullable(),
    exit_code: z.number().int().nullable(),
    reason: z.string().nullable(),
    role: z.string().nullable(),
    content: z.array(z.record(z.string(), z.unknown())).nullable(),
    /** OpenTelemetry GenAI attributes: gen_ai.operation.name, gen_ai.usage.*, … */
    attributes: z.record(z.string(), z.unknown()),
  })
  .meta({ id: 'ObservedEvent' });
export type StoredEvent = z.infer<typeof StoredEvent>;

export const SessionParams = z.object({ session_id: SessionId });

/**
 * Which app's session a path's id means, for a caller of several apps: the same id may be a
 * session of two of them. Without it, an id found in one of the caller's apps is that one, and one
 * found in several is a 409 naming them. The empty string names a session of no app (callers of
 * every app only).
 */
export const SessionAppQuery = z.object({
  app_id: SessionAppId.optional().describe("the session's app, when the id is a session of several of your apps (409 otherwise); empty: no app"),
});

/** `GET /sessions`: newest `modified_at` first; `cursor` from the previous page's `next_cursor`. */
export const SessionsQuery = z.object({
  status: SessionStatus.optional(),
  agent_name: Text(256).optional(),
  app_id: Text(128).optional(),
  user_id: Text(256).optional(),
  source: SessionSource.optional(),
  q: Text(256)
    .optional()
    .describe("Text anywhere in the session's name, title (its first user message), user id or id, case-insensitive (% and _ are text)"),
  from: IsoTimeInRange().optional().describe('modified_at at or after'),
  to: IsoTimeInRange().optional().describe('modified_at before'),
  limit: QueryInt4().min(1).max(500).default(50),
  cursor: Text(512).optional().describe("the previous page's next_cursor, as it was"),
});
/**
 * What a `next_cursor` holds (base64url JSON): the last session's modified_at (epoch ms), app
 * ('' for none) and id; `[ms, id]` from before sessions were keyed by app is still taken.
 */
export const SessionsCursor = z.union([
  z.tuple([z.number().int().refine(timeInRange, TIME_RANGE_MESSAGE), z.string().max(128), z.string().max(256)]),
  z.tuple([z.number().int().refine(timeInRange, TIME_RANGE_MESSAGE), z.string().max(256)]).transform(([at, id]) => [at, null, id] as const),
]);
export const SessionsReply = z.object({ sessions: z.array(Session), next_cursor: z.string().nullable() }).meta({ id: 'ObservedSessionsReply' });

/**
 * `GET /events/{session_id}`: in seq order (as stored; `after` a seq, exclusive, as a live client
 * resumes), or with `order=start` in the order the events started (a trace's spans arrive as
 * they end), `after` then naming the last event of the previous page.
 */
export const EventsQuery = SessionAppQuery.extend({
  after: QueryInt4().min(0).default(0).describe(`a seq: 0 to ${INT4_MAX}`),
  limit: QueryInt4().min(1).max(1000).default(200),
  event_type: Text(128).optional(),
  order: z
    .enum(['seq', 'start'])
    .default('seq')
    .describe('seq: as stored, what live clients resume from; start: as the events started (in the same instant a span before those it started, then seq); `after` is the seq of the last event read, in either order'),
});
export const EventsReply = z.object({ events: z.array(StoredEvent), next_after: z.number().int().nullable() }).meta({ id: 'ObservedEventsReply' });

export const MetadataBody = z
  .object({ session_name: Text(512).optional(), project_dir: Text(1_024).nullable().optional(), agent_name: Text(256).nullable().optional() })
  .strict()
  .meta({ id: 'SessionMetadataBody' });
export const MetadataReply = z.object({ ok: z.literal(true), session: Session }).meta({ id: 'SessionMetadataReply' });
export const DeleteReply = z.object({ ok: z.literal(true), session_id: z.string(), app_id: z.string().nullable(), deleted: z.object({ events: z.number().int() }) }).meta({ id: 'SessionDeleteReply' });
export const StopReply = z.object({ success: z.literal(true), session_id: z.string(), app_id: z.string().nullable(), message: z.string() }).meta({ id: 'SessionStopReply' });

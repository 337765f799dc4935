import { observability } from '@tessera/contracts';
import { zodIssues } from '@tessera/kit';
import { z } from 'zod';
import { inScope, type AppScope } from '../domain/access';
import type { NormalizedEvent } from '../domain/event';
import { normalizeIncoming } from '../domain/incoming-event';
import type { ObservabilityRoutes, ObservabilityServices } from '../services';
import { keyOfRow } from '../store/sessions';
import { locateOrThrow } from './locate';

type Verdict = z.infer<typeof observability.EventVerdict>;

const ingestAuth = [
  { name: 'x-ingest-key', in: 'header' },
  { name: 'x-tessera-service-key', in: 'header' },
];

const isBatch = (body: unknown): body is { events: unknown } => body !== null && typeof body === 'object' && !Array.isArray(body) && 'events' in body;

/**
 * `POST /events`: one event, or a batch (a body with `events`). The document shows the union; a
 * body is told apart by `events` first and checked as that one shape, so a 400 names the field
 * that is wrong (the union's own error only says the body is neither). A batch's events are each
 * checked in the handler, on their own.
 */
const IngestBody = z.preprocess(
  (body, ctx) => {
    const r = (isBatch(body) ? observability.EventBatchBody : observability.IncomingEvent).safeParse(body);
    if (r.success) return r.data;
    for (const issue of r.error.issues) ctx.addIssue({ ...issue, input: undefined });
    return z.NEVER;
  },
  observability.IncomingEvent.or(observability.EventBatchBody),
);

/** Why an event is refused, as one line naming the fields. */
function reasonOf(error: z.ZodError): string {
  return zodIssues(error)
    .map((i) => `${i.path}: ${i.message}`)
    .join('; ');
}

/**
 * `POST /events`: outside agents' events. A batch answers per event, so one bad event never
 * costs the others; an event of an app outside the caller's ingest key is refused like an
 * invalid one.
 */
export function eventRoutes(routes: ObservabilityRoutes, s: ObservabilityServices): void {
  routes.route(
    {
      method: 'post',
      path: '/events',
      summary: `One event or {"events":[…]} (up to 1,000). Each event is checked on its own and answered in results; an event stored before (same session and event_id) is a duplicate. Needs ${ingestAuth.map((h) => h.name).join(' or ')}.`,
      tags: ['ingest'],
      access: 'ingest',
      body: IngestBody,
      responses: {
        200: { description: 'per-event verdicts', schema: observability.IngestReply },
        400: { description: 'a single event (not a batch) that is invalid, or a malformed batch' },
        401: { description: 'no valid ingest key or service key' },
      },
    },
    async ({ body }, req, res) => {
      const scope = req.sessionScope!;
      const raw = 'events' in body ? body.events : [body];
      const now = new Date();
      const verdicts = new Array<Verdict>(raw.length);
      const valid: NormalizedEvent[] = [];
      const at: number[] = [];
      raw.forEach((item, index) => {
        const p = observability.IncomingEvent.safeParse(item);
        if (!p.success) return void (verdicts[index] = { index, status: 'rejected', reason: reasonOf(p.error) });
        const e = normalizeIncoming(p.data, defaultApp(scope), now);
        if (!inScope(scope, e.appId)) {
          return void (verdicts[index] = { index, status: 'rejected', event_id: p.data.event_id, reason: `app_id: "${e.appId}" is not allowed by this ingest key` });
        }
        valid.push(e);
        at.push(index);
      });
      const results = await s.ingestor.accept(valid);
      results.forEach((result, k) => {
        const index = at[k];
        const eventId = valid[k].eventId ?? undefined;
        if (result.status === 'accepted' || result.status === 'duplicate') verdicts[index] = { index, status: result.status, event_id: eventId };
        else verdicts[index] = { index, status: 'rejected', event_id: eventId, reason: result.status === 'dropped' ? result.reason : 'out of order' };
      });
      const reply: observability.IngestReply = { accepted: 0, duplicates: 0, rejected: 0, results: verdicts };
      for (const v of verdicts) {
        if (v.status === 'accepted') reply.accepted++;
        else if (v.status === 'duplicate') reply.duplicates++;
        else reply.rejected++;
      }
      res.json(reply);
    },
  );

  /**
   * A session's events: `GET /events/{session_id}` is document 001's path; `GET
   * /sessions/{session_id}/events` is the same route where a REST client looks for it (it was a
   * 404). Both answer alike: the session must be in the caller's apps, else 404 (409 when several
   * of them use the id and `app_id` does not choose).
   */
  for (const [path, summary] of [
    ['/events/{session_id}', "A session's events in seq order (or order=start: as they started), after a seq (operator token)"],
    ['/sessions/{session_id}/events', "A session's events in seq order (or order=start: as they started), after a seq (operator token); the same as GET /events/{session_id}"],
  ] as const) {
    routes.route(
      {
        method: 'get',
        path,
        summary,
        tags: ['sessions'],
        access: 'operator',
        params: observability.SessionParams,
        query: observability.EventsQuery,
        responses: {
          200: { description: 'events', schema: observability.EventsReply },
          400: { description: 'a query parameter out of range (after, limit: int4) or invalid, named' },
          403: { description: 'not an operator' },
          404: { description: 'no such session in your apps (another app’s session answers the same)' },
          409: { description: 'the id is a session of several of your apps: name one with app_id' },
        },
      },
      async ({ params: { session_id }, query: q }, req, res) => {
        const row = await locateOrThrow(s.sessions, req.sessionScope!, session_id, q.app_id);
        const events = await s.events.after(keyOfRow(row), q.after, q.limit, q.event_type, q.order);
        const reply: z.infer<typeof observability.EventsReply> = { events, next_after: events.length === q.limit ? events[events.length - 1].seq : null };
        res.json(reply);
      },
    );
  }
}

/** An ingest key writes for its one app: events that name no app are that app's. */
function defaultApp(scope: AppScope): string | null {
  return scope === '*' ? null : scope[0];
}

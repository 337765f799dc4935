import { Router, type RequestHandler } from 'express';
import { observability, type RouteSpec } from '@tessera/contracts';
import { parseOr400, zodIssues } from '@tessera/kit';
import type { z } from 'zod';
import { inScope, type AppScope } from '../domain/access';
import type { NormalizedEvent } from '../domain/event';
import { normalizeIncoming } from '../domain/incoming-event';
import type { ObservabilityServices } from '../services';
import { keyOfRow } from '../store/sessions';
import { locateOrThrow } from './locate';

type Verdict = z.infer<typeof observability.EventVerdict>;

const ingestAuth = [
  { name: 'x-ingest-key', in: 'header' },
  { name: 'x-tessera-service-key', in: 'header' },
];

export const eventRoutes: RouteSpec[] = [
  {
    method: 'post',
    path: '/events',
    summary: `One event or {"events":[…]} (up to 1,000). Each event is checked on its own and answered in results; an event stored before (same session and event_id) is a duplicate. Needs ${ingestAuth.map((h) => h.name).join(' or ')}.`,
    tags: ['ingest'],
    access: 'ingest',
    body: observability.IncomingEvent.or(observability.EventBatchBody),
    responses: {
      200: { description: 'per-event verdicts', schema: observability.IngestReply },
      400: { description: 'a single event (not a batch) that is invalid, or a malformed batch' },
      401: { description: 'no valid ingest key or service key' },
    },
  },
  {
    method: 'get',
    path: '/events/{session_id}',
    summary: "A session's events in order, after a seq (operator token)",
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
];

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
export function ingestRouter(s: ObservabilityServices): Router {
  const r = Router();
  r.post('/events', async (req, res) => {
    const scope = s.access.ingestScope(req);
    const body: unknown = req.body;
    const isBatch = body !== null && typeof body === 'object' && !Array.isArray(body) && 'events' in body;
    const raw = isBatch ? parseOr400(observability.EventBatchBody, body, 'body').events : [parseOr400(observability.IncomingEvent, body, 'body')];
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
  });
  return r;
}

/** An ingest key writes for its one app: events that name no app are that app's. */
function defaultApp(scope: AppScope): string | null {
  return scope === '*' ? null : scope[0];
}

/** `GET /events/{session_id}`: the session must be in the caller's apps, else 404 (409 when several of them use the id and `app_id` does not choose). */
export function eventsReadRouter(s: ObservabilityServices, authn: RequestHandler): Router {
  const r = Router();
  r.get('/events/:session_id', authn, async (req, res) => {
    const scope = s.access.readScope(req);
    const { session_id } = parseOr400(observability.SessionParams, req.params, 'path');
    const q = parseOr400(observability.EventsQuery, req.query, 'query');
    const row = await locateOrThrow(s.sessions, scope, session_id, q.app_id);
    const events = await s.events.after(keyOfRow(row), q.after, q.limit, q.event_type);
    const reply: z.infer<typeof observability.EventsReply> = { events, next_after: events.length === q.limit ? events[events.length - 1].seq : null };
    res.json(reply);
  });
  return r;
}

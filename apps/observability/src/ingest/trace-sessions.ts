import type { BusPublisher, Logger } from '@tessera/kit';
import { publishLive } from '../bus/live';
import type { NormalizedEvent } from '../domain/event';
import { AGGREGATE_OPERATIONS, TOKEN_ATTRIBUTES, usageBelow, usageOf, type SpanEvents, type SpanLink } from '../otlp/spans';
import type { Json } from '../otlp/values';
import { toStoredEvent, type EventRow } from '../store/events';
import { appKey } from '../store/ingest';
import { toSession } from '../store/sessions';
import { provisionalSession, traceKey, type Merged, type TraceIndex, type TraceKey } from '../store/traces';
import type { IngestResult, Ingestor } from './ingestor';

/** Events handed to the ingestor at once: the size of a POST /events batch. */
const INGEST_CHUNK = 1_000;

/**
 * OpenTelemetry spans into sessions that add up, whatever batches the exporter cut the trace
 * into (a BatchSpanProcessor sends spans as they end: the chats and tools of an agent run before
 * the agent's span, which alone may carry gen_ai.conversation.id).
 *
 * - A span of a trace no span has named yet goes to the provisional session `otel:<trace id>`.
 * - A span naming the trace's conversation records it in the trace index (the first naming
 *   wins); the provisional session's events move into the named session, counted once, and the
 *   provisional session is gone.
 * - A later span with only the trace id goes to the session the index names.
 *
 * Two exports of one trace may race (two processes, two instances): each side writes first and
 * looks second (the naming side names, then merges; the other stores in the provisional session,
 * then looks the trace up and merges what it finds), so whichever looks last sees the other's
 * write and nothing stays behind in a provisional session.
 */
export class TraceSessions {
  constructor(
    private readonly traces: TraceIndex,
    private readonly ingestor: Ingestor,
    private readonly bus: BusPublisher,
    private readonly logger: Logger,
  ) {}

  async accept(spans: SpanEvents): Promise<IngestResult[]> {
    const { events } = spans;
    const named = new Map<string, TraceKey & { sessionId: string }>();
    const unnamed = new Map<string, TraceKey>();
    for (const e of events) {
      const traceId = e.attributes.trace_id as string;
      const k = traceKey(appKey(e.appId), traceId);
      if (e.sessionId === provisionalSession(traceId)) unnamed.set(k, { app: appKey(e.appId), traceId });
      else if (spans.named.get(traceId) === e.sessionId && !named.has(k)) named.set(k, { app: appKey(e.appId), traceId, sessionId: e.sessionId });
    }

    // Where each trace goes: the index, written first for the traces this request names.
    const sessionOf = await this.traces.name([...named.values()]);
    const known = await this.traces.sessionsOf([...unnamed.values()].filter((t) => !sessionOf.has(traceKey(t.app, t.traceId))));
    for (const [k, id] of known) sessionOf.set(k, id);
    for (const e of events) {
      const traceId = e.attributes.trace_id as string;
      const to = e.sessionId === provisionalSession(traceId) && sessionOf.get(traceKey(appKey(e.appId), traceId));
      if (to) e.sessionId = to;
    }

    // What went to a provisional session before the trace was named joins its session first, so
    // the spans of this request that were stored there already are duplicates, not twice counted.
    await this.mergeAll([...sessionOf].map(([k, into]) => ({ ...(named.get(k) ?? unnamed.get(k))!, into })));
    await this.settleAgentUsage(spans.aggregateUsage, events);

    const results: IngestResult[] = [];
    for (let i = 0; i < events.length; i += INGEST_CHUNK) results.push(...(await this.ingestor.accept(events.slice(i, i + INGEST_CHUNK))));

    // Stored in a provisional session: a request that named the trace meanwhile may have merged
    // before these were there.
    const still = [...unnamed].filter(([k]) => !sessionOf.has(k)).map(([, t]) => t);
    if (still.length > 0) {
      const late = await this.traces.sessionsOf(still);
      await this.mergeAll(still.filter((t) => late.has(traceKey(t.app, t.traceId))).map((t) => ({ ...t, into: late.get(traceKey(t.app, t.traceId))! })));
    }
    return results;
  }

  /**
   * An agent span's tokens count when no span below it reports any: in the request (decided in
   * otlp/spans.ts) or stored before, in its session or its trace's provisional one.
   */
  private async settleAgentUsage(candidates: NormalizedEvent[], events: NormalizedEvent[]): Promise<void> {
    if (candidates.length === 0) return;
    const inRequest: SpanLink[] = events.map((e) => ({
      spanId: e.eventId!,
      parentSpanId: (e.attributes.parent_span_id as string | undefined) ?? null,
      reportsUsage: TOKEN_ATTRIBUTES.some((k) => k in e.attributes),
    }));
    for (const e of candidates) {
      const traceId = e.attributes.trace_id as string;
      const stored = await this.traces.spansOf(appKey(e.appId), [e.sessionId, provisionalSession(traceId)], traceId);
      if (usageBelow(e.eventId!, [...stored, ...inRequest])) e.usage = null;
    }
  }

  private async mergeAll(moves: (TraceKey & { into: string })[]): Promise<void> {
    const waiting = await this.traces.withProvisional(moves);
    for (const m of moves) {
      if (!waiting.has(traceKey(m.app, m.traceId))) continue;
      const merged = await this.traces.merge(m.app, m.traceId, m.into, countedUsage);
      if (merged) await this.announce(merged);
    }
  }

  /** After the commit, best effort (a live socket that misses it resumes from the store). */
  private async announce({ into, from, events }: Merged): Promise<void> {
    const appId = from.app_id === '' ? null : from.app_id;
    try {
      await publishLive(this.bus, { kind: 'session_deleted', app_id: appId, session_id: from.id });
      if (into) await publishLive(this.bus, {
        kind: 'ingested',
        app_ids: [appId],
        sessions: [toSession(into)],
        events: events.map((r) => ({ session_id: r.session_id, seq: r.seq, wire: JSON.stringify({ type: 'event', session_id: r.session_id, app_id: appId, event: toStoredEvent(r) }) })),
      });
    } catch (e) {
      this.logger.warn('could not publish a merged trace', { error: (e as Error).message });
    }
  }
}

/** The tokens a stored span was counted with: its own, but an agent span's only when they were all it had. */
function countedUsage(row: EventRow): { input: number; output: number } {
  if (AGGREGATE_OPERATIONS.has(row.event_type)) return { input: 0, output: 0 };
  return usageOf(row.attributes as Record<string, Json>) ?? { input: 0, output: 0 };
}

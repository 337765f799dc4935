import type { Pool, PoolClient } from 'pg';
import type { EventRow } from './events';
import type { SessionRow } from './sessions';

/*
 * OpenTelemetry's trace → session index (`otel_traces`) and the merge of a provisional session
 * into the session its trace turned out to belong to. An exporter sends spans as they end, in
 * batches: the chat and tool spans of an agent run may reach us before the agent's span, the one
 * that carries gen_ai.conversation.id. They are stored meanwhile in the provisional session
 * `otel:<trace id>`; when a span names the trace's conversation, the index records it and the
 * provisional session's events move into the named one (ingest/trace-sessions.ts decides when).
 */

/** A trace of an app ('' for none). */
export interface TraceKey {
  app: string;
  traceId: string;
}

export const traceKey = (app: string, traceId: string) => `${app}\u0000${traceId}`;

/** The provisional session of a trace no span has named yet. */
export const provisionalSession = (traceId: string) => `otel:${traceId}`;

export interface Merged {
  /** The session the events moved into, as it now is; null when it was deleted, and the events with it. */
  into: SessionRow | null;
  /** The provisional session, now gone. */
  from: { app_id: string; id: string };
  /** The events moved, with their seqs in `into`. */
  events: EventRow[];
}

const RETRYABLE = new Set(['40P01', '40001', '23505']);

/** Token attributes as stored (OTLP spans keep gen_ai.* and llm.token_count.*): what a span reports. */
const REPORTS_USAGE_SQL = `(e.attributes ?| array['gen_ai.usage.input_tokens','gen_ai.usage.output_tokens','gen_ai.usage.prompt_tokens','gen_ai.usage.completion_tokens','llm.token_count.prompt','llm.token_count.completion'])`;

export class TraceIndex {
  constructor(private readonly pool: Pool) {}

  /** The sessions these traces were named into, by traceKey. */
  async sessionsOf(keys: TraceKey[]): Promise<Map<string, string>> {
    if (keys.length === 0) return new Map();
    const r = await this.pool.query<{ app_id: string; trace_id: string; session_id: string }>(
      'SELECT t.app_id, t.trace_id, t.session_id FROM otel_traces t JOIN unnest($1::text[], $2::text[]) AS k(a, id) ON t.app_id = k.a AND t.trace_id = k.id',
      [keys.map((k) => k.app), keys.map((k) => k.traceId)],
    );
    return new Map(r.rows.map((x) => [traceKey(x.app_id, x.trace_id), x.session_id]));
  }

  /**
   * Records the session each trace names (a trace already named keeps its first session); the
   * session each trace now has, by traceKey.
   */
  async name(entries: (TraceKey & { sessionId: string })[]): Promise<Map<string, string>> {
    if (entries.length === 0) return new Map();
    await this.pool.query(
      `INSERT INTO otel_traces (app_id, trace_id, session_id)
       SELECT * FROM unnest($1::text[], $2::text[], $3::text[]) ORDER BY 1, 2
       ON CONFLICT (app_id, trace_id) DO NOTHING`,
      [entries.map((e) => e.app), entries.map((e) => e.traceId), entries.map((e) => e.sessionId)],
    );
    return this.sessionsOf(entries);
  }

  /** Of these traces, those whose provisional session exists, by traceKey. */
  async withProvisional(keys: TraceKey[]): Promise<Set<string>> {
    if (keys.length === 0) return new Set();
    const r = await this.pool.query<{ app_id: string; trace_id: string }>(
      'SELECT k.a AS app_id, k.id AS trace_id FROM unnest($1::text[], $2::text[]) AS k(a, id) WHERE EXISTS (SELECT 1 FROM sessions s WHERE s.app_id = k.a AND s.id = $3 || k.id)',
      [keys.map((k) => k.app), keys.map((k) => k.traceId), provisionalSession('')],
    );
    return new Set(r.rows.map((x) => traceKey(x.app_id, x.trace_id)));
  }

  /**
   * The spans of a trace stored in these sessions of an app: their ids, parents and whether they
   * report tokens (for the rule on agent spans' tokens, otlp/spans.ts usageBelow).
   */
  async spansOf(app: string, sessions: string[], traceId: string): Promise<{ spanId: string; parentSpanId: string | null; reportsUsage: boolean }[]> {
    const r = await this.pool.query<{ span_id: string; parent: string | null; usage: boolean }>(
      `SELECT e.attributes ->> 'span_id' AS span_id, e.attributes ->> 'parent_span_id' AS parent, ${REPORTS_USAGE_SQL} AS usage
         FROM events e WHERE e.app_id = $1 AND e.session_id = ANY($2::text[]) AND e.attributes ->> 'trace_id' = $3 LIMIT 10000`,
      [app, sessions, traceId],
    );
    return r.rows.filter((x) => x.span_id).map((x) => ({ spanId: x.span_id, parentSpanId: x.parent, reportsUsage: x.usage }));
  }

  /**
   * Moves the provisional session of a trace into `into` (created if new; when it was deleted,
   * the provisional session is deleted too): its events get the next seqs of `into` in the order they started, those `into`
   * holds already (the same span id) are dropped, and its counts and tokens are added. One
   * transaction under both sessions' row locks, which every ingest of either takes too. Null
   * when there is nothing to move.
   *
   * `dupUsage`: the tokens a duplicate (a span in both sessions) was counted with in the
   * provisional session, taken back so that no token counts twice.
   */
  async merge(app: string, traceId: string, into: string, dupUsage: (row: EventRow) => { input: number; output: number }): Promise<Merged | null> {
    for (let attempt = 0; ; attempt++) {
      const client = await this.pool.connect();
      try {
        const out = await this.mergeOnce(client, app, provisionalSession(traceId), into, dupUsage);
        client.release();
        return out;
      } catch (e) {
        await client.query('ROLLBACK').catch(() => undefined);
        client.release();
        // Two transactions locking the same sessions in different orders, or creating one at once: again.
        if (RETRYABLE.has((e as { code?: string }).code ?? '') && attempt < 4) continue;
        throw e;
      }
    }
  }

  private async mergeOnce(client: PoolClient, app: string, from: string, into: string, dupUsage: (row: EventRow) => { input: number; output: number }): Promise<Merged | null> {
    if (from === into) return null;
    await client.query('BEGIN');
    const exists = await client.query('SELECT 1 FROM sessions WHERE app_id = $1 AND id = $2', [app, from]);
    if (exists.rows.length === 0) {
      await client.query('COMMIT');
      return null;
    }
    // The named session, new or not (a deleted one stays deleted), and then both rows locked in
    // (app, id) order, the order ingest takes them in.
    await client.query(
      `INSERT INTO sessions (app_id, id, source, status)
       SELECT $1, $2, 'otel', p.status FROM sessions p
        WHERE p.app_id = $1 AND p.id = $3 AND NOT EXISTS (SELECT 1 FROM tombstones t WHERE t.session_id = $2 AND t.app_id IN ($1, '*'))
       ON CONFLICT (app_id, id) DO NOTHING`,
      [app, into, from],
    );
    const locked = await client.query<SessionRow>('SELECT * FROM sessions WHERE app_id = $1 AND id = ANY($2::text[]) ORDER BY app_id, id FOR UPDATE', [app, [from, into]]);
    const src = locked.rows.find((r) => r.id === from);
    const dst = locked.rows.find((r) => r.id === into);
    if (src && !dst) {
      // The conversation was deleted: so are its trace's spans that waited for it.
      await client.query('DELETE FROM events WHERE app_id = $1 AND session_id = $2', [app, from]);
      await client.query('DELETE FROM sessions WHERE app_id = $1 AND id = $2', [app, from]);
      await client.query('COMMIT');
      return { into: null, from: { app_id: app, id: from }, events: [] };
    }
    if (!src || !dst) {
      // Merged or deleted meanwhile: nothing to move, no session to create.
      await client.query('ROLLBACK');
      return null;
    }

    const dups = await client.query<EventRow>(
      `SELECT e.* FROM events e WHERE e.app_id = $1 AND e.session_id = $2
          AND EXISTS (SELECT 1 FROM events d WHERE d.app_id = $1 AND d.session_id = $3 AND d.event_id = e.event_id)`,
      [app, from, into],
    );
    const taken = { input: 0, output: 0, errors: 0 };
    for (const d of dups.rows) {
      const u = dupUsage(d);
      taken.input += u.input;
      taken.output += u.output;
      if (d.error !== null) taken.errors++;
    }
    const moved = await client.query<EventRow>(
      `WITH m AS (
         SELECT e.seq, row_number() OVER (ORDER BY e.timestamp, e.seq) AS n FROM events e
          WHERE e.app_id = $1 AND e.session_id = $2
            AND NOT EXISTS (SELECT 1 FROM events d WHERE d.app_id = $1 AND d.session_id = $3 AND d.event_id = e.event_id)
       )
       UPDATE events e SET session_id = $3, seq = $4 + m.n FROM m
        WHERE e.app_id = $1 AND e.session_id = $2 AND e.seq = m.seq
       RETURNING e.*`,
      [app, from, into, dst.last_seq],
    );
    const events = moved.rows.sort((a, b) => a.seq - b.seq);
    await client.query('DELETE FROM events WHERE app_id = $1 AND session_id = $2', [app, from]);
    await client.query('DELETE FROM sessions WHERE app_id = $1 AND id = $2', [app, from]);
    const last = events[events.length - 1];
    const updated = await client.query<SessionRow>(
      `UPDATE sessions s SET
         last_seq = s.last_seq + $3, event_count = s.event_count + $3,
         input_tokens = s.input_tokens + $4, output_tokens = s.output_tokens + $5, error_count = s.error_count + $6,
         first_event_at = LEAST(s.first_event_at, $7), last_event_at = GREATEST(s.last_event_at, $8),
         last_event_type = COALESCE(s.last_event_type, $9),
         user_id = COALESCE(s.user_id, $10), agent_name = COALESCE(s.agent_name, $11),
         session_name = CASE WHEN s.session_name = '' THEN $12 ELSE s.session_name END,
         title = COALESCE(s.title, $13), model = COALESCE(s.model, $14),
         cost_usd = CASE WHEN $15::numeric IS NULL THEN s.cost_usd ELSE COALESCE(s.cost_usd, 0) + $15::numeric END,
         unpriced_calls = s.unpriced_calls + $16,
         modified_at = now()
       WHERE s.app_id = $1 AND s.id = $2 RETURNING s.*`,
      [
        app,
        into,
        events.length,
        Math.max(0, Number(src.input_tokens) - taken.input),
        Math.max(0, Number(src.output_tokens) - taken.output),
        Math.max(0, src.error_count - taken.errors),
        src.first_event_at,
        src.last_event_at,
        last?.event_type ?? null,
        src.user_id,
        src.agent_name,
        src.session_name,
        src.title,
        src.model,
        // The provisional session's priced calls, spans stored in both sessions (a race of two
        // exports) among them: a call's price is not kept per event, so such a span's cost counts
        // twice here, where its tokens do not.
        src.cost_usd,
        src.unpriced_calls,
      ],
    );
    await client.query('COMMIT');
    return { into: updated.rows[0], from: { app_id: app, id: from }, events };
  }

  /** Forgets traces named before `cutoff` (RETENTION_DAYS): their sessions are as old. */
  async deleteBefore(cutoff: Date): Promise<void> {
    await this.pool.query('DELETE FROM otel_traces WHERE created_at < $1', [cutoff]);
  }
}

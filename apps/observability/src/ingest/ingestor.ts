import type { Pool, PoolClient } from 'pg';
import type { observability } from '@tessera/contracts';
import type { BusPublisher, Logger, Metrics } from '@tessera/kit';
import { publishLive } from '../bus/live';
import type { NormalizedEvent } from '../domain/event';
import { createPricer, type Pricer } from '@tessera/kit';
import { nextStatus } from '../domain/session-status';
import { titleOf } from '../domain/session-title';
import { appKey, deleteEmptySessions, deleteSessions, insertEvents, knownOf, upsertSessions, type Fresh, type Rollup, type UpsertedSession } from '../store/ingest';
import { toSession, type SessionRow } from '../store/sessions';
import { growUsage, type UsageGrowth } from '../store/usage';

type StoredEvent = observability.StoredEvent;

export type IngestResult =
  | { status: 'accepted'; seq: number }
  | { status: 'duplicate' }
  /** Not stored: the session was deleted (tombstoned), or PostgreSQL could not store it. */
  | { status: 'dropped'; reason: string }
  /** Not stored yet (`inOrder`): the session's earlier events are still on their way. */
  | { status: 'early' };

const RETRYABLE = new Set(['40P01', '40001', '23505']);

/** A session's key in a batch: its app ('' for none) and id; NUL never occurs in either (SafeText). */
const keyOf = (app: string, id: string) => `${app}\u0000${id}`;

/**
 * The one way events are stored, whatever path they came by. A session is an app's: an event
 * goes to the session of its own app with its id (the same id in two apps is two sessions). A
 * batch is one transaction: its sessions are upserted (and locked, in (app, id) order), the
 * events not stored before get the next seqs of their session, and the rollups grow by exactly
 * the rows inserted, so a batch delivered twice (a retried job, a client's retry) stores and
 * counts nothing twice. Once committed, an `ingested` message per app goes to every instance's
 * live sockets.
 */
export class Ingestor {
  constructor(
    private readonly pool: Pool,
    private readonly bus: BusPublisher,
    private readonly logger: Logger,
    private readonly metrics?: Metrics,
    /** Prices each model call once, as its event is first stored. */
    private readonly pricer: Pricer = createPricer(),
  ) {}

  /**
   * `inOrder`: the events of a session whose `sourceIndex` starts past the session's next one
   * are not stored but answered `early` (the rest of the batch is stored); without it, they are
   * stored as they come.
   */
  async accept(events: NormalizedEvent[], opts: { inOrder?: boolean } = {}): Promise<IngestResult[]> {
    if (events.length === 0) return [];
    for (let attempt = 0; ; attempt++) {
      const client = await this.pool.connect();
      try {
        const out = await this.write(client, events, opts.inOrder === true);
        client.release();
        return out;
      } catch (e) {
        await client.query('ROLLBACK').catch(() => undefined);
        client.release();
        const code = (e as { code?: string }).code ?? '';
        // Two batches locking sessions in different orders, or racing to create the same one: once more.
        if (RETRYABLE.has(code) && attempt < 4) continue;
        // Something PostgreSQL cannot store (class 22, data exception) that got past validation:
        // halves until it is found, so it alone is dropped. The order was checked before the insert.
        if (code.startsWith('22')) return this.split(events, (e as Error).message);
        throw e;
      }
    }
  }

  private async split(events: NormalizedEvent[], why: string): Promise<IngestResult[]> {
    if (events.length === 1) {
      this.logger.warn('event not storable; dropped', { session_id: events[0].sessionId, event_type: events[0].eventType, error: why.slice(0, 200) });
      return [{ status: 'dropped', reason: `not storable: ${why.slice(0, 200)}` }];
    }
    const mid = events.length >> 1;
    return [...(await this.accept(events.slice(0, mid))), ...(await this.accept(events.slice(mid)))];
  }

  private async write(client: PoolClient, events: NormalizedEvent[], inOrder: boolean): Promise<IngestResult[]> {
    const bySession = new Map<string, number[]>();
    events.forEach((e, i) => {
      const k = keyOf(appKey(e.appId), e.sessionId);
      const list = bySession.get(k);
      if (list) list.push(i);
      else bySession.set(k, [i]);
    });
    // Grouped by (app, id); the upsert takes the rows' locks in its own (app, id) order.
    const keys = [...bySession.keys()].sort();
    const cols: (string | null)[][] = [[], [], [], [], [], [], [], []];
    for (const k of keys) {
      const of = bySession.get(k)!.map((i) => events[i]);
      const first = <K extends keyof NormalizedEvent>(f: K) => (of.find((e) => e[f] !== null && e[f] !== undefined)?.[f] ?? null) as string | null;
      [appKey(of[0].appId), of[0].sessionId, of[0].source, first('userId'), first('workflow'), first('agentName'), first('projectDir'), first('sessionName')].forEach((v, c) => cols[c].push(v));
    }

    await client.query('BEGIN');
    const upserted = await upsertSessions(client, cols);
    const sessions = new Map(upserted.map((r) => [keyOf(r.app_id, r.id), r]));
    const keyA: string[] = [];
    const keyS: string[] = [];
    const keyE: string[] = [];
    for (const e of events) {
      if (e.eventId === null) continue;
      keyA.push(appKey(e.appId));
      keyS.push(e.sessionId);
      keyE.push(e.eventId);
    }
    const known = await knownOf(client, cols[0], cols[1], keyA, keyS, keyE);
    const tombstoned = new Set<string>();
    const stored = new Set<string>();
    for (const r of known) {
      const k = keyOf(r.app_id, r.session_id);
      if (r.event_id === null) tombstoned.add(k);
      else stored.add(`${k}\u0000${r.event_id}`);
    }
    // A deletion that committed between the upsert's snapshot and its lock: the row is a resurrection.
    const resurrected = [...tombstoned].filter((k) => sessions.has(k)).map((k) => sessions.get(k)!);
    if (resurrected.length > 0) await deleteSessions(client, resurrected);

    const results = new Array<IngestResult>(events.length);
    const fresh: Fresh[] = [];
    const usage = new Map<string, UsageGrowth>();
    const rollups: Rollup[] = [];
    const emptied: { app_id: string; id: string }[] = [];
    for (const key of keys) {
      const row = sessions.get(key);
      const at = bySession.get(key)!;
      if (!row || tombstoned.has(key)) {
        for (const i of at) results[i] = { status: 'dropped', reason: 'the session was deleted' };
        continue;
      }
      // Events with the producer's order go in that order, whatever order their jobs came in;
      // with inOrder, those past a gap (a predecessor not stored yet) wait.
      const order = at.every((i) => events[i].sourceIndex !== undefined) ? [...at].sort((a, b) => events[a].sourceIndex! - events[b].sourceIndex!) : at;
      const earlyFrom = inOrder ? firstGap(order.map((i) => events[i]), row.source_index, (e) => e.eventId !== null && stored.has(`${key}\u0000${e.eventId}`)) : Infinity;
      let r: Rollup | null = null;
      let seq = row.last_seq;
      for (const i of order) {
        const e = events[i];
        if (e.sourceIndex !== undefined && e.sourceIndex >= earlyFrom) {
          results[i] = { status: 'early' };
          continue;
        }
        if (e.eventId !== null) {
          const k = `${key}\u0000${e.eventId}`;
          if (stored.has(k)) {
            results[i] = { status: 'duplicate' };
            continue;
          }
          stored.add(k);
        }
        seq++;
        results[i] = { status: 'accepted', seq };
        fresh.push({ at: i, seq, e });
        r ??= { app: row.app_id, id: row.id, lastSeq: 0, n: 0, input: 0, output: 0, errors: 0, firstAt: e.timestamp, lastAt: e.timestamp, lastType: e.eventType, status: row.status, maxIndex: 0, title: null, model: null, cost: 0, priced: 0, unpriced: 0 };
        if (e.sourceIndex !== undefined && e.sourceIndex > r.maxIndex) r.maxIndex = e.sourceIndex;
        r.lastSeq = seq;
        r.n++;
        r.input += e.usage?.input ?? 0;
        r.output += e.usage?.output ?? 0;
        r.title ??= titleOf(e.userText);
        if (e.usage) {
          const call = this.meter(usage, e, row);
          if (call.model) r.model = call.model;
          if (call.cost === null) r.unpriced++;
          else {
            r.cost += call.cost;
            r.priced++;
          }
        } else if (e.model) r.model = e.model.slice(0, 256);
        if (e.error !== null) r.errors++;
        if (e.timestamp < r.firstAt) r.firstAt = e.timestamp;
        if (e.timestamp > r.lastAt) r.lastAt = e.timestamp;
        r.lastType = e.eventType;
        r.status = nextStatus(r.status, e.status);
      }
      if (r) rollups.push(r);
      else if (row.last_seq === 0 && earlyFrom !== Infinity) emptied.push(row);
    }
    // A session created only for events that must wait: not shown until they are stored.
    if (emptied.length > 0) await deleteEmptySessions(client, emptied);
    if (fresh.length === 0) {
      await client.query('COMMIT');
      return results;
    }

    const receivedAt = new Date();
    const updated = await insertEvents(client, fresh, rollups, receivedAt);
    // Under the locks every id was checked; anything else means the rules above are wrong: undo.
    if (updated.inserted !== fresh.length) throw new Error(`ingest inserted ${updated.inserted} of ${fresh.length} events`);
    // Only the events inserted, in the same transaction: a batch delivered twice counts once.
    await growUsage(client, [...usage.values()]);
    await client.query('COMMIT');
    this.metrics?.events.inc({ kind: 'observability_ingested' }, fresh.length);
    this.announce(updated.sessions, fresh, receivedAt);
    return results;
  }

  /**
   * A fresh event's model call added to its (app, user, workflow, agent, model, hour) rollup,
   * priced here, once. What the event does not name, its session may: a call is the session's
   * user's, in its workflow. Its model and price, for the session's row.
   */
  private meter(rows: Map<string, UsageGrowth>, e: NormalizedEvent, session: UpsertedSession): { model: string; cost: number | null } {
    const u = e.usage!;
    const attr = (k: string) => (typeof e.attributes[k] === 'string' ? (e.attributes[k] as string) : null);
    const model = (u.model ?? e.model ?? attr('gen_ai.response.model') ?? attr('gen_ai.request.model') ?? '').slice(0, 256);
    const provider = u.provider ?? attr('gen_ai.provider.name') ?? attr('gen_ai.system');
    // OpenTelemetry reports the parts as attributes of their own (the runtime and POST /events in usage).
    const count = (k: string) => {
      const v = e.attributes[k];
      const n = typeof v === 'string' && /^\d{1,15}$/.test(v) ? Number(v) : v;
      return typeof n === 'number' && Number.isSafeInteger(n) && n >= 0 ? n : undefined;
    };
    const cacheRead = u.cacheRead ?? count('gen_ai.usage.cache_read.input_tokens');
    const cacheWrite = u.cacheWrite ?? count('gen_ai.usage.cache_creation.input_tokens');
    const reasoning = u.reasoning ?? count('gen_ai.usage.reasoning.output_tokens');
    const cost = this.pricer.costOf({ ...u, cacheRead, cacheWrite, reasoning, model, provider }, e.timestamp);
    const hour = new Date(Math.floor(e.timestamp.getTime() / 3_600_000) * 3_600_000);
    const key = [session.app_id, e.userId ?? session.user_id ?? '', e.workflow ?? session.workflow ?? '', e.agentName ?? session.agent_name ?? '', model];
    const k = `${key.join('\u0000')}\u0000${hour.getTime()}`;
    let g = rows.get(k);
    if (!g) {
      const [app, user, workflow, agent] = key;
      rows.set(k, (g = { app, user, workflow, agent, model, hour, calls: 0, input: 0, output: 0, cacheRead: 0, cacheWrite: 0, reasoning: 0, cost: 0, unpriced: 0 }));
    }
    g.calls++;
    g.input += u.input;
    g.output += u.output;
    g.cacheRead += cacheRead ?? 0;
    g.cacheWrite += cacheWrite ?? 0;
    g.reasoning += reasoning ?? 0;
    if (cost === null) g.unpriced++;
    else g.cost += cost;
    return { model, cost };
  }

  /**
   * Best effort after the commit: a live socket that misses it resumes from the store. One
   * message per app of the batch, naming that one app: a socket tells the same session id of two
   * apps apart by it (the bus's events carry only the id).
   */
  private announce(rows: SessionRow[], fresh: Fresh[], receivedAt: Date): void {
    const received = receivedAt.toISOString();
    const byApp = new Map<string, { rows: SessionRow[]; fresh: Fresh[] }>();
    const of = (app: string) => {
      let g = byApp.get(app);
      if (!g) byApp.set(app, (g = { rows: [], fresh: [] }));
      return g;
    };
    for (const r of rows) of(r.app_id).rows.push(r);
    for (const f of fresh) of(appKey(f.e.appId)).fresh.push(f);
    for (const [app, g] of byApp) {
      const appId = app === '' ? null : app;
      publishLive(this.bus, {
        kind: 'ingested',
        app_ids: [appId],
        sessions: g.rows.map(toSession),
        events: g.fresh.map((f) => ({ session_id: f.e.sessionId, seq: f.seq, wire: JSON.stringify({ type: 'event', session_id: f.e.sessionId, app_id: appId, event: storedOf(f, received) }) })),
      }).catch((e: Error) => this.logger.warn('could not publish ingested events', { error: e.message }));
    }
  }
}

/**
 * The producer's index from which a session's events must wait: the first one past the next
 * expected (`stored` + 1, growing as the batch fills it), or Infinity when there is no gap.
 * `done`: events stored before (duplicates), which fill nothing.
 */
export function firstGap(ordered: NormalizedEvent[], stored: number, done: (e: NormalizedEvent) => boolean): number {
  let next = stored + 1;
  for (const e of ordered) {
    if (e.sourceIndex === undefined || done(e)) continue;
    if (e.sourceIndex > next) return e.sourceIndex;
    next = Math.max(next, e.sourceIndex + 1);
  }
  return Infinity;
}

export function storedOf(f: { seq: number; e: NormalizedEvent }, receivedAt: string): StoredEvent {
  const e = f.e;
  return {
    seq: f.seq,
    session_id: e.sessionId,
    event_type: e.eventType,
    event_id: e.eventId,
    timestamp: e.timestamp.toISOString(),
    received_at: receivedAt,
    agent_name: e.agentName,
    model: e.model ?? null,
    tool_name: e.toolName,
    ...(e.toolInput !== undefined && e.toolInput !== null && { tool_input: e.toolInput }),
    ...(e.toolOutput !== undefined && e.toolOutput !== null && { tool_output: e.toolOutput }),
    error: e.error,
    exit_code: e.exitCode,
    reason: e.reason,
    role: e.role,
    content: e.content,
    attributes: e.attributes,
  };
}

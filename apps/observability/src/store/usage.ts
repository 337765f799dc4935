import type { Pool, PoolClient } from 'pg';
import { inTransaction } from '@tessera/kit';
import type { observability } from '@tessera/contracts';
import type { AppScope } from '../domain/access';

/*
 * The usage rollups (table usage_hourly): grown inside the ingest transaction by the events it
 * inserts (ingest/ingestor.ts), read by GET /usage. '' stands for a dimension a call did not name.
 */

/** One row's growth: the calls of one (app, user, workflow, agent, model, hour) in a batch. */
export interface UsageGrowth {
  app: string;
  user: string;
  workflow: string;
  agent: string;
  model: string;
  hour: Date;
  calls: number;
  input: number;
  output: number;
  cacheRead: number;
  cacheWrite: number;
  reasoning: number;
  /** USD of the priced calls. */
  cost: number;
  unpriced: number;
}

/** In key order, the lock order, so two batches growing the same rows never deadlock. */
const GROW_SQL = `
INSERT INTO usage_hourly AS u (app_id, user_id, workflow, agent, model, hour, calls, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, reasoning_tokens, cost_usd, unpriced_calls)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::timestamptz[], $7::int8[], $8::int8[], $9::int8[], $10::int8[], $11::int8[], $12::int8[], $13::numeric[], $14::int8[])
ORDER BY 1, 2, 3, 4, 5, 6
ON CONFLICT (app_id, user_id, workflow, agent, model, hour) DO UPDATE SET
  calls = u.calls + EXCLUDED.calls,
  input_tokens = u.input_tokens + EXCLUDED.input_tokens,
  output_tokens = u.output_tokens + EXCLUDED.output_tokens,
  cache_read_tokens = u.cache_read_tokens + EXCLUDED.cache_read_tokens,
  cache_write_tokens = u.cache_write_tokens + EXCLUDED.cache_write_tokens,
  reasoning_tokens = u.reasoning_tokens + EXCLUDED.reasoning_tokens,
  cost_usd = u.cost_usd + EXCLUDED.cost_usd,
  unpriced_calls = u.unpriced_calls + EXCLUDED.unpriced_calls`;

/** Grows the rollups by a batch's calls, one growth per key (a statement may touch a row once), on the batch's client. */
export async function growUsage(client: PoolClient, rows: UsageGrowth[]): Promise<void> {
  if (rows.length === 0) return;
  const col = <K extends keyof UsageGrowth>(k: K) => rows.map((r) => r[k]);
  await client.query({
    name: 'obs-usage-grow',
    text: GROW_SQL,
    values: [col('app'), col('user'), col('workflow'), col('agent'), col('model'), col('hour'), col('calls'), col('input'), col('output'), col('cacheRead'), col('cacheWrite'), col('reasoning'), rows.map((r) => r.cost.toFixed(12)), col('unpriced')],
  });
}

/** The SQL column of each dimension (a fixed list: nothing a caller sends becomes SQL). */
const COLUMN: Record<observability.UsageDimension, string> = { app: 'app_id', user: 'user_id', workflow: 'workflow', agent: 'agent', model: 'model' };
const FIELD: Record<observability.UsageDimension, 'app_id' | 'user_id' | 'workflow' | 'agent' | 'model'> = COLUMN as never;

const SUMS = `sum(calls)::int8 AS calls, sum(input_tokens)::int8 AS input_tokens, sum(output_tokens)::int8 AS output_tokens,
  sum(cache_read_tokens)::int8 AS cache_read_tokens, sum(cache_write_tokens)::int8 AS cache_write_tokens, sum(reasoning_tokens)::int8 AS reasoning_tokens,
  sum(cost_usd)::float8 AS cost_usd, sum(unpriced_calls)::int8 AS unpriced_calls`;

type Sums = Omit<observability.UsageRow, 'period_start' | 'app_id' | 'user_id' | 'workflow' | 'agent' | 'model'>;
interface SumRow {
  calls: string | null;
  input_tokens: string | null;
  output_tokens: string | null;
  cache_read_tokens: string | null;
  cache_write_tokens: string | null;
  reasoning_tokens: string | null;
  cost_usd: number | null;
  unpriced_calls: string | null;
}

function sumsOf(r: SumRow): Sums {
  const calls = Number(r.calls ?? 0);
  const unpriced = Number(r.unpriced_calls ?? 0);
  return {
    calls,
    input_tokens: Number(r.input_tokens ?? 0),
    output_tokens: Number(r.output_tokens ?? 0),
    cache_read_tokens: Number(r.cache_read_tokens ?? 0),
    cache_write_tokens: Number(r.cache_write_tokens ?? 0),
    reasoning_tokens: Number(r.reasoning_tokens ?? 0),
    // No call priced: the cost is unknown, not 0.
    cost_usd: calls > unpriced ? Number(r.cost_usd ?? 0) : null,
    unpriced_calls: unpriced,
  };
}

export interface UsageRange {
  from: Date;
  to: Date;
  granularity: 'hour' | 'day';
  groupBy: observability.UsageDimension[];
  appId?: string;
  limit: number;
}

/** The reads of one report see one snapshot, so that rows and total agree (a batch committed between them would not). */
const SNAPSHOT = 'BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY';

export class UsageStore {
  constructor(private readonly pool: Pool) {}

  /** The rows of `range` in `scope` (`'*'`: every app, and calls of no app), period by period, and their total. */
  async report(scope: AppScope, range: UsageRange): Promise<{ rows: observability.UsageRow[]; total: Sums; truncated: boolean }> {
    const values: unknown[] = [range.from, range.to];
    const where = ['hour >= $1', 'hour < $2'];
    if (scope !== '*') {
      values.push(scope);
      where.push(`app_id = ANY($${values.length}::text[])`);
    }
    if (range.appId !== undefined) {
      values.push(range.appId);
      where.push(`app_id = $${values.length}`);
    }
    const period = range.granularity === 'hour' ? 'hour' : `date_trunc('day', hour, 'UTC')`;
    const dims = range.groupBy.map((d) => COLUMN[d]);
    const keys = ['period', ...dims];
    // The rows and their total from one snapshot: a batch committed between two reads would make them disagree.
    const [total, rows] = await inTransaction(this.pool, (client) =>
      Promise.all([
        client.query<SumRow>(`SELECT ${SUMS} FROM usage_hourly WHERE ${where.join(' AND ')}`, values),
        client.query<SumRow & { period: Date } & Record<string, string>>(
          `SELECT ${period} AS period${dims.map((c) => `, ${c}`).join('')}, ${SUMS} FROM usage_hourly WHERE ${where.join(' AND ')}
           GROUP BY ${keys.join(', ')} ORDER BY ${keys.join(', ')} LIMIT $${values.length + 1}`,
          [...values, range.limit + 1],
        ),
      ]),
      SNAPSHOT,
    );
    const truncated = rows.rows.length > range.limit;
    return {
      rows: rows.rows.slice(0, range.limit).map((r) => {
        const row: observability.UsageRow = { period_start: r.period.toISOString(), ...sumsOf(r) };
        for (const d of range.groupBy) row[FIELD[d]] = r[COLUMN[d]] === '' ? null : r[COLUMN[d]];
        return row;
      }),
      total: sumsOf(total.rows[0]),
      truncated,
    };
  }

  /**
   * Turn latencies of `range` in `scope`: p50 and p99 per period (and app or workflow), from the
   * runtime's `chat.run_complete` events (`first_text_ms`, `duration_ms`; a value that is not a
   * number, as an outside agent could post one, is left out).
   */
  async latency(scope: AppScope, range: Omit<UsageRange, 'groupBy' | 'limit'> & { groupBy?: observability.LatencyQuery['group_by'] }): Promise<{ rows: observability.LatencyRow[]; total: observability.LatencyReply['total'] }> {
    const values: unknown[] = [range.from, range.to];
    const where = [`e.event_type = 'chat.run_complete'`, 'e.timestamp >= $1', 'e.timestamp < $2'];
    if (scope !== '*') {
      values.push(scope);
      where.push(`e.app_id = ANY($${values.length}::text[])`);
    }
    if (range.appId !== undefined) {
      values.push(range.appId);
      where.push(`e.app_id = $${values.length}`);
    }
    const number = (field: string) => `CASE WHEN jsonb_typeof(e.attributes -> 'tessera.payload' -> '${field}') = 'number' THEN (e.attributes -> 'tessera.payload' ->> '${field}')::float8 END`;
    const turns = `SELECT e.app_id, e.session_id, e.timestamp, ${number('first_text_ms')} AS ft, ${number('duration_ms')} AS dur FROM events e WHERE ${where.join(' AND ')}`;
    const PCT = `count(*)::int AS turns,
      percentile_cont(0.5) WITHIN GROUP (ORDER BY ft) AS ft50, percentile_cont(0.99) WITHIN GROUP (ORDER BY ft) AS ft99,
      percentile_cont(0.5) WITHIN GROUP (ORDER BY dur) AS d50, percentile_cont(0.99) WITHIN GROUP (ORDER BY dur) AS d99`;
    const period = range.granularity === 'hour' ? `date_trunc('hour', t.timestamp, 'UTC')` : `date_trunc('day', t.timestamp, 'UTC')`;
    // A turn's workflow is its session's (the chat's); an app of none is ''.
    const dim = range.groupBy === 'workflow' ? 's.workflow' : range.groupBy === 'app' ? 't.app_id' : null;
    const join = range.groupBy === 'workflow' ? 'LEFT JOIN sessions s ON s.app_id = t.app_id AND s.id = t.session_id' : '';
    type Pct = { turns: number; ft50: number | null; ft99: number | null; d50: number | null; d99: number | null };
    const [total, rows] = await inTransaction(this.pool, (client) =>
      Promise.all([
        client.query<Pct>(`SELECT ${PCT} FROM (${turns}) t WHERE t.dur IS NOT NULL`, values),
        client.query<Pct & { period: Date; dim: string | null }>(
          `SELECT ${period} AS period, ${dim ?? 'NULL::text'} AS dim, ${PCT} FROM (${turns}) t ${join} WHERE t.dur IS NOT NULL GROUP BY 1, 2 ORDER BY 1, 2`,
          values,
        ),
      ]),
      SNAPSHOT,
    );
    const ms = (v: number | null) => (v === null ? null : Math.round(v));
    const latencies = (r: Pct) => ({ turns: r.turns, first_text_ms: { p50: ms(r.ft50), p99: ms(r.ft99) }, turn_ms: { p50: ms(r.d50), p99: ms(r.d99) } });
    return {
      rows: rows.rows.map((r) => ({
        period_start: r.period.toISOString(),
        ...(range.groupBy === 'app' && { app_id: r.dim === '' ? null : r.dim }),
        ...(range.groupBy === 'workflow' && { workflow: r.dim }),
        ...latencies(r),
      })),
      total: latencies(total.rows[0]),
    };
  }
}

/**
 * The dashboard's figures from observability's reads: usage rows (`GET /usage`) summed by period
 * and by a dimension, and sessions (`GET /sessions`) counted by the period they started in. Pure:
 * the page fetches, these shape.
 */
import type { observability } from '@tessera/contracts';
import type { Session } from './types';

export type UsageRow = observability.UsageRow;
export type UsageReply = observability.UsageReply;
export type UsageTotal = UsageReply['total'];

/** The dashboard reads again at least this often while nothing reaches the live socket. */
export const REFRESH_MS = 60_000;
/** And starts a read at most this often however many session updates arrive: a busy app does not flood the API. */
export const MIN_GAP_MS = 5_000;

export type RangeKey = '24h' | '7d' | '30d';
export const RANGES: { key: RangeKey; label: string }[] = [
  { key: '24h', label: 'Last 24 hours, by hour' },
  { key: '7d', label: 'Last 7 days, by day' },
  { key: '30d', label: 'Last 30 days, by day' },
];

export interface Range {
  from: string;
  to: string;
  granularity: 'hour' | 'day';
}

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

/**
 * The periods a range covers, whole as `GET /usage` counts them: the 24 hours up to the end of the
 * current hour, or the 7 (30) UTC days up to the end of today.
 */
export function rangeOf(key: RangeKey, now: number): Range {
  if (key === '24h') {
    const to = Math.ceil((now + 1) / HOUR) * HOUR;
    return { from: new Date(to - 24 * HOUR).toISOString(), to: new Date(to).toISOString(), granularity: 'hour' };
  }
  const days = key === '7d' ? 7 : 30;
  const to = Math.floor(now / DAY) * DAY + DAY;
  return { from: new Date(to - days * DAY).toISOString(), to: new Date(to).toISOString(), granularity: 'day' };
}

/** Each period's start (epoch ms), oldest first. */
export function periodsOf(r: Range): number[] {
  const step = r.granularity === 'hour' ? HOUR : DAY;
  const out: number[] = [];
  for (let t = Date.parse(r.from); t < Date.parse(r.to); t += step) out.push(t);
  return out;
}

export type Split = 'model' | 'app' | 'workflow';
const keyOf = (split: Split) => (r: UsageRow) => (split === 'model' ? r.model : split === 'app' ? r.app_id : r.workflow) ?? '(none)';

export interface Series {
  /** Period starts, epoch ms. */
  x: number[];
  /** One per split value, most tokens first. */
  lines: { label: string; tokens: number[]; cost: (number | null)[] }[];
}

/**
 * Tokens (input + output) and cost per period for each model or app. A period without a priced
 * call of the line has no cost point (null: a gap), never 0.
 */
export function seriesOf(rows: UsageRow[], split: Split, periods: number[]): Series {
  const index = new Map(periods.map((p, i) => [p, i]));
  const lines = new Map<string, { label: string; tokens: number[]; cost: (number | null)[]; total: number }>();
  const key = keyOf(split);
  for (const r of rows) {
    const i = index.get(Date.parse(r.period_start));
    if (i === undefined) continue;
    const label = key(r);
    let line = lines.get(label);
    if (!line) lines.set(label, (line = { label, tokens: periods.map(() => 0), cost: periods.map(() => null), total: 0 }));
    line.tokens[i] += r.input_tokens + r.output_tokens;
    line.total += r.input_tokens + r.output_tokens;
    if (r.cost_usd !== null) line.cost[i] = (line.cost[i] ?? 0) + r.cost_usd;
  }
  return { x: periods, lines: [...lines.values()].sort((a, b) => b.total - a.total || a.label.localeCompare(b.label)).map(({ label, tokens, cost }) => ({ label, tokens, cost })) };
}

export interface Ranked {
  key: string;
  calls: number;
  tokens: number;
  /** The priced calls' cost; null when none was priced. */
  cost: number | null;
  unpriced: number;
}

/** Rows summed over their periods by `key`, the costliest first (then by tokens), at most `n`. */
export function topBy(rows: UsageRow[], key: (r: UsageRow) => string, n: number): Ranked[] {
  const sums = new Map<string, Ranked>();
  for (const r of rows) {
    const k = key(r);
    const s = sums.get(k) ?? { key: k, calls: 0, tokens: 0, cost: null, unpriced: 0 };
    s.calls += r.calls;
    s.tokens += r.input_tokens + r.output_tokens;
    if (r.cost_usd !== null) s.cost = (s.cost ?? 0) + r.cost_usd;
    s.unpriced += r.unpriced_calls;
    sums.set(k, s);
  }
  return [...sums.values()].sort((a, b) => (b.cost ?? -1) - (a.cost ?? -1) || b.tokens - a.tokens || a.key.localeCompare(b.key)).slice(0, n);
}

export interface SessionCounts {
  started: number[];
  /** Of those started, the ones that recorded an error. */
  withErrors: number[];
  /** Errors recorded by the sessions started in the period. */
  errors: number[];
}

/** Sessions by the period they started in (`created_at`); those started outside the periods are left out. */
export function sessionCounts(sessions: Session[], periods: number[], granularity: 'hour' | 'day'): SessionCounts {
  const step = granularity === 'hour' ? HOUR : DAY;
  const out: SessionCounts = { started: periods.map(() => 0), withErrors: periods.map(() => 0), errors: periods.map(() => 0) };
  if (periods.length === 0) return out;
  for (const s of sessions) {
    const i = Math.floor((Date.parse(s.created_at) - periods[0]) / step);
    if (!(i >= 0 && i < periods.length)) continue;
    out.started[i]++;
    out.errors[i] += s.error_count;
    if (s.error_count > 0) out.withErrors[i]++;
  }
  return out;
}

export type LatencyReply = observability.LatencyReply;

/**
 * `GET /latency`'s rows (one per period, no split) as four lines over the range's periods: time to
 * first text and to the turn's end, p50 and p99; a period without turns is a gap, not a zero.
 */
export function latencyLines(rows: observability.LatencyRow[], periods: number[]): { label: string; values: (number | null)[] }[] {
  const index = new Map(periods.map((p, i) => [p, i]));
  const line = (label: string, pick: (r: observability.LatencyRow) => number | null) => {
    const values: (number | null)[] = periods.map(() => null);
    for (const r of rows) {
      const i = index.get(Date.parse(r.period_start));
      if (i !== undefined) values[i] = pick(r);
    }
    return { label, values };
  };
  return [
    line('first text p50', (r) => r.first_text_ms.p50),
    line('first text p99', (r) => r.first_text_ms.p99),
    line('turn p50', (r) => r.turn_ms.p50),
    line('turn p99', (r) => r.turn_ms.p99),
  ];
}

import { periodsOf, rangeOf, seriesOf, sessionCounts, topBy, type UsageRow } from './usage';
import type { Session } from './types';

const NOW = Date.parse('2026-12-06T19:42:15.000Z');

function row(period: string, fields: Partial<UsageRow>): UsageRow {
  return { period_start: period, calls: 1, input_tokens: 0, output_tokens: 0, cache_read_tokens: 0, cache_write_tokens: 0, reasoning_tokens: 0, cost_usd: null, unpriced_calls: 0, ...fields };
}

describe('rangeOf', () => {
  it('takes the 24 hours up to the end of the current hour, by hour', () => {
    const r = rangeOf('24h', NOW);
    expect(r).toEqual({ from: '2026-12-05T20:00:00.000Z', to: '2026-12-06T20:00:00.000Z', granularity: 'hour' });
    expect(periodsOf(r)).toHaveLength(24);
  });
  it('takes whole UTC days up to the end of today, by day', () => {
    expect(rangeOf('7d', NOW)).toEqual({ from: '2026-11-30T00:00:00.000Z', to: '2026-12-07T00:00:00.000Z', granularity: 'day' });
    expect(periodsOf(rangeOf('30d', NOW))).toHaveLength(30);
  });
  it('still covers the current hour exactly on the hour', () => {
    expect(rangeOf('24h', Date.parse('2026-12-06T19:00:00.000Z')).to).toBe('2026-12-06T20:00:00.000Z');
  });
});

describe('seriesOf', () => {
  const periods = periodsOf({ from: '2026-12-06T10:00:00.000Z', to: '2026-12-06T13:00:00.000Z', granularity: 'hour' });
  it('sums tokens per period and line, most tokens first; an unpriced period has no cost point, not 0', () => {
    const s = seriesOf(
      [
        row('2026-12-06T10:00:00.000Z', { model: 'scripted', input_tokens: 10, output_tokens: 5, cost_usd: 0.001 }),
        row('2026-12-06T12:00:00.000Z', { model: 'scripted', input_tokens: 1, output_tokens: 1, cost_usd: 0.002 }),
        row('2026-12-06T12:00:00.000Z', { model: 'llama', input_tokens: 100, output_tokens: 50, unpriced_calls: 1 }),
        row('2026-12-06T09:00:00.000Z', { model: 'outside', input_tokens: 7 }),
      ],
      'model',
      periods,
    );
    expect(s.x).toEqual(periods);
    expect(s.lines).toEqual([
      { label: 'llama', tokens: [0, 0, 150], cost: [null, null, null] },
      { label: 'scripted', tokens: [15, 0, 2], cost: [0.001, null, 0.002] },
    ]);
  });
  it('splits by app, naming a missing value', () => {
    const s = seriesOf([row('2026-12-06T11:00:00.000Z', { app_id: null, input_tokens: 3 })], 'app', periods);
    expect(s.lines.map((l) => l.label)).toEqual(['(none)']);
  });
});

describe('topBy', () => {
  it('sums over periods, costliest first, then by tokens; unpriced cost stays null', () => {
    const rows = [
      row('2026-12-06T10:00:00.000Z', { user_id: 'a', input_tokens: 10, cost_usd: 0.01 }),
      row('2026-12-06T11:00:00.000Z', { user_id: 'a', input_tokens: 10, cost_usd: 0.02, unpriced_calls: 1, calls: 2 }),
      row('2026-12-06T10:00:00.000Z', { user_id: 'b', input_tokens: 1000, unpriced_calls: 1 }),
      row('2026-12-06T10:00:00.000Z', { user_id: 'c', input_tokens: 5, cost_usd: 0.05 }),
    ];
    const top = topBy(rows, (r) => r.user_id ?? '', 10);
    expect(top.map((t) => [t.key, t.calls, t.tokens, t.cost && +t.cost.toFixed(6), t.unpriced])).toEqual([
      ['c', 1, 5, 0.05, 0],
      ['a', 3, 20, 0.03, 1],
      ['b', 1, 1000, null, 1],
    ]);
    expect(topBy(rows, (r) => r.user_id ?? '', 1).map((t) => t.key)).toEqual(['c']);
  });
});

describe('sessionCounts', () => {
  const session = (created: string, errors: number) => ({ created_at: created, error_count: errors }) as Session;
  it('counts sessions and their errors by the period they started in, leaving out older ones', () => {
    const periods = periodsOf({ from: '2026-12-05T00:00:00.000Z', to: '2026-12-07T00:00:00.000Z', granularity: 'day' });
    const c = sessionCounts([session('2026-12-05T08:00:00.000Z', 0), session('2026-12-06T23:59:59.000Z', 2), session('2026-12-06T01:00:00.000Z', 1), session('2026-12-04T23:00:00.000Z', 5)], periods, 'day');
    expect(c).toEqual({ started: [1, 2], withErrors: [0, 2], errors: [0, 3] });
  });
});

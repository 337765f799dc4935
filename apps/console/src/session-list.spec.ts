import fc from 'fast-check';
import { byUser, matches, NO_FILTERS, range, sorted, type SortKey } from './session-list';
import type { Session } from './types';

function session(id: string, fields: Partial<Session> = {}): Session {
  return {
    session_id: id,
    session_name: '',
    title: null,
    status: 'finished',
    created_at: '2026-12-06T10:00:00.000Z',
    modified_at: '2026-12-06T10:00:00.000Z',
    project_dir: null,
    agent_name: null,
    app_id: 'a',
    user_id: null,
    workflow: null,
    source: 'runtime',
    event_count: 1,
    usage: { input_tokens: 0, output_tokens: 0, total_tokens: 0 },
    model: null,
    cost_usd: null,
    unpriced_calls: 0,
    error_count: 0,
    duration_ms: 0,
    last_event_type: null,
    last_event_at: null,
    ...fields,
  };
}

describe('matches', () => {
  it('finds the text in the name, title, user or id, whatever its case', () => {
    const s = session('chat-1', { session_name: 'Nightly', title: 'Nightly', user_id: 'Ada@example.com' });
    for (const q of ['night', 'ADA@', 'chat-1', 'HT']) expect(matches(s, { ...NO_FILTERS, q })).toBe(true);
    expect(matches(s, { ...NO_FILTERS, q: 'grace' })).toBe(false);
    // What the server found by text the page cannot see (a named session's first message).
    expect(matches(s, { ...NO_FILTERS, q: 'grace' }, new Set(['chat-1']))).toBe(true);
  });

  it('keeps the sessions active within the days chosen, both included', () => {
    const f = { ...NO_FILTERS, from: '2026-12-05', to: '2026-12-06' };
    const { from, to } = range(f);
    expect(Date.parse(to!) - Date.parse(from!)).toBe(2 * 86_400_000);
    expect(matches(session('in', { modified_at: new Date(Date.parse(from!) + 1).toISOString() }), f)).toBe(true);
    expect(matches(session('before', { modified_at: new Date(Date.parse(from!) - 1).toISOString() }), f)).toBe(false);
    expect(matches(session('after', { modified_at: to! }), f)).toBe(false);
  });
});

describe('sorted', () => {
  const arb = fc.array(
    fc.record({ tokens: fc.nat(1000), cost: fc.option(fc.double({ min: 0, max: 5, noNaN: true }), { nil: null }), user: fc.option(fc.constantFrom('ada', 'grace', 'Bob'), { nil: null }), at: fc.nat(10_000) }),
    { maxLength: 30 },
  );
  const list = (xs: { tokens: number; cost: number | null; user: string | null; at: number }[]) =>
    xs.map((x, i) => session(`s${i}`, { user_id: x.user, cost_usd: x.cost, usage: { input_tokens: x.tokens, output_tokens: 0, total_tokens: x.tokens }, modified_at: new Date(x.at * 1000).toISOString() }));

  it('orders by the column either way, an unknown value last, keeping every session once', () => {
    fc.assert(
      fc.property(arb, fc.constantFrom<SortKey>('tokens', 'cost', 'user', 'activity'), fc.boolean(), (xs, key, desc) => {
        const out = sorted(list(xs), { key, desc });
        expect(out.map((s) => s.session_id).sort()).toEqual(list(xs).map((s) => s.session_id).sort());
        const v = (s: Session) => (key === 'tokens' ? s.usage.total_tokens : key === 'cost' ? s.cost_usd : key === 'user' ? s.user_id?.toLowerCase() ?? null : Date.parse(s.modified_at));
        for (let i = 1; i < out.length; i++) {
          const [a, b] = [v(out[i - 1]), v(out[i])];
          if (a === null) expect(b).toBeNull();
          else if (b !== null) expect(desc ? a >= b : a <= b).toBe(true);
        }
      }),
    );
  });
});

describe('byUser', () => {
  it('sums each user’s sessions, tokens and priced cost, unknown when none was priced', () => {
    const groups = byUser([
      session('1', { user_id: 'ada', cost_usd: 0.5, usage: { input_tokens: 10, output_tokens: 5, total_tokens: 15 } }),
      session('2', { user_id: null, unpriced_calls: 2, usage: { input_tokens: 1, output_tokens: 1, total_tokens: 2 } }),
      session('3', { user_id: 'ada', cost_usd: null, unpriced_calls: 1, usage: { input_tokens: 3, output_tokens: 0, total_tokens: 3 } }),
      session('4', { user_id: 'ada', cost_usd: 0.25 }),
    ]);
    expect(groups.map((g) => [g.user, g.sessions.map((s) => s.session_id), g.tokens, g.cost, g.unpriced])).toEqual([
      ['ada', ['1', '3', '4'], 18, 0.75, 1],
      [null, ['2'], 2, null, 2],
    ]);
  });
});

import { useCallback, useEffect, useState, type FormEvent } from 'react';
import { api, messageOf } from '../api';
import { ErrorNote } from '../ErrorBoundary';
import { num, usd } from '../format';
import type { Budget, BudgetLimits, BudgetsReply, UserBudgetReply } from '../types';

const REFRESH_MS = 10_000;
const FIELDS: { key: keyof BudgetLimits; label: string; money?: boolean; userOnly?: boolean }[] = [
  { key: 'tokens_per_day', label: 'Tokens / day' },
  { key: 'tokens_per_month', label: 'Tokens / month' },
  { key: 'cost_usd_per_day', label: 'USD / day', money: true },
  { key: 'cost_usd_per_month', label: 'USD / month', money: true },
  { key: 'turns_per_minute', label: 'Turns / minute', userOnly: true },
];

/** Whose budget a row is, in words. */
const whose = (b: Budget) => (b.user_id === null ? 'The app (all users)' : b.user_id === '*' ? 'Each user' : b.user_id);
const pathOf = (appId: string, userId: string | null) => `/api/budgets/${encodeURIComponent(appId)}${userId === null ? '' : `/users/${encodeURIComponent(userId)}`}`;

/** A limit with what is spent of it and what is left: "1,200 of 50,000 (48,800 left)", a bar under it. */
function Limit({ b, field }: { b: Budget; field: (typeof FIELDS)[number] }) {
  const limit = b.limits[field.key];
  if (limit == null) return <span className="muted">–</span>;
  const fmt = (v: number) => (field.money ? usd(v) : num(v));
  if (field.key === 'turns_per_minute' || !b.spent) return <span>{fmt(limit)}</span>;
  const window = field.key.endsWith('day') ? b.spent.day : b.spent.month;
  const used = field.money ? window.cost_usd : window.tokens;
  const left = b.remaining?.[field.key as keyof NonNullable<Budget['remaining']>] ?? null;
  const share = Math.min(1, used / limit);
  return (
    <span className={`limit${left === 0 ? ' spent' : ''}`} title={`resets ${new Date(window.resets_at).toLocaleString()}`}>
      {fmt(used)} of {fmt(limit)}
      <span className="muted"> ({left === 0 ? 'spent' : `${fmt(left ?? 0)} left`})</span>
      <span className="bar" aria-hidden>
        <span style={{ width: `${Math.round(share * 100)}%` }} />
      </span>
    </span>
  );
}

/**
 * The app's budgets (runtime `/api/budgets`): the app's own, each user's and single users', each
 * with what is spent and left of every limit; a form sets or replaces one; a user lookup shows
 * which budget applies to someone and what they have left.
 */
export function BudgetsPage({ appId }: { appId: string }) {
  const [budgets, setBudgets] = useState<Budget[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [who, setWho] = useState<'app' | 'every' | 'user'>('app');
  const [userId, setUserId] = useState('');
  const [form, setForm] = useState<Record<string, string>>({});
  const [saved, setSaved] = useState<string | null>(null);
  const [lookup, setLookup] = useState('');
  const [found, setFound] = useState<UserBudgetReply | null>(null);

  const reload = useCallback(async () => {
    try {
      const r = await api<BudgetsReply>('GET', `/api/budgets?app_id=${encodeURIComponent(appId)}`);
      setBudgets(r.budgets);
      setError(null);
    } catch (e) {
      setError(`Could not read the budgets: ${messageOf(e)}`);
    }
  }, [appId]);
  useEffect(() => {
    void reload();
    const t = setInterval(() => void reload(), REFRESH_MS);
    return () => clearInterval(t);
  }, [reload]);

  const edit = (b: Budget) => {
    setWho(b.user_id === null ? 'app' : b.user_id === '*' ? 'every' : 'user');
    setUserId(b.user_id && b.user_id !== '*' ? b.user_id : '');
    setForm(Object.fromEntries(FIELDS.map((f) => [f.key, b.limits[f.key] == null ? '' : String(b.limits[f.key])])));
    setSaved(null);
  };
  const save = async (e: FormEvent) => {
    e.preventDefault();
    const subject = who === 'app' ? null : who === 'every' ? '*' : userId.trim();
    if (subject === '') return setError('Name the user whose budget this is.');
    const limits: BudgetLimits = {};
    for (const f of FIELDS) {
      const v = form[f.key]?.trim();
      if (!v || (f.userOnly && who === 'app')) continue;
      (limits as Record<string, number>)[f.key] = Number(v);
    }
    try {
      const b = await api<Budget>('PUT', pathOf(appId, subject), limits);
      setSaved(`Saved: ${whose(b)}`);
      setError(null);
      await reload();
    } catch (err) {
      setError(`Could not save the budget: ${messageOf(err)}`);
    }
  };
  const remove = async (b: Budget) => {
    try {
      await api('DELETE', pathOf(appId, b.user_id));
      await reload();
    } catch (err) {
      setError(`Could not remove the budget: ${messageOf(err)}`);
    }
  };
  const look = async (e: FormEvent) => {
    e.preventDefault();
    try {
      setFound(await api<UserBudgetReply>('GET', pathOf(appId, lookup.trim())));
      setError(null);
    } catch (err) {
      setFound(null);
      setError(`Could not read ${lookup.trim()}'s budget: ${messageOf(err)}`);
    }
  };

  return (
    <section className="budgets">
      <h1>Budgets</h1>
      <p className="muted">
        What {appId} and its users may spend on model calls, per UTC day and month. A spent budget ends a turn before its next model call (BUDGET_EXCEEDED) and refuses new
        messages until it resets.
      </p>
      <ErrorNote error={error} />
      {budgets === null && !error && <p className="muted">Loading…</p>}
      {budgets && (
        <table className="list" data-testid="budgets-table">
          <thead>
            <tr>
              <th>Whose</th>
              {FIELDS.map((f) => (
                <th key={f.key}>{f.label}</th>
              ))}
              <th />
            </tr>
          </thead>
          <tbody>
            {budgets.map((b) => (
              <tr key={b.user_id ?? ''} data-budget={b.user_id ?? 'app'}>
                <td className="name">{whose(b)}</td>
                {FIELDS.map((f) => (
                  <td key={f.key}>
                    <Limit b={b} field={f} />
                  </td>
                ))}
                <td className="actions">
                  <button className="link" onClick={() => edit(b)}>
                    Edit
                  </button>
                  <button className="link danger" onClick={() => void remove(b)}>
                    Remove
                  </button>
                </td>
              </tr>
            ))}
            {budgets.length === 0 && (
              <tr>
                <td colSpan={FIELDS.length + 2} className="muted">
                  No budgets: {appId} and its users may spend without limit.
                </td>
              </tr>
            )}
          </tbody>
        </table>
      )}
      <div className="budget-forms">
        <form onSubmit={(e) => void save(e)} aria-label="set a budget">
          <h2>Set a budget</h2>
          <label>
            For{' '}
            <select aria-label="whose budget" value={who} onChange={(e) => setWho(e.target.value as typeof who)}>
              <option value="app">the app (all users together)</option>
              <option value="every">each user</option>
              <option value="user">one user</option>
            </select>
          </label>
          {who === 'user' && (
            <label>
              User id <input aria-label="user id" value={userId} onChange={(e) => setUserId(e.target.value)} required />
            </label>
          )}
          {FIELDS.filter((f) => !(f.userOnly && who === 'app')).map((f) => (
            <label key={f.key}>
              {f.label}{' '}
              <input
                aria-label={f.label}
                type="number"
                min={0}
                step={f.money ? '0.01' : '1'}
                placeholder="no limit"
                value={form[f.key] ?? ''}
                onChange={(e) => setForm({ ...form, [f.key]: e.target.value })}
              />
            </label>
          ))}
          <div className="buttons">
            <button type="submit">Save budget</button>
            {saved && <span className="notice">{saved}</span>}
          </div>
        </form>
        <form onSubmit={(e) => void look(e)} aria-label="a user's budget">
          <h2>What a user has left</h2>
          <label>
            User id <input aria-label="look up user" value={lookup} onChange={(e) => setLookup(e.target.value)} required />
          </label>
          <div className="buttons">
            <button type="submit">Look up</button>
          </div>
          {found && (
            <dl data-testid="user-budget">
              <dt>Budget</dt>
              <dd>{found.source === 'user' ? 'their own' : found.source === 'every_user' ? "each user's" : 'none (no limit)'}</dd>
              <dt>Spent today</dt>
              <dd>
                {num(found.user.spent?.day.tokens ?? 0)} tokens · {usd(found.user.spent?.day.cost_usd ?? 0)}
              </dd>
              <dt>Spent this month</dt>
              <dd>
                {num(found.user.spent?.month.tokens ?? 0)} tokens · {usd(found.user.spent?.month.cost_usd ?? 0)}
              </dd>
              {FIELDS.filter((f) => found.user.limits[f.key] != null).map((f) => (
                <div key={f.key}>
                  <dt>{f.label}</dt>
                  <dd>
                    <Limit b={found.user} field={f} />
                  </dd>
                </div>
              ))}
            </dl>
          )}
        </form>
      </div>
    </section>
  );
}

import { useCallback, useEffect, useMemo, useRef, useState } from 'react';
import { get, messageOf, qs } from '../api';
import type { Operator } from '../App';
import { TimeChart } from '../Chart';
import { ErrorNote } from '../ErrorBoundary';
import { compact, duration, num, usd } from '../format';
import { useLive, type LiveSessions } from '../live';
import type { Session } from '../types';
import { latencyLines, MIN_GAP_MS, periodsOf, RANGES, REFRESH_MS, rangeOf, seriesOf, sessionCounts, topBy, type LatencyReply, type Range, type RangeKey, type Split, type UsageReply, type UsageTotal } from '../usage';

/** Sessions read for the sessions chart: two pages of 500. */
const SESSION_PAGES = 2;
const TOP = 10;

interface Figures {
  range: Range;
  chart: UsageReply;
  tables: UsageReply;
  latency: LatencyReply;
  sessions: Session[];
  /** More sessions were active in the range than were read. */
  sessionsCut: boolean;
  at: number;
}

async function read(range: Range, split: Split, app: string | null): Promise<Figures> {
  const base = { from: range.from, to: range.to, app_id: app };
  const sessionsRead = (async () => {
    const sessions: Session[] = [];
    let cursor: string | null = null;
    for (let page = 0; page < SESSION_PAGES; page++) {
      const r: { sessions: Session[]; next_cursor: string | null } = await get(`/api/observability/sessions${qs({ app_id: app, from: range.from, limit: 500, cursor })}`);
      sessions.push(...r.sessions);
      cursor = r.next_cursor;
      if (!cursor) break;
    }
    return { sessions, cut: cursor !== null };
  })();
  const [chart, tables, latency, s] = await Promise.all([
    get<UsageReply>(`/api/observability/usage${qs({ group_by: split, granularity: range.granularity, ...base, limit: 10_000 })}`),
    // Users, workflows and agents over the whole range: by day, the fewest rows that cover it.
    get<UsageReply>(`/api/observability/usage${qs({ group_by: 'user,workflow,agent', granularity: 'day', ...base, limit: 10_000 })}`),
    get<LatencyReply>(`/api/observability/latency${qs({ granularity: range.granularity, ...base })}`),
    sessionsRead,
  ]);
  return { range, chart, tables, latency, sessions: s.sessions, sessionsCut: s.cut, at: Date.now() };
}

/**
 * Reads the figures when the choice changes, then again when the live socket reports session
 * updates or every REFRESH_MS, never two reads at once nor two starts within MIN_GAP_MS.
 */
function useFigures(live: LiveSessions, rangeKey: RangeKey, split: Split, app: string | null) {
  const [figures, setFigures] = useState<Figures | null>(null);
  const [error, setError] = useState<string | null>(null);
  const state = useRef({ generation: 0, busy: false, again: false, lastStart: 0, timer: null as ReturnType<typeof setTimeout> | null });
  const scheduleRef = useRef(() => undefined as void);

  const run = useCallback(async () => {
    const s = state.current;
    s.timer = null;
    if (s.busy) return void (s.again = true);
    const generation = s.generation;
    s.busy = true;
    s.lastStart = Date.now();
    try {
      const f = await read(rangeOf(rangeKey, Date.now()), split, app);
      if (generation === s.generation) {
        setFigures(f);
        setError(null);
      }
    } catch (e) {
      if (generation === s.generation) setError(`Could not read usage: ${messageOf(e)}`);
    }
    // A read of an earlier choice ends as if it never was: the current one's state is its own.
    if (generation !== s.generation) return;
    s.busy = false;
    if (s.again) {
      s.again = false;
      scheduleRef.current();
    }
  }, [rangeKey, split, app]);

  const schedule = useCallback(() => {
    const s = state.current;
    if (s.timer) return;
    if (s.busy) return void (s.again = true);
    s.timer = setTimeout(() => void run(), Math.max(0, s.lastStart + MIN_GAP_MS - Date.now()));
  }, [run]);
  scheduleRef.current = schedule;

  // A new choice reads at once (what an older read brings is dropped), then every REFRESH_MS.
  useEffect(() => {
    const s = state.current;
    s.generation++;
    s.busy = false;
    s.again = false;
    s.lastStart = 0;
    if (s.timer) clearTimeout(s.timer);
    s.timer = null;
    schedule();
    const t = setInterval(schedule, REFRESH_MS);
    return () => {
      clearInterval(t);
      if (s.timer) clearTimeout(s.timer);
      s.timer = null;
    };
  }, [schedule]);

  // A session of the app changed after the last read started (a chat spoke, one ended): its usage
  // is stored with its events, so read again. The socket's first list and older sessions read in
  // by another page are not news.
  const version = useLive(live);
  const latest = useMemo(() => {
    let m = 0;
    for (const s of live.sessions.values()) if (!app || s.app_id === app) m = Math.max(m, Date.parse(s.modified_at));
    return m;
  }, [live, app, version]);
  useEffect(() => {
    if (latest > state.current.lastStart) schedule();
  }, [latest, schedule]);

  return { figures, error };
}

const tokens = (v: number) => compact(v);
const dollars = (v: number) => usd(v);
const count = (v: number) => num(v);
const ms = (v: number) => duration(v);

export function DashboardPage({ op, live }: { op: Operator; live: LiveSessions }) {
  const [rangeKey, setRangeKey] = useState<RangeKey>('24h');
  const [split, setSplit] = useState<Split>('model');
  // A token of several (or named) apps reads the chosen one; a token of any app reads all of them.
  const app = op.claims.apps ? op.appId : null;
  const { figures, error } = useFigures(live, rangeKey, split, app);

  const periods = useMemo(() => (figures ? periodsOf(figures.range) : []), [figures]);
  const series = useMemo(() => (figures ? seriesOf(figures.chart.rows, split, periods) : null), [figures, split, periods]);
  const tokenLines = useMemo(() => series?.lines.map((l) => ({ label: l.label, values: l.tokens })) ?? [], [series]);
  const costLines = useMemo(() => series?.lines.filter((l) => l.cost.some((c) => c !== null)).map((l) => ({ label: l.label, values: l.cost })) ?? [], [series]);
  const counts = useMemo(() => (figures ? sessionCounts(figures.sessions, periods, figures.range.granularity) : null), [figures, periods]);
  const sessionLines = useMemo(
    () =>
      counts
        ? [
            { label: 'started', values: counts.started },
            { label: 'with errors', values: counts.withErrors },
          ]
        : [],
    [counts],
  );
  const latency = useMemo(() => (figures ? latencyLines(figures.latency.rows, periods) : []), [figures, periods]);
  const users = useMemo(() => (figures ? topBy(figures.tables.rows, (r) => r.user_id ?? '(no user)', TOP) : []), [figures]);
  const workflows = useMemo(() => (figures ? topBy(figures.tables.rows, (r) => `${r.workflow ?? '–'}\u0000${r.agent ?? '–'}`, TOP) : []), [figures]);

  return (
    <section className="dashboard">
      <div className="dash-head">
        <h1>Dashboard</h1>
        <span className="muted">{app ? `app ${app}` : 'all your apps'}</span>
        <select aria-label="range" value={rangeKey} onChange={(e) => setRangeKey(e.target.value as RangeKey)}>
          {RANGES.map((r) => (
            <option key={r.key} value={r.key}>
              {r.label}
            </option>
          ))}
        </select>
        <select aria-label="split by" value={split} onChange={(e) => setSplit(e.target.value as Split)}>
          <option value="model">by model</option>
          <option value="app">by app</option>
          <option value="workflow">by workflow</option>
        </select>
        {figures && <span className="muted small" data-testid="updated">updated {new Date(figures.at).toLocaleTimeString()}</span>}
      </div>
      <ErrorNote error={error} />
      {!figures && !error && <p className="muted">Loading…</p>}
      {figures && series && counts && (
        <>
          <Totals total={figures.chart.total} />
          {(figures.chart.truncated || figures.tables.truncated) && <p className="muted small">More rows matched than were read: the charts and tables leave some out (the totals do not).</p>}
          <div className="charts">
            <TimeChart title={`Tokens by ${split}`} x={series.x} lines={tokenLines} value={tokens} />
            <TimeChart title={`Cost by ${split}`} x={series.x} lines={costLines} value={dollars} />
            <TimeChart title="Sessions" x={series.x} lines={sessionLines} value={count} bars />
            <TimeChart title="Turn latency" x={series.x} lines={latency} value={ms} />
          </div>
          <Latency total={figures.latency.total} />
          <p className="small muted chart-note">
            Sessions: <strong data-testid="sessions-started">{num(counts.started.reduce((a, b) => a + b, 0))}</strong> started in the range,{' '}
            <strong>{num(counts.withErrors.reduce((a, b) => a + b, 0))}</strong> with errors (<strong data-testid="session-errors">{num(counts.errors.reduce((a, b) => a + b, 0))}</strong> errors recorded), from{' '}
            <code>GET /api/observability/sessions</code>: each session counted in the {figures.range.granularity} it started, with the errors it has recorded so far
            {figures.sessionsCut ? `; only the ${num(figures.sessions.length)} most recently active were read` : ''}. Cost leaves out unpriced calls.
          </p>
          <div className="tables">
            <Ranking title="Top users by cost" testId="top-users" head={['User']} rows={users} cells={(r) => [r.key]} />
            <Ranking title="Top workflows and agents" testId="top-workflows" head={['Workflow', 'Agent']} rows={workflows} cells={(r) => r.key.split('\u0000')} />
          </div>
        </>
      )}
    </section>
  );
}

const TOTALS: { key: keyof UsageTotal; label: string }[] = [
  { key: 'calls', label: 'Model calls' },
  { key: 'input_tokens', label: 'Input tokens' },
  { key: 'output_tokens', label: 'Output tokens' },
  { key: 'cache_read_tokens', label: 'Cache read' },
  { key: 'cache_write_tokens', label: 'Cache write' },
];

function Totals({ total }: { total: UsageTotal }) {
  return (
    <dl className="totals" data-testid="totals">
      {TOTALS.map((t) => (
        <div key={t.key} data-total={t.key}>
          <dt>{t.label}</dt>
          <dd>{num(total[t.key] ?? 0)}</dd>
        </div>
      ))}
      <div data-total="cost_usd">
        <dt>Cost</dt>
        <dd>{total.cost_usd === null ? (total.calls ? 'unknown' : '–') : usd(total.cost_usd)}</dd>
      </div>
      <div data-total="unpriced_calls" title="calls of a model with no known price: their cost is not in the total">
        <dt>Unpriced</dt>
        <dd>{total.unpriced_calls ? `${num(total.unpriced_calls)} unpriced` : 'none'}</dd>
      </div>
    </dl>
  );
}

/** The range's turn latencies, as the runtime's turns' ends report them. */
function Latency({ total }: { total: LatencyReply['total'] }) {
  const pair = (p: { p50: number | null; p99: number | null }) => (p.p50 === null ? '–' : `${duration(p.p50)} · ${duration(p.p99 ?? p.p50)}`);
  return (
    <dl className="totals" data-testid="latency">
      <div data-latency="turns">
        <dt>Turns</dt>
        <dd>{num(total.turns)}</dd>
      </div>
      <div data-latency="first_text" title="from the user's message being accepted to the first text of the answer">
        <dt>First text p50 · p99</dt>
        <dd>{pair(total.first_text_ms)}</dd>
      </div>
      <div data-latency="turn" title="from the user's message being accepted to the end of the turn">
        <dt>Turn p50 · p99</dt>
        <dd>{pair(total.turn_ms)}</dd>
      </div>
    </dl>
  );
}

type Row = ReturnType<typeof topBy>[number];

function costText(r: Row): string {
  if (r.cost === null) return 'unpriced';
  return r.unpriced ? `${usd(r.cost)} + ${num(r.unpriced)} unpriced` : usd(r.cost);
}

function Ranking({ title, testId, head, rows, cells }: { title: string; testId: string; head: string[]; rows: Row[]; cells: (r: Row) => string[] }) {
  return (
    <div>
      <h2>{title}</h2>
      <table className="list" data-testid={testId}>
        <thead>
          <tr>
            {head.map((h) => (
              <th key={h}>{h}</th>
            ))}
            <th className="num">Calls</th>
            <th className="num">Tokens</th>
            <th className="num">Cost</th>
          </tr>
        </thead>
        <tbody>
          {rows.map((r) => (
            <tr key={r.key}>
              {cells(r).map((c, i) => (
                <td key={i}>{c}</td>
              ))}
              <td className="num">{num(r.calls)}</td>
              <td className="num">{num(r.tokens)}</td>
              <td className="num">{costText(r)}</td>
            </tr>
          ))}
          {rows.length === 0 && (
            <tr>
              <td colSpan={head.length + 3} className="muted">
                No model calls in this range.
              </td>
            </tr>
          )}
        </tbody>
      </table>
    </div>
  );
}

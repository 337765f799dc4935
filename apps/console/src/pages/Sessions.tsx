import { Fragment, useEffect, useMemo, useRef, useState } from 'react';
import { api, get, messageOf, qs } from '../api';
import { ErrorNote } from '../ErrorBoundary';
import { toConversation } from '../conversation';
import { ago, duration, num, usd, useNow } from '../format';
import type { LiveSessions } from '../live';
import { navigate, sessionPath } from '../router';
import { agentOf, byUser, DEFAULT_SORT, FIRST_DESC, matcher, NO_FILTERS, range, sorted, type Filters, type Sort, type SortKey } from '../session-list';
import type { Session, StoredEvent } from '../types';
import { ConversationView } from './Conversation';

const PAGE_SIZE = 50;
/** Sessions read over HTTP per filter (pages of 500); beyond it the page says the list is cut. */
const LOAD_CAP = 10_000;
const TIMELINE_SHOWN = 500;
/** Events a detail keeps (the conversation is read from them); beyond it the oldest go, and it says so. */
const EVENTS_KEPT = 20_000;

/** Every session of the filter, read page by page into the live store (which keeps them current). */
function useLoadedSessions(live: LiveSessions, f: Filters) {
  const [state, setState] = useState<{ loading: boolean; loaded: number; truncated: boolean; error: string | null; found: ReadonlySet<string> }>({ loading: true, loaded: 0, truncated: false, error: null, found: new Set() });
  useEffect(() => {
    let cancelled = false;
    setState({ loading: true, loaded: 0, truncated: false, error: null, found: new Set() });
    const serverFilters = { status: f.status, app_id: f.app_id, user_id: f.user_id, source: f.source, q: f.q, ...range(f) };
    void (async () => {
      let cursor: string | null = null;
      let loaded = 0;
      // What the server found for the text: it matched there (in a first message the page may not see).
      const found = new Set<string>();
      try {
        do {
          const page: { sessions: Session[]; next_cursor: string | null } = await get(`/api/observability/sessions${qs({ ...serverFilters, limit: 500, cursor })}`);
          if (cancelled) return;
          live.merge(page.sessions);
          for (const s of page.sessions) found.add(s.session_id);
          loaded += page.sessions.length;
          cursor = page.next_cursor;
          setState({ loading: cursor !== null, loaded, truncated: false, error: null, found: new Set(found) });
        } while (cursor && loaded < LOAD_CAP);
        if (!cancelled) setState({ loading: false, loaded, truncated: cursor !== null, error: null, found });
      } catch (e) {
        if (!cancelled) setState((s) => ({ ...s, loading: false, error: `Could not list sessions: ${messageOf(e)}` }));
      }
    })();
    return () => void (cancelled = true);
  }, [live, f.status, f.app_id, f.user_id, f.source, f.q, f.from, f.to]);
  return state;
}

/** A cost as a list reads it: dollars, the calls with no price said apart, never $0 for an unknown one. */
function costText(cost: number | null, unpriced: number): string {
  if (cost === null) return unpriced ? 'unpriced' : '–';
  return unpriced ? `${usd(cost)} + ${num(unpriced)} unpriced` : usd(cost);
}

const started = (iso: string) => new Date(iso).toLocaleString('en-GB', { day: 'numeric', month: 'short', hour: '2-digit', minute: '2-digit' });

/** The columns of the wide list, each sortable: [key, heading, numeric]. */
const COLUMNS: [SortKey, string, boolean][] = [
  ['title', 'Title', false],
  ['user', 'User', false],
  ['agent', 'Workflow / agent', false],
  ['status', 'Status', false],
  ['started', 'Started', false],
  ['duration', 'Duration', true],
  ['model', 'Model', false],
  ['tokens', 'Tokens', true],
  ['cost', 'Cost', true],
];
/** With a session open beside it, the list keeps what finds one again. */
const NARROW: SortKey[] = ['title', 'status', 'started'];

export function SessionsPage({ live, path }: { live: LiveSessions; path: string }) {
  const [filters, setFilters] = useState<Filters>(NO_FILTERS);
  const [typed, setTyped] = useState<Filters>(NO_FILTERS);
  const [sort, setSort] = useState<Sort>(DEFAULT_SORT);
  const [grouped, setGrouped] = useState(false);
  const [page, setPage] = useState(0);
  const [error, setError] = useState<string | null>(null);
  const now = useNow();
  // Text filters apply once typing pauses.
  useEffect(() => {
    const t = setTimeout(() => setFilters(typed), 300);
    return () => clearTimeout(t);
  }, [typed]);
  useEffect(() => setPage(0), [filters, sort, grouped]);
  const load = useLoadedSessions(live, filters);
  const version = live.version;
  const rows = useMemo(() => sorted([...live.sessions.values()].filter(matcher(filters, load.found)), sort), [live, version, filters, load.found, sort]);
  const groups = useMemo(() => (grouped ? byUser(rows) : null), [grouped, rows]);
  // Grouped, the list is every row under its user (the groups in the order their first row comes).
  const ordered = groups ? groups.flatMap((g) => g.sessions) : rows;
  const pages = Math.max(1, Math.ceil(ordered.length / PAGE_SIZE));
  const shown = ordered.slice(page * PAGE_SIZE, (page + 1) * PAGE_SIZE);
  const selected = path.startsWith('/sessions/') ? decodeURIComponent(path.slice('/sessions/'.length)) : null;
  // With a session open the list narrows to what finds one again; the detail takes the rest.
  const wide = !selected;
  const columns = COLUMNS.filter(([k]) => wide || NARROW.includes(k));
  const apps = useMemo(() => [...new Set([...live.sessions.values()].map((s) => s.app_id).filter(Boolean))].sort() as string[], [live, version]);

  const act = async (s: Session, action: 'stop' | 'delete') => {
    setError(null);
    try {
      if (action === 'stop') await api('POST', `/api/observability/sessions/${encodeURIComponent(s.session_id)}/stop`);
      else {
        await api('DELETE', `/api/observability/sessions/${encodeURIComponent(s.session_id)}`);
        live.remove(s.session_id);
        if (selected === s.session_id) navigate('/sessions');
      }
    } catch (e) {
      setError(`Could not ${action} “${s.title || s.session_id}”: ${messageOf(e)}`);
    }
  };
  const set = (k: keyof Filters) => (e: { target: { value: string } }) => setTyped((f) => ({ ...f, [k]: e.target.value }));
  const sortBy = (key: SortKey) => setSort((s) => (s.key === key ? { key, desc: !s.desc } : { key, desc: FIRST_DESC[key] }));
  const filtered = filters !== NO_FILTERS && Object.values(filters).some(Boolean);

  const cells = (s: Session) =>
    columns.map(([k]) => {
      switch (k) {
        case 'title':
          return (
            <td key={k} className="title" title={s.session_id} data-col="title">
              <span className="name">{s.title ?? s.session_id}</span>
              <span className="muted small"> {s.source}</span>
            </td>
          );
        case 'user':
          return <td key={k} data-col="user">{s.user_id ?? '–'}</td>;
        case 'agent':
          return <td key={k} data-col="agent">{agentOf(s) || '–'}</td>;
        case 'status':
          return (
            <td key={k} data-col="status">
              <span className={`badge ${s.status}`}>{s.status}</span>
            </td>
          );
        case 'started':
          return (
            <td key={k} data-col="started" title={`${s.created_at}; last activity ${ago(s.last_event_at ?? s.modified_at, now)}`}>
              {started(s.created_at)}
            </td>
          );
        case 'duration':
          return <td key={k} className="num" data-col="duration">{duration(s.duration_ms)}</td>;
        case 'model':
          return <td key={k} data-col="model">{s.model ?? '–'}</td>;
        case 'tokens':
          return (
            <td key={k} className="num" data-col="tokens" title={`${num(s.usage.input_tokens)} in / ${num(s.usage.output_tokens)} out`}>
              {num(s.usage.total_tokens)}
            </td>
          );
        case 'cost':
          return <td key={k} className="num" data-col="cost">{costText(s.cost_usd, s.unpriced_calls)}</td>;
        default:
          return null;
      }
    });

  return (
    <section className={selected ? 'sessions split' : 'sessions'}>
      <h1>Sessions</h1>
      <div className="sessions-list">
        <div className="filters">
          <input aria-label="search" className="search" placeholder="search title, name, user or id" value={typed.q} onChange={set('q')} />
          <select aria-label="status" value={typed.status} onChange={set('status')}>
            <option value="">any status</option>
            <option value="running">running</option>
            <option value="finished">finished</option>
            <option value="stopped">stopped</option>
          </select>
          <select aria-label="source" value={typed.source} onChange={set('source')}>
            <option value="">any source</option>
            <option value="runtime">runtime</option>
            <option value="bridge">bridge</option>
            <option value="external">external</option>
            <option value="otel">otel</option>
          </select>
          <select aria-label="app" value={typed.app_id} onChange={set('app_id')}>
            <option value="">any app</option>
            {apps.map((a) => (
              <option key={a}>{a}</option>
            ))}
          </select>
          <input aria-label="user" placeholder="user" value={typed.user_id} onChange={set('user_id')} />
          <input aria-label="agent or workflow" placeholder="agent or workflow" value={typed.agent_name} onChange={set('agent_name')} />
          <label className="small">
            active from <input type="date" aria-label="active from" value={typed.from} max={typed.to || undefined} onChange={set('from')} />
          </label>
          <label className="small">
            to <input type="date" aria-label="active to" value={typed.to} min={typed.from || undefined} onChange={set('to')} />
          </label>
          <label className="small">
            <input type="checkbox" aria-label="group by user" checked={grouped} onChange={(e) => setGrouped(e.target.checked)} /> group by user
          </label>
        </div>
        <ErrorNote error={load.error ?? error} onDismiss={error ? () => setError(null) : undefined} />
        <p className="muted count">
          {num(rows.length)} session{rows.length === 1 ? '' : 's'}
          {groups ? ` of ${num(groups.length)} user${groups.length === 1 ? '' : 's'}` : ''}
          {load.loading ? ` · loading (${num(load.loaded)} read)…` : ''}
          {load.truncated ? ` · the newest ${num(LOAD_CAP)} only: narrow the filters` : ''}
        </p>
        <table className="list" data-testid="sessions-table">
          <thead>
            <tr>
              {columns.map(([k, label, numeric]) => (
                <th key={k} className={numeric ? 'num' : undefined} aria-sort={sort.key === k ? (sort.desc ? 'descending' : 'ascending') : undefined}>
                  <button className="sort" onClick={() => sortBy(k)}>
                    {label}
                    {sort.key === k ? (sort.desc ? ' ↓' : ' ↑') : ''}
                  </button>
                </th>
              ))}
              <th />
            </tr>
          </thead>
          <tbody>
            {shown.map((s, i) => {
              const group = groups && (i === 0 || shown[i - 1].user_id !== s.user_id) ? groups.find((g) => g.user === s.user_id) : undefined;
              return (
                <Fragment key={s.session_id}>
                  {group && (
                    <tr className="group" data-user={group.user ?? ''}>
                      <td colSpan={columns.length + 1}>
                        <strong>{group.user ?? 'no user'}</strong>
                        <span className="group-figures">
                          <span data-figure="sessions">
                            {num(group.sessions.length)} session{group.sessions.length === 1 ? '' : 's'}
                          </span>
                          <span data-figure="tokens">{num(group.tokens)} tokens</span>
                          <span data-figure="cost">{costText(group.cost, group.unpriced)}</span>
                        </span>
                      </td>
                    </tr>
                  )}
                  <tr className={selected === s.session_id ? 'selected' : ''} data-session={s.session_id} onClick={() => navigate(sessionPath(s.session_id))}>
                    {cells(s)}
                    <td className="actions" onClick={(e) => e.stopPropagation()}>
                      {s.status === 'running' && <button onClick={() => void act(s, 'stop')}>Stop</button>}
                      <ConfirmButton label="Delete" onConfirm={() => void act(s, 'delete')} />
                    </td>
                  </tr>
                </Fragment>
              );
            })}
            {shown.length === 0 && !load.loading && (
              <tr>
                <td colSpan={columns.length + 1} className="muted">
                  No sessions{filtered ? ' match these filters' : ' yet'}.
                </td>
              </tr>
            )}
          </tbody>
        </table>
        <div className="pager">
          <button disabled={page === 0} onClick={() => setPage(page - 1)}>
            ← Previous
          </button>
          <span>
            page {page + 1} of {pages} ({ordered.length ? `${num(page * PAGE_SIZE + 1)}–${num(Math.min(ordered.length, (page + 1) * PAGE_SIZE))}` : '0'})
          </span>
          <button disabled={page >= pages - 1} onClick={() => setPage(page + 1)}>
            Next →
          </button>
        </div>
      </div>
      {selected && <SessionDetail key={selected} live={live} id={selected} onAction={act} />}
    </section>
  );
}

/** A destructive action asks once more in place. */
export function ConfirmButton({ label, onConfirm }: { label: string; onConfirm: () => void }) {
  const [asking, setAsking] = useState(false);
  useEffect(() => {
    if (!asking) return;
    const t = setTimeout(() => setAsking(false), 5000);
    return () => clearTimeout(t);
  }, [asking]);
  return asking ? (
    <button className="danger" onClick={() => (setAsking(false), onConfirm())}>
      Confirm {label.toLowerCase()}
    </button>
  ) : (
    <button onClick={() => setAsking(true)}>{label}</button>
  );
}

function SessionDetail({ live, id, onAction }: { live: LiveSessions; id: string; onAction: (s: Session, a: 'stop' | 'delete') => Promise<void> }) {
  const [{ events, dropped }, setLog] = useState<{ events: StoredEvent[]; dropped: number }>({ events: [], dropped: 0 });
  const [view, setView] = useState<'conversation' | 'raw'>('conversation');
  const [error, setError] = useState<string | null>(null);
  const [fetched, setFetched] = useState<Session | null>(null);
  const body = useRef<HTMLDivElement>(null);
  /** Whether the reader is at the end: new events then keep it in view; scrolled up, they do not move it. */
  const following = useRef(true);
  const session = live.sessions.get(id) ?? fetched;
  useEffect(() => {
    if (live.sessions.has(id)) return;
    get<Session>(`/api/observability/sessions/${encodeURIComponent(id)}`).then(
      (s) => (setFetched(s), live.merge([s])),
      (e) => setError(messageOf(e)),
    );
  }, [live, id]);
  useEffect(
    () =>
      live.subscribe(id, (batch) =>
        setLog((prev) => {
          const all = [...prev.events, ...batch];
          const cut = Math.max(0, all.length - EVENTS_KEPT);
          return { events: cut ? all.slice(cut) : all, dropped: prev.dropped + cut };
        }),
      ),
    [live, id],
  );
  const turns = useMemo(() => toConversation(events), [events]);
  useEffect(() => {
    const el = body.current;
    if (el && following.current) el.scrollTop = el.scrollHeight;
  }, [events, view]);
  const shown = events.slice(-TIMELINE_SHOWN);
  return (
    <div className="detail" data-testid="session-detail">
      <div className="detail-head">
        <h2>{session?.title || id}</h2>
        {session && <span className={`badge ${session.status}`}>{session.status}</span>}
        {session?.status === 'running' && <button onClick={() => void onAction(session, 'stop')}>Stop</button>}
        {session && <ConfirmButton label="Delete" onConfirm={() => void onAction(session, 'delete')} />}
        <button className="link" onClick={() => navigate('/sessions')}>
          Close
        </button>
      </div>
      <ErrorNote error={error && `Could not open the session: ${error}`} />
      {session && (
        <p className="muted small">
          {session.session_id} · {session.source} · app {session.app_id ?? '–'} · user {session.user_id ?? '–'} · {num(session.event_count)} events · tokens{' '}
          {num(session.usage.input_tokens)} in / {num(session.usage.output_tokens)} out{session.model ? ` · ${session.model}` : ''} · cost{' '}
          {costText(session.cost_usd, session.unpriced_calls)} · {session.error_count} errors
        </p>
      )}
      <div className="views" role="tablist">
        <button role="tab" aria-selected={view === 'conversation'} className={view === 'conversation' ? 'on' : ''} onClick={() => setView('conversation')}>
          Conversation
        </button>
        <button role="tab" aria-selected={view === 'raw'} className={view === 'raw' ? 'on' : ''} onClick={() => setView('raw')}>
          Raw events
        </button>
        <span className="muted small">
          {num(turns.length)} turn{turns.length === 1 ? '' : 's'} · {num(events.length)} events
          {dropped > 0 && ` (the ${num(dropped)} oldest dropped)`}
        </span>
      </div>
      <div className="detail-body" ref={body} onScroll={(e) => (following.current = e.currentTarget.scrollHeight - e.currentTarget.scrollTop - e.currentTarget.clientHeight < 40)}>
        {view === 'conversation' ? (
          <ConversationView turns={turns} live={session?.status === 'running'} />
        ) : (
          <ol className="timeline" data-testid="timeline">
            {events.length > shown.length && <li className="muted">… {num(events.length - shown.length)} earlier events not shown</li>}
            {shown.map((e) => (
              <li key={e.seq} data-seq={e.seq} className={e.error ? 'has-error' : undefined}>
                <span className="seq">#{e.seq}</span> <span className="time">{new Date(e.timestamp).toLocaleTimeString()}</span> <strong>{e.event_type}</strong>
                {e.agent_name && <span className="muted"> · {e.agent_name}</span>}
                {e.tool_name && <span> · tool {e.tool_name}</span>}
                {summary(e) && <div className="event-text">{summary(e)}</div>}
                {e.error && <div className="error-text">{e.error}</div>}
              </li>
            ))}
            {events.length === 0 && <li className="muted">No events yet.</li>}
          </ol>
        )}
      </div>
    </div>
  );
}

function summary(e: StoredEvent): string {
  const text = (e.content ?? [])
    .map((c) => (typeof c.text === 'string' ? c.text : ''))
    .join(' ')
    .trim();
  if (text) return text.length > 400 ? text.slice(0, 400) + '…' : text;
  if (e.tool_input !== undefined && e.tool_input !== null) return JSON.stringify(e.tool_input).slice(0, 400);
  return e.reason ?? '';
}

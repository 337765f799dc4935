import type { Session } from './types';

/*
 * The Sessions page's list, pure: which sessions a filter keeps (observability's rules, so live
 * updates land where a reload would put them), their order by a column, and their groups by user.
 */

export interface Filters {
  status: string;
  app_id: string;
  user_id: string;
  agent_name: string;
  source: string;
  q: string;
  /** Days (YYYY-MM-DD, the browser's time zone): active from the start of `from` to the end of `to`. */
  from: string;
  to: string;
}
export const NO_FILTERS: Filters = { status: '', app_id: '', user_id: '', agent_name: '', source: '', q: '', from: '', to: '' };

/** The instants GET /sessions' from/to take for the filter's days (to: the start of the day after). */
export function range(f: Pick<Filters, 'from' | 'to'>): { from?: string; to?: string } {
  const day = (d: string, plus = 0) => {
    const [y, m, dd] = d.split('-').map(Number);
    const t = new Date(y, m - 1, dd + plus);
    return Number.isNaN(t.getTime()) ? undefined : t.toISOString();
  };
  return { ...(f.from && { from: day(f.from) }), ...(f.to && { to: day(f.to, 1) }) };
}

/**
 * Whether a session is in the filter's list. `found`: the sessions the server returned for the
 * filter's text: they match it (in a name's first message the page does not see) whatever this says.
 */
export function matches(s: Session, f: Filters, found?: ReadonlySet<string>): boolean {
  return matcher(f, found)(s);
}

/** `matches` for one filter, its days and text read once: the test for every session of a list. */
export function matcher(f: Filters, found?: ReadonlySet<string>): (s: Session) => boolean {
  const { from, to } = range(f);
  const q = f.q.toLowerCase();
  return (s) => {
    if (f.status && s.status !== f.status) return false;
    if (f.app_id && s.app_id !== f.app_id) return false;
    if (f.user_id && s.user_id !== f.user_id) return false;
    if (f.agent_name && s.agent_name !== f.agent_name && s.workflow !== f.agent_name) return false;
    if (f.source && s.source !== f.source) return false;
    if (from && s.modified_at < from) return false;
    if (to && s.modified_at >= to) return false;
    if (q && !found?.has(s.session_id) && ![s.session_name, s.title, s.user_id, s.session_id].some((v) => v?.toLowerCase().includes(q))) return false;
    return true;
  };
}

export type SortKey = 'title' | 'user' | 'agent' | 'status' | 'started' | 'duration' | 'model' | 'tokens' | 'cost' | 'activity';
export interface Sort {
  key: SortKey;
  desc: boolean;
}
/** Newest activity first: the order observability pages in, and where live changes surface. */
export const DEFAULT_SORT: Sort = { key: 'activity', desc: true };
/** The order a column sorts in on its first click: numbers and times largest first, text A to Z. */
export const FIRST_DESC: Record<SortKey, boolean> = { title: false, user: false, agent: false, status: false, model: false, started: true, duration: true, tokens: true, cost: true, activity: true };

/** The workflow and its agent, once when they are one name. */
export const agentOf = (s: Session) => [...new Set([s.workflow, s.agent_name].filter(Boolean))].join(' · ');

const VALUE: Record<SortKey, (s: Session) => string | number | null> = {
  title: (s) => (s.title ?? s.session_id).toLowerCase(),
  user: (s) => s.user_id?.toLowerCase() ?? null,
  agent: (s) => agentOf(s).toLowerCase() || null,
  status: (s) => s.status,
  started: (s) => Date.parse(s.created_at),
  duration: (s) => s.duration_ms,
  model: (s) => s.model?.toLowerCase() ?? null,
  tokens: (s) => s.usage.total_tokens,
  cost: (s) => s.cost_usd,
  activity: (s) => Date.parse(s.modified_at),
};

/** Sessions in a column's order; what has no value (no user, an unknown cost) last either way; ties newest activity first. */
export function sorted(list: Session[], sort: Sort): Session[] {
  const v = VALUE[sort.key];
  return [...list].sort((a, b) => {
    const x = v(a);
    const y = v(b);
    if (x !== y) {
      if (x === null) return 1;
      if (y === null) return -1;
      const c = x < y ? -1 : 1;
      return sort.desc ? -c : c;
    }
    return Date.parse(b.modified_at) - Date.parse(a.modified_at) || (a.session_id < b.session_id ? -1 : 1);
  });
}

export interface UserGroup {
  /** null: the sessions that name no user. */
  user: string | null;
  sessions: Session[];
  tokens: number;
  /** USD of the group's priced calls; null when none was priced. */
  cost: number | null;
  unpriced: number;
}

/** The list's sessions under their users, in the order each user first appears in it. */
export function byUser(list: Session[]): UserGroup[] {
  const groups = new Map<string | null, UserGroup>();
  for (const s of list) {
    let g = groups.get(s.user_id);
    if (!g) groups.set(s.user_id, (g = { user: s.user_id, sessions: [], tokens: 0, cost: null, unpriced: 0 }));
    g.sessions.push(s);
    g.tokens += s.usage.total_tokens;
    if (s.cost_usd !== null) g.cost = (g.cost ?? 0) + s.cost_usd;
    g.unpriced += s.unpriced_calls;
  }
  return [...groups.values()];
}

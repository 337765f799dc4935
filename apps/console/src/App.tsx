import { lazy, Suspense, useEffect, useMemo, useState } from 'react';
import { claimsOf, get, messageOf, pastedToken, setUnauthorizedHandler, storedApp, storedToken, storeApp, storeToken, type Claims } from './api';
import { ErrorBoundary, ErrorNote } from './ErrorBoundary';
import { LiveSessions, useLive } from './live';
import { AgentsPage } from './pages/Agents';
import { BridgePage } from './pages/Bridge';
import { BudgetsPage } from './pages/Budgets';
import { DashboardPage } from './pages/Dashboard';
import { DocumentsPage } from './pages/Documents';
import { SessionsPage } from './pages/Sessions';
import { navigate, usePath } from './router';

// The playground carries the client core (and zod): loaded when opened.
const PlaygroundPage = lazy(() => import('./pages/Playground').then((m) => ({ default: m.PlaygroundPage })));

const PAGES = [
  { path: '/dashboard', label: 'Dashboard' },
  { path: '/sessions', label: 'Sessions' },
  { path: '/agents', label: 'Agents' },
  { path: '/documents', label: 'Documents' },
  { path: '/playground', label: 'Playground' },
  { path: '/budgets', label: 'Budgets' },
  { path: '/bridge', label: 'Bridge' },
];

export interface Operator {
  token: string;
  claims: Claims;
  /**
   * The app the console works in: the one chosen in the header when the token allows several, else
   * the token's app (`demo-app` when the token names none).
   */
  appId: string;
  /**
   * The app that calls acting in one app name (agents, document uploads and lists): the chosen
   * one when the token allows several; null otherwise, and those calls go as they always did (the
   * services take the token's only app, or their default for a token of any app).
   */
  namedApp: string | null;
}

/** The token's apps when there are several to choose from, else null (one app, or any). */
function choices(claims: Claims): string[] | null {
  return claims.apps && claims.apps.length > 1 ? claims.apps : null;
}

export function App() {
  const [token, setToken] = useState(storedToken());
  const [chosen, setChosen] = useState(storedApp());
  const [signOutReason, setSignOutReason] = useState<string | null>(null);
  const signOut = () => {
    storeToken(null);
    storeApp(null);
    setToken(null);
    setChosen(null);
  };
  useEffect(
    () =>
      setUnauthorizedHandler((message) => {
        signOut();
        setSignOutReason(`Signed out: the gateway refused the token (${message}).`);
      }),
    [],
  );
  if (!token) return <SignIn reason={signOutReason} onSignedIn={(t) => (storeToken(t), setSignOutReason(null), setToken(t))} />;
  const claims = claimsOf(token) ?? { sub: '?', apps: null, roles: [], exp: null };
  const apps = choices(claims);
  // A choice this token does not allow (another token's, kept in the tab) falls back to its first app.
  const appId = apps && chosen && apps.includes(chosen) ? chosen : (claims.apps?.[0] ?? 'demo-app');
  const op: Operator = { token, claims, appId, namedApp: apps ? appId : null };
  return <Shell op={op} apps={apps} onChooseApp={(app) => (storeApp(app), setChosen(app))} onSignOut={signOut} />;
}

function Shell({ op, apps, onChooseApp, onSignOut }: { op: Operator; apps: string[] | null; onChooseApp: (app: string) => void; onSignOut: () => void }) {
  const path = usePath();
  const live = useMemo(() => new LiveSessions(), []);
  useEffect(() => {
    live.connect();
    return () => live.close();
  }, [live]);
  useLive(live);
  useEffect(() => {
    if (path === '/' || path === '') navigate('/dashboard');
  }, [path]);
  const page = PAGES.find((p) => path === p.path || path.startsWith(p.path + '/'));
  return (
    <div className="shell">
      <header>
        <strong className="brand">Tessera</strong>
        <nav>
          {PAGES.map((p) => (
            <a
              key={p.path}
              href={'/console' + p.path}
              className={page === p ? 'active' : ''}
              onClick={(e) => {
                e.preventDefault();
                navigate(p.path);
              }}
            >
              {p.label}
            </a>
          ))}
        </nav>
        <span className={`live-status ${live.status}`} title={live.error ?? ''}>
          {live.status === 'live' ? '● live' : live.status === 'reconnecting' ? '○ reconnecting…' : '○ connecting…'}
        </span>
        <span className="who">
          {op.claims.sub} ·{' '}
          {apps ? (
            <select aria-label="working app" title="the app that the Dashboard, Agents, Documents, Playground and Budgets act in" value={op.appId} onChange={(e) => onChooseApp(e.target.value)}>
              {apps.map((a) => (
                <option key={a}>{a}</option>
              ))}
            </select>
          ) : (
            op.appId
          )}
        </span>
        <button className="link" onClick={onSignOut}>
          Sign out
        </button>
      </header>
      <main>
        <ErrorNote error={live.status !== 'live' ? live.error : null} />
        <ErrorBoundary resetKey={path}>
          <Suspense fallback={<p className="muted">Loading…</p>}>
            {/* Keyed by the app too: the chosen app's figures only, never the last app's for a moment. */}
            {page?.path === '/dashboard' && <DashboardPage key={op.appId} op={op} live={live} />}
            {page?.path === '/sessions' && <SessionsPage live={live} path={path} />}
            {/* Keyed by the app: another app's page starts afresh (its list, no half-edited form of the last app). */}
            {page?.path === '/agents' && <AgentsPage key={op.appId} app={op.namedApp} />}
            {page?.path === '/documents' && <DocumentsPage key={op.appId} op={op} />}
            {page?.path === '/playground' && <PlaygroundPage op={op} />}
            {page?.path === '/budgets' && <BudgetsPage key={op.appId} appId={op.appId} />}
            {page?.path === '/bridge' && <BridgePage showApp={apps !== null} />}
            {!page && path !== '/' && <p className="error">No page at {path}.</p>}
          </Suspense>
        </ErrorBoundary>
      </main>
    </div>
  );
}

function SignIn({ reason, onSignedIn }: { reason: string | null; onSignedIn: (token: string) => void }) {
  const [value, setValue] = useState('');
  const [error, setError] = useState<string | null>(reason);
  const [busy, setBusy] = useState(false);
  const submit = async () => {
    // `npm start`'s whole line (export TOKEN=…) is accepted as well as the token alone.
    const token = pastedToken(value);
    if (!claimsOf(token)) return setError('That is not a token: paste the JWT that `npm start` prints (export TOKEN=…).');
    setBusy(true);
    setError(null);
    storeToken(token);
    try {
      // An operator's read: proves the token and its role at once.
      await get('/api/observability/sessions?limit=1');
      onSignedIn(token);
    } catch (e) {
      storeToken(null);
      setError(`Sign-in refused: ${messageOf(e)}`);
    } finally {
      setBusy(false);
    }
  };
  return (
    <div className="signin">
      <h1>Tessera console</h1>
      <p className="muted">
        Paste an operator’s token, or the whole <code>export TOKEN=…</code> line that <code>npm start</code> prints in development.
      </p>
      <form
        onSubmit={(e) => {
          e.preventDefault();
          void submit();
        }}
      >
        <textarea name="token" aria-label="token" rows={4} value={value} onChange={(e) => setValue(e.target.value)} placeholder="eyJhbGciOi…" />
        <button type="submit" disabled={busy || !value.trim()}>
          {busy ? 'Signing in…' : 'Sign in'}
        </button>
      </form>
      <ErrorNote error={error} />
    </div>
  );
}

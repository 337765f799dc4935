import { lazy, Suspense, useEffect, useMemo, useState } from 'react';
import { claimsOf, get, messageOf, setUnauthorizedHandler, storedToken, storeToken, type Claims } from './api';
import { ErrorBoundary, ErrorNote } from './ErrorBoundary';
import { LiveSessions, useLive } from './live';
import { AgentsPage } from './pages/Agents';
import { BridgePage } from './pages/Bridge';
import { DocumentsPage } from './pages/Documents';
import { SessionsPage } from './pages/Sessions';
import { navigate, usePath } from './router';

// The playground carries the client core (and zod): loaded when opened.
const PlaygroundPage = lazy(() => import('./pages/Playground').then((m) => ({ default: m.PlaygroundPage })));

const PAGES = [
  { path: '/sessions', label: 'Sessions' },
  { path: '/agents', label: 'Agents' },
  { path: '/documents', label: 'Documents' },
  { path: '/playground', label: 'Playground' },
  { path: '/bridge', label: 'Bridge' },
];

export interface Operator {
  token: string;
  claims: Claims;
  /** The app the console works in: the token's first app (`demo-app` when the token names none). */
  appId: string;
}

export function App() {
  const [token, setToken] = useState(storedToken());
  const [signOutReason, setSignOutReason] = useState<string | null>(null);
  useEffect(
    () =>
      setUnauthorizedHandler((message) => {
        storeToken(null);
        setToken(null);
        setSignOutReason(`Signed out: the gateway refused the token (${message}).`);
      }),
    [],
  );
  if (!token) return <SignIn reason={signOutReason} onSignedIn={(t) => (storeToken(t), setSignOutReason(null), setToken(t))} />;
  const claims = claimsOf(token) ?? { sub: '?', apps: null, roles: [], exp: null };
  const op: Operator = { token, claims, appId: claims.apps?.[0] ?? 'demo-app' };
  return <Shell op={op} onSignOut={() => (storeToken(null), setToken(null))} />;
}

function Shell({ op, onSignOut }: { op: Operator; onSignOut: () => void }) {
  const path = usePath();
  const live = useMemo(() => new LiveSessions(), []);
  useEffect(() => {
    live.connect();
    return () => live.close();
  }, [live]);
  useLive(live);
  useEffect(() => {
    if (path === '/' || path === '') navigate('/sessions');
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
          {op.claims.sub} · {op.appId}
        </span>
        <button className="link" onClick={onSignOut}>
          Sign out
        </button>
      </header>
      <main>
        <ErrorNote error={live.status !== 'live' ? live.error : null} />
        <ErrorBoundary resetKey={path}>
          <Suspense fallback={<p className="muted">Loading…</p>}>
            {page?.path === '/sessions' && <SessionsPage live={live} path={path} />}
            {page?.path === '/agents' && <AgentsPage />}
            {page?.path === '/documents' && <DocumentsPage op={op} />}
            {page?.path === '/playground' && <PlaygroundPage op={op} />}
            {page?.path === '/bridge' && <BridgePage />}
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
    const token = value.trim();
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
        Paste an operator’s token. In development, <code>npm start</code> prints one (<code>export TOKEN=…</code>).
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

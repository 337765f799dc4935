import { useCallback, useEffect, useState } from 'react';
import { get, messageOf } from '../api';
import { ErrorNote } from '../ErrorBoundary';
import { ago, num, useNow } from '../format';
import { navigate } from '../router';
import type { ServersReply, Session } from '../types';

const REFRESH_MS = 5000;

/**
 * The bridge's agent servers (one `opencode serve` per session) of the operator's apps, each with
 * its owner (the app and user whose token bootstrapped it), and the sessions observability saw from it.
 * Both lists span all the operator's apps; `showApp` (a token of several) names each session's app.
 */
export function BridgePage({ showApp = false }: { showApp?: boolean }) {
  const [servers, setServers] = useState<ServersReply['servers'] | null>(null);
  const [sessions, setSessions] = useState<Session[]>([]);
  const [error, setError] = useState<string | null>(null);
  const now = useNow();
  const reload = useCallback(async () => {
    const [s, o] = await Promise.allSettled([
      get<ServersReply>('/api/bridge/session/servers'),
      get<{ sessions: Session[] }>('/api/observability/sessions?source=bridge&limit=100'),
    ]);
    if (s.status === 'fulfilled') setServers(s.value.servers);
    if (o.status === 'fulfilled') setSessions(o.value.sessions);
    const failed = [s.status === 'rejected' && `agent servers: ${messageOf(s.reason)}`, o.status === 'rejected' && `bridge sessions: ${messageOf(o.reason)}`].filter(Boolean);
    setError(failed.length ? `Could not read ${failed.join('; ')}` : null);
  }, []);
  useEffect(() => {
    void reload();
    const t = setInterval(() => void reload(), REFRESH_MS);
    return () => clearInterval(t);
  }, [reload]);
  const byId = new Map(sessions.map((s) => [s.session_id, s]));
  return (
    <section className="bridge">
      <h1>Bridge</h1>
      <ErrorNote error={error} />
      <h2>Active agent servers</h2>
      {servers === null && !error && <p className="muted">Loading…</p>}
      {servers && (
        <table className="list" data-testid="servers-table">
          <thead>
            <tr>
              <th>Session</th>
              <th>App</th>
              <th>User</th>
              <th>SCADA URL</th>
              <th>Instance</th>
              <th>Port / pid</th>
              <th>Model</th>
              <th className="num">Sockets</th>
              <th>Started</th>
              <th>Last activity</th>
              <th>Observed</th>
            </tr>
          </thead>
          <tbody>
            {servers.map((s) => {
              const observed = byId.get(s.sessionId);
              return (
                <tr key={s.sessionId}>
                  <td className="name">{s.sessionId}</td>
                  <td>{s.appId}</td>
                  <td>{s.userId}</td>
                  <td>{s.scadaUrl}</td>
                  <td>{s.instance}</td>
                  <td>
                    {s.port} / {s.pid}
                  </td>
                  <td>{s.model ?? '–'}</td>
                  <td className="num">{num(s.subscribers)}</td>
                  <td>{ago(s.startedAt, now)}</td>
                  <td>{ago(s.lastActivityAt, now)}</td>
                  <td>
                    {observed ? (
                      <button className="link" onClick={() => navigate(`/sessions/${encodeURIComponent(observed.session_id)}`)}>
                        {observed.status} · {num(observed.event_count)} events
                      </button>
                    ) : (
                      '–'
                    )}
                  </td>
                </tr>
              );
            })}
            {servers.length === 0 && (
              <tr>
                <td colSpan={11} className="muted">
                  No agent servers are running.
                </td>
              </tr>
            )}
          </tbody>
        </table>
      )}
      <h2>Bridge sessions (observability)</h2>
      <table className="list" data-testid="bridge-sessions">
        <thead>
          <tr>
            <th>Session</th>
            {showApp && <th>App</th>}
            <th>User</th>
            <th>Status</th>
            <th>Agent</th>
            <th className="num">Events</th>
            <th>Last activity</th>
          </tr>
        </thead>
        <tbody>
          {sessions.map((s) => (
            <tr key={s.session_id} onClick={() => navigate(`/sessions/${encodeURIComponent(s.session_id)}`)}>
              <td className="name">{s.session_name || s.session_id}</td>
              {showApp && <td>{s.app_id ?? '–'}</td>}
              <td>{s.user_id ?? '–'}</td>
              <td>
                <span className={`badge ${s.status}`}>{s.status}</span>
              </td>
              <td>{s.agent_name ?? '–'}</td>
              <td className="num">{num(s.event_count)}</td>
              <td>{ago(s.last_event_at ?? s.modified_at, now)}</td>
            </tr>
          ))}
          {sessions.length === 0 && (
            <tr>
              <td colSpan={showApp ? 7 : 6} className="muted">
                No bridge sessions recorded.
              </td>
            </tr>
          )}
        </tbody>
      </table>
    </section>
  );
}

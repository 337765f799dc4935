import { markdown } from '@codemirror/lang-markdown';
import CodeMirror from '@uiw/react-codemirror';
import { useCallback, useEffect, useState } from 'react';
import { api, ApiError, appHeaders, get, messageOf } from '../api';
import { ErrorNote } from '../ErrorBoundary';
import { ago } from '../format';
import type { Agent, SessionInUse } from '../types';
import { ConfirmButton } from './Sessions';

const extensions = [markdown()];

type Editing = { mode: 'create' } | { mode: 'edit'; agent: Agent } | null;

/** A refused delete or deactivation: the agent manager's 409 names the running sessions that use the agent. */
interface InUse {
  name: string;
  action: 'delete' | 'deactivate';
  message: string;
  sessions: SessionInUse[];
}

/** The agents of one app: `app` names it to the agent manager when the token allows several (null: the token's only app). */
export function AgentsPage({ app }: { app: string | null }) {
  const inApp = appHeaders(app);
  const [agents, setAgents] = useState<Agent[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [editing, setEditing] = useState<Editing>(null);
  const [inUse, setInUse] = useState<InUse | null>(null);
  const [notice, setNotice] = useState<string | null>(null);

  const reload = useCallback(async () => {
    try {
      setAgents(await get<Agent[]>('/api/agents', appHeaders(app)));
    } catch (e) {
      setError(`Could not list agents: ${messageOf(e)}`);
    }
  }, [app]);
  useEffect(() => void reload(), [reload]);

  const change = async (a: Agent, action: 'delete' | 'activate' | 'deactivate', force = false) => {
    setError(null);
    setNotice(null);
    setInUse(null);
    const f = force ? '?force=true' : '';
    try {
      if (action === 'delete') await api('DELETE', `/api/agents/${encodeURIComponent(a.name)}${f}`, undefined, inApp);
      else await api('PATCH', `/api/agents/${encodeURIComponent(a.name)}/status${f}`, { status: action === 'activate' ? 'active' : 'inactive' }, inApp);
      setNotice(`Agent “${a.name}” ${action === 'delete' ? 'deleted' : action + 'd'}.`);
      if (action === 'delete' && editing?.mode === 'edit' && editing.agent.name === a.name) setEditing(null);
      await reload();
    } catch (e) {
      if (e instanceof ApiError && e.status === 409 && action !== 'activate') {
        const sessions = (e.details as { sessions?: SessionInUse[] } | undefined)?.sessions ?? [];
        setInUse({ name: a.name, action, message: e.message, sessions });
      } else setError(`Could not ${action} “${a.name}”: ${messageOf(e)}`);
    }
  };

  return (
    <section className="agents">
      <h1>
        Agents <button onClick={() => (setEditing({ mode: 'create' }), setNotice(null))}>New agent</button>
      </h1>
      <ErrorNote error={error} onDismiss={() => setError(null)} />
      {notice && <div className="notice">{notice}</div>}
      {inUse && (
        <div className="error in-use" role="alert">
          <p>
            <strong>
              “{inUse.name}” cannot be {inUse.action === 'delete' ? 'deleted' : 'deactivated'}: {inUse.sessions.length || 'some'} running session
              {inUse.sessions.length === 1 ? '' : 's'} use{inUse.sessions.length === 1 ? 's' : ''} it.
            </strong>{' '}
            Stop them on the Sessions page first, or {inUse.action} anyway (their next turn fails).
          </p>
          <ul>
            {inUse.sessions.map((s) => (
              <li key={s.session_id}>
                <code>{s.session_id}</code> ({s.source}
                {s.workflow ? `, workflow ${s.workflow}` : ''}
                {s.app_id ? `, app ${s.app_id}` : ''}, {s.status})
              </li>
            ))}
          </ul>
          <p className="muted small">{inUse.message}</p>
          <button className="danger" onClick={() => void change(agents!.find((a) => a.name === inUse.name)!, inUse.action, true)}>
            {inUse.action === 'delete' ? 'Delete' : 'Deactivate'} anyway
          </button>{' '}
          <button onClick={() => setInUse(null)}>Cancel</button>
        </div>
      )}
      {editing && (
        <AgentForm
          key={editing.mode === 'edit' ? editing.agent.name : 'new'}
          agent={editing.mode === 'edit' ? editing.agent : null}
          app={app}
          onDone={async (saved) => {
            setEditing(null);
            setNotice(`Agent “${saved.name}” saved.`);
            await reload();
          }}
          onCancel={() => setEditing(null)}
        />
      )}
      {agents === null && !error && <p className="muted">Loading…</p>}
      {agents && (
        <table className="list" data-testid="agents-table">
          <thead>
            <tr>
              <th>Name</th>
              <th>Description</th>
              <th>Status</th>
              <th>Updated</th>
              <th />
            </tr>
          </thead>
          <tbody>
            {agents.map((a) => (
              <tr key={a.name} data-agent={a.name}>
                <td className="name">{a.name}</td>
                <td>{a.description}</td>
                <td>
                  <span className={`badge ${a.status}`}>{a.status}</span>
                </td>
                <td title={a.updated_at}>{ago(a.updated_at)}</td>
                <td className="actions">
                  <button onClick={() => (setEditing({ mode: 'edit', agent: a }), setNotice(null))}>Edit</button>
                  {a.status === 'active' ? <button onClick={() => void change(a, 'deactivate')}>Deactivate</button> : <button onClick={() => void change(a, 'activate')}>Activate</button>}
                  <ConfirmButton label="Delete" onConfirm={() => void change(a, 'delete')} />
                </td>
              </tr>
            ))}
            {agents.length === 0 && (
              <tr>
                <td colSpan={5} className="muted">
                  No agents yet.
                </td>
              </tr>
            )}
          </tbody>
        </table>
      )}
    </section>
  );
}

function AgentForm({ agent, app, onDone, onCancel }: { agent: Agent | null; app: string | null; onDone: (a: Agent) => Promise<void>; onCancel: () => void }) {
  const [name, setName] = useState(agent?.name ?? '');
  const [description, setDescription] = useState(agent?.description ?? '');
  const [prompt, setPrompt] = useState(agent?.system_prompt ?? '');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const save = async () => {
    setBusy(true);
    setError(null);
    try {
      const saved = agent
        ? await api<Agent>('PATCH', `/api/agents/${encodeURIComponent(agent.name)}`, { description, system_prompt: prompt }, appHeaders(app))
        : await api<Agent>('POST', '/api/agents', { name, description, system_prompt: prompt }, appHeaders(app));
      await onDone(saved);
    } catch (e) {
      setError(`Could not save: ${messageOf(e)}`);
    } finally {
      setBusy(false);
    }
  };
  return (
    <form
      className="card agent-form"
      onSubmit={(e) => {
        e.preventDefault();
        void save();
      }}
    >
      <h2>{agent ? `Edit ${agent.name}` : 'New agent'}</h2>
      <label>
        Name
        <input name="name" value={name} disabled={!!agent} onChange={(e) => setName(e.target.value)} placeholder="letters, digits and hyphens" />
      </label>
      <label>
        Description
        <input name="description" value={description} onChange={(e) => setDescription(e.target.value)} />
      </label>
      <div className="label">System prompt</div>
      <div className="editor" data-testid="prompt-editor">
        <CodeMirror value={prompt} height="220px" extensions={extensions} onChange={setPrompt} basicSetup={{ foldGutter: false }} />
      </div>
      <ErrorNote error={error} />
      <div className="buttons">
        <button type="submit" disabled={busy}>
          {busy ? 'Saving…' : agent ? 'Save' : 'Create'}
        </button>
        <button type="button" onClick={onCancel}>
          Cancel
        </button>
      </div>
    </form>
  );
}

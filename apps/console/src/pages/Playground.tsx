import { useEffect, useMemo, useRef, useState } from 'react';
import type { Host } from '@tessera/client';
import { useChat, type ToolCallAwaiting } from '@tessera/client/react';
import { api, get, messageOf, storedToken } from '../api';
import type { Operator } from '../App';
import { ErrorNote } from '../ErrorBoundary';
import { num } from '../format';
import { BASE, navigate, sessionPath } from '../router';
import type { AgentChatsReply, SessionReply, WorkflowsReply } from '../types';

/** The console is served by the gateway: the chat goes to the same origin, as any web client's would. */
function browserHost(): Host {
  return {
    storage: localStorage,
    getAccessToken: () => storedToken(),
    httpBaseUrl: location.origin,
    wsBaseUrl: `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}`,
  };
}

/** What the Playground can chat with: a workflow file, or an agent of the app (its workflow `agent.<name>`). */
interface Choice {
  workflowName: string;
  label: string;
  description: string;
}

export function PlaygroundPage({ op }: { op: Operator }) {
  const [workflows, setWorkflows] = useState<WorkflowsReply | null>(null);
  const [agents, setAgents] = useState<AgentChatsReply['agents'] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [workflow, setWorkflow] = useState<string>(() => new URLSearchParams(location.search).get('workflow') ?? '');
  useEffect(() => {
    get<WorkflowsReply>('/api/workflows').then(
      (w) => {
        setWorkflows(w);
        setWorkflow((cur) => cur || Object.values(w).find((x) => x.entry_point)?.name || Object.keys(w)[0] || '');
      },
      (e) => setError(`Could not list workflows: ${messageOf(e)}`),
    );
  }, []);
  useEffect(() => {
    setAgents(null);
    get<AgentChatsReply>(`/api/chats/${encodeURIComponent(op.appId)}/agents`).then(
      (r) => setAgents(r.agents),
      (e) => setError(`Could not list the app’s agents: ${messageOf(e)}`),
    );
  }, [op.appId]);
  const choices: { workflows: Choice[]; agents: Choice[] } = useMemo(
    () => ({
      workflows: Object.values(workflows ?? {}).map((w) => ({ workflowName: w.name, label: w.name, description: w.description })),
      agents: (agents ?? []).map((a) => ({ workflowName: a.workflow_name, label: a.name, description: a.description })),
    }),
    [workflows, agents],
  );
  const chosen = [...choices.workflows, ...choices.agents].find((c) => c.workflowName === workflow);
  return (
    <section className="playground">
      <h1>Playground</h1>
      <ErrorNote error={error} />
      {workflows && (
        <div className="row">
          <label>
            Chat with{' '}
            <select aria-label="workflow" value={workflow} onChange={(e) => setWorkflow(e.target.value)}>
              {!chosen && workflow && <option value={workflow}>{workflow}</option>}
              <optgroup label="Workflows">
                {choices.workflows.map((c) => (
                  <option key={c.workflowName} value={c.workflowName}>
                    {c.label}
                  </option>
                ))}
              </optgroup>
              {choices.agents.length > 0 && (
                <optgroup label={`Agents of ${op.appId}`}>
                  {choices.agents.map((c) => (
                    <option key={c.workflowName} value={c.workflowName}>
                      {c.label}
                    </option>
                  ))}
                </optgroup>
              )}
            </select>
          </label>
          {chosen && <span className="muted">{chosen.description}</span>}
        </div>
      )}
      {chosen && <Chat key={`${op.appId}/${op.claims.sub}/${chosen.workflowName}`} op={op} workflow={chosen.workflowName} />}
    </section>
  );
}

/**
 * Starts the chat the way an app does: through the broker (`POST /api/mozaiks/session`), which adds
 * the backend-only context (the user's plan, permissions) that a client cannot set; then the chat
 * is opened and resumed by the client core, as any client's.
 */
function Chat({ op, workflow }: { op: Operator; workflow: string }) {
  // One request id per chat shown: a repeated start (a remount of the same chat) rejoins it.
  const [requestId] = useState(newRequestId);
  const [chatId, setChatId] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    let current = true;
    api<SessionReply>('POST', '/api/mozaiks/session', { workflow_name: workflow, app_id: op.appId, client_request_id: requestId }).then(
      (r) => current && setChatId(r.chat_id),
      (e) => current && setError(`The chat could not start: ${messageOf(e)}`),
    );
    return () => {
      current = false;
    };
  }, [op.appId, workflow, requestId]);
  if (!chatId)
    return (
      <div className="chat card">
        <ErrorNote error={error} />
        {!error && <span className="muted small">starting the chat…</span>}
      </div>
    );
  return <LiveChat op={op} workflow={workflow} chatId={chatId} />;
}

/** Random hex (crypto.randomUUID is for secure contexts only, and the console may be opened over plain http). */
function newRequestId(): string {
  return Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, '0')).join('');
}

function LiveChat({ op, workflow, chatId }: { op: Operator; workflow: string; chatId: string }) {
  const host = useMemo(browserHost, []);
  const chat = useChat({ host, appId: op.appId, userId: op.claims.sub, workflowName: workflow, chatId });
  const [text, setText] = useState('');
  const bottom = useRef<HTMLDivElement>(null);
  useEffect(() => void bottom.current?.scrollIntoView({ block: 'nearest' }), [chat.messages.length, chat.streamingText]);
  const composerTool = chat.toolCalls.find((t) => t.display === 'composer');
  const send = () => {
    const t = text.trim();
    if (!t) return;
    chat.send(t);
    setText('');
  };
  return (
    <div className="chat card">
      <div className="chat-bar">
        <span className={`conn ${chat.status}`} data-testid="chat-status">
          {chat.status}
        </span>
        {chat.processing && <span className="muted">agent working…</span>}
        <span className="muted small">chat {chat.chatId ?? 'starting…'}</span>
        {chat.chatId && (
          <a
            href={BASE + sessionPath(chat.chatId)}
            title="this chat as observability recorded it, beside the list of sessions"
            onClick={(e) => {
              e.preventDefault();
              navigate(sessionPath(chat.chatId!));
            }}
          >
            Open session
          </a>
        )}
        <button onClick={() => chat.drop()} disabled={!chat.chatId}>
          Drop connection
        </button>
        <button onClick={() => chat.resume()} disabled={!chat.chatId || chat.status === 'live'}>
          Reconnect now
        </button>
        <button onClick={() => void chat.stop()} disabled={!chat.processing}>
          Stop
        </button>
        <span className="usage" data-testid="usage">
          tokens {num(chat.usage?.inputTokens ?? 0)} in / {num(chat.usage?.outputTokens ?? 0)} out
        </span>
      </div>
      <ErrorNote error={chat.error} />
      <div className="messages" data-testid="messages">
        {chat.messages.map((m) => (
          <div key={m.id} className={`msg ${m.role} ${m.pending ? 'pending' : ''}`} data-role={m.role}>
            <span className="who">{m.role === 'user' ? 'you' : m.agent || 'assistant'}</span>
            <div className="text">{m.text}</div>
          </div>
        ))}
        {chat.streamingText && (
          <div className="msg assistant streaming" data-testid="streaming">
            <span className="who">assistant</span>
            <div className="text">{chat.streamingText}▍</div>
          </div>
        )}
        {chat.toolCalls.map((t) => (
          <ToolCall key={t.eventId} call={t} onAnswer={(answer) => chat.answer(t.eventId, { answer })} />
        ))}
        <div ref={bottom} />
      </div>
      <form
        className="composer"
        onSubmit={(e) => {
          e.preventDefault();
          send();
        }}
      >
        <input
          aria-label="message"
          value={text}
          onChange={(e) => setText(e.target.value)}
          placeholder={composerTool ? `Answer: ${String(composerTool.payload.question ?? composerTool.toolName)}` : 'Message'}
        />
        <button type="submit" disabled={!text.trim()}>
          Send
        </button>
      </form>
    </div>
  );
}

/** A UI tool awaiting the user: its question and, unless the composer answers it, a field of its own. */
function ToolCall({ call, onAnswer }: { call: ToolCallAwaiting; onAnswer: (answer: string) => void }) {
  const [value, setValue] = useState('');
  const question = typeof call.payload.question === 'string' ? call.payload.question : JSON.stringify(call.payload);
  return (
    <div className="tool-call" data-testid="tool-call">
      <div className="small muted">
        {call.toolName} {call.component ? `(${call.component})` : ''}
      </div>
      <div>{question}</div>
      {call.display === 'composer' ? (
        <div className="small muted">Your next message answers this.</div>
      ) : (
        <form
          onSubmit={(e) => {
            e.preventDefault();
            if (value.trim()) onAnswer(value.trim());
          }}
        >
          <input aria-label="answer" value={value} onChange={(e) => setValue(e.target.value)} /> <button type="submit">Answer</button>
        </form>
      )}
    </div>
  );
}

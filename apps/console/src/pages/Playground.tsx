import { useEffect, useMemo, useRef, useState } from 'react';
import type { Host } from '@tessera/client';
import { useChat, type ToolCallAwaiting } from '@tessera/client/react';
import { get, messageOf, storedToken } from '../api';
import type { Operator } from '../App';
import { ErrorNote } from '../ErrorBoundary';
import { num } from '../format';
import type { WorkflowsReply } from '../types';

/** The console is served by the gateway: the chat goes to the same origin, as any web client's would. */
function browserHost(): Host {
  return {
    storage: localStorage,
    getAccessToken: () => storedToken(),
    httpBaseUrl: location.origin,
    wsBaseUrl: `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}`,
  };
}

export function PlaygroundPage({ op }: { op: Operator }) {
  const [workflows, setWorkflows] = useState<WorkflowsReply | null>(null);
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
  const wf = workflow && workflows?.[workflow];
  return (
    <section className="playground">
      <h1>Playground</h1>
      <ErrorNote error={error} />
      {workflows && (
        <div className="row">
          <label>
            Workflow{' '}
            <select aria-label="workflow" value={workflow} onChange={(e) => setWorkflow(e.target.value)}>
              {Object.values(workflows).map((w) => (
                <option key={w.name} value={w.name}>
                  {w.name}
                </option>
              ))}
            </select>
          </label>
          {wf && <span className="muted">{wf.description}</span>}
        </div>
      )}
      {wf && <Chat key={`${op.appId}/${op.claims.sub}/${wf.name}`} op={op} workflow={wf.name} />}
    </section>
  );
}

function Chat({ op, workflow }: { op: Operator; workflow: string }) {
  const host = useMemo(browserHost, []);
  const chat = useChat({ host, appId: op.appId, userId: op.claims.sub, workflowName: workflow });
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

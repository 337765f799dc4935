/** A session as a conversation (see ../conversation.ts): turns of bubbles, tool cards and a waterfall of model and tool time. */
import { useState, type ReactNode } from 'react';
import { waterfall, type Item, type ModelItem, type ToolItem, type Turn } from '../conversation';
import { duration, num } from '../format';

export function ConversationView({ turns, live }: { turns: Turn[]; live: boolean }) {
  if (turns.length === 0) return <p className="muted">No events yet.</p>;
  return (
    <ol className="conversation" data-testid="conversation">
      {turns.map((t, n) => (
        <TurnView key={t.id} turn={t} n={n + 1} running={live && n === turns.length - 1 && t.status === null} />
      ))}
    </ol>
  );
}

function TurnView({ turn, n, running }: { turn: Turn; n: number; running: boolean }) {
  const calls = turn.items.filter((i): i is ModelItem => i.kind === 'model');
  const tokens = calls.reduce((s, c) => ({ input: s.input + (c.tokens?.input ?? 0), output: s.output + (c.tokens?.output ?? 0) }), { input: 0, output: 0 });
  const models = [...new Set(calls.map((c) => c.model).filter(Boolean))];
  const status = turn.status ?? (running ? 'running' : null);
  return (
    <li className="turn" data-turn={n}>
      <div className="turn-head">
        <strong>Turn {n}</strong>
        {status && <span className={`badge ${status}`}>{status}</span>}
        <span className="muted">
          {duration(turn.end - turn.start)}
          {calls.length > 0 && ` · ${calls.length} model call${calls.length === 1 ? '' : 's'} (${models.join(', ') || 'model not named'}) · ${num(tokens.input)} in / ${num(tokens.output)} out`}
        </span>
      </div>
      {turn.resumedBy && <p className="muted small">continues after the answer to {turn.resumedBy}</p>}
      {turn.prompt !== null && (
        <div className="bubble user" data-kind="prompt" title="the user's message, as the first model call's input gives it">
          <span className="who">user</span>
          <div className="text">{turn.prompt}</div>
        </div>
      )}
      <Waterfall turn={turn} />
      {turn.items.map((i) => (
        <ItemView key={i.id} item={i} />
      ))}
    </li>
  );
}

/** Where the turn's time went: one bar per model call and tool call, placed on the turn's span. */
function Waterfall({ turn }: { turn: Turn }) {
  const bars = waterfall(turn);
  if (bars.length === 0) return null;
  return (
    <div className="waterfall" data-testid="waterfall" aria-label={`time of turn, ${duration(turn.end - turn.start)}`}>
      {bars.map(({ item, offset, width, ms }) => (
        <div className="wf-row" key={item.id} data-bar={item.kind}>
          <span className="wf-label" style={{ paddingLeft: `${item.depth * 0.8}rem` }} title={label(item)}>
            {label(item)}
          </span>
          <span className="wf-track">
            <span className={`wf-bar ${item.kind}${item.kind === 'tool' && item.outcome === 'failed' ? ' failed' : ''}`} style={{ left: `${offset * 100}%`, width: `max(2px, ${width * 100}%)` }} />
          </span>
          <span className="wf-ms">{item.kind === 'tool' && item.end === null ? 'waiting' : duration(ms)}</span>
        </div>
      ))}
    </div>
  );
}

const label = (i: ModelItem | ToolItem) => (i.kind === 'model' ? `model ${i.model ?? ''}`.trim() : `tool ${i.name}`);

function ItemView({ item }: { item: Item }) {
  const indent = item.depth ? { marginLeft: `${item.depth * 1.2}rem` } : undefined;
  switch (item.kind) {
    case 'message':
      return (
        <div className={`bubble ${item.role === 'user' ? 'user' : 'assistant'}`} data-item={item.id} data-kind="message" style={indent}>
          <span className="who">{item.role === 'user' ? 'user' : (item.agent ?? item.role)}</span>
          <div className="text">
            {item.text}
            {item.open && <span className="caret" aria-label="streaming" />}
          </div>
          <Fields item={item} />
        </div>
      );
    case 'tool':
      return (
        <details className={`tool-card ${item.outcome}`} data-item={item.id} data-kind="tool" style={indent}>
          <summary>
            <strong>{item.name}</strong> <span className="muted">{toolState(item)}</span>
          </summary>
          <Section title="Arguments">{item.args === undefined ? <span className="muted">the call was not recorded</span> : <Json value={item.args} />}</Section>
          <Section title="Answer">{item.outcome === 'pending' ? <span className="muted">not answered yet</span> : item.answer === undefined ? <span className="muted">none recorded</span> : <Json value={item.answer} />}</Section>
          {item.note && <p className={item.outcome === 'failed' ? 'conv-error' : 'muted'}>{item.note}</p>}
          <Fields item={item} />
        </details>
      );
    case 'model':
      return (
        <>
          {item.text && (
            <div className="bubble assistant" data-kind="model-output" style={indent}>
              <span className="who">{item.agent ?? 'assistant'}</span>
              <div className="text">{item.text}</div>
            </div>
          )}
          <div className="conv-line model" data-item={item.id} data-kind="model" style={indent}>
            <span>
              model call{item.model && ` · ${item.model}`}
              {item.agent && ` · ${item.agent}`}
              {item.tokens && ` · ${num(item.tokens.input)} in / ${num(item.tokens.output)} out`}
              {item.tokens?.cacheRead !== undefined && ` · ${num(item.tokens.cacheRead)} cached`}
              {item.tokens?.reasoning !== undefined && ` · ${num(item.tokens.reasoning)} reasoning`}
              {` · ${duration(item.end - item.at)}`}
            </span>
            {item.error && <span className="conv-error"> {item.error}</span>}
            <Fields item={item} />
          </div>
        </>
      );
    case 'handoff':
      return (
        <div className="conv-line handoff" data-item={item.id} data-kind="handoff">
          <span>
            ⇢ handed off from <strong>{item.from ?? '?'}</strong> to <strong>{item.to ?? '?'}</strong>
          </span>
          <Fields item={item} />
        </div>
      );
    case 'error':
      return (
        <div className="conv-line conv-error" data-item={item.id} data-kind="error">
          <span>
            {item.code && <strong>{item.code}: </strong>}
            {item.message}
          </span>
          <Fields item={item} />
        </div>
      );
    case 'end':
      return (
        <div className="conv-line end" data-item={item.id} data-kind="end">
          <span>
            turn {item.status}
            {item.reason && `: ${item.reason}`}
          </span>
          <Fields item={item} />
        </div>
      );
    case 'event':
      return (
        <div className={`conv-line event${item.error ? ' conv-error' : ''}`} data-item={item.id} data-kind="event" style={indent}>
          <span>
            <strong>{item.label}</strong>
            {item.text && ` · ${item.text.length > 300 ? `${item.text.slice(0, 300)}…` : item.text}`}
            {item.error && ` · ${item.error}`}
          </span>
          <Fields item={item} />
        </div>
      );
  }
}

function toolState(t: ToolItem): string {
  if (t.outcome === 'pending') return 'awaiting its answer';
  const took = t.end === null ? '' : ` in ${duration(t.end - t.at)}`;
  return `${t.outcome}${took}`;
}

function Section({ title, children }: { title: string; children: ReactNode }) {
  return (
    <div className="tool-section">
      <div className="muted small">{title}</div>
      {children}
    </div>
  );
}

function Json({ value }: { value: unknown }) {
  return <pre className="json">{typeof value === 'string' ? value : JSON.stringify(value, null, 2)}</pre>;
}

/** Every item opens to the events it stands for, field by field, as stored. */
function Fields({ item }: { item: Item }) {
  // Rendered when opened: a long streamed message stands for hundreds of events.
  const [open, setOpen] = useState(false);
  if (item.events.length === 0) return null;
  return (
    <details className="fields" onToggle={(e) => setOpen(e.currentTarget.open)}>
      <summary>
        {item.events.length === 1 ? `event #${item.events[0].seq}` : `${item.events.length} events (#${item.events[0].seq}–#${item.events.at(-1)!.seq})`}
      </summary>
      {open && item.events.map((e) => (
        <pre key={e.seq} className="json" data-seq={e.seq}>
          {JSON.stringify(e, null, 2)}
        </pre>
      ))}
    </details>
  );
}

/** What the engine tests share: the shipped workflows, a collecting `emit`, fake providers. */
import { join } from 'node:path';
import type { TimelineType } from '@tessera/contracts';
import { TimelineData } from '@tessera/contracts';
import { runTurn } from '../../src/engine/run-turn';
import { emptyState, type ConversationState, type Emit, type LoadedWorkflow, type ProviderRegistry, type RunTurnInput } from '../../src/engine/types';
import { loadWorkflows } from '../../src/engine/workflows';
import { createProviderRegistry } from '../../src/providers/registry';
import type { ModelChunk, ModelProvider, ModelRequest } from '../../src/providers/types';

export const WORKFLOWS_DIR = join(__dirname, '../../workflows');
export const workflows = loadWorkflows(WORKFLOWS_DIR);
export const registry = createProviderRegistry({});

export function workflow(name: string): LoadedWorkflow {
  const w = workflows.get(name);
  if (!w) throw new Error(`no workflow ${name}`);
  return w;
}

export interface Emitted {
  type: TimelineType;
  data: any;
}

/** An emit that validates each event against its contract schema and keeps it. */
export function collector(): { events: Emitted[]; emit: Emit } {
  const events: Emitted[] = [];
  const emit: Emit = async (type, data) => {
    TimelineData[type].parse(data);
    events.push({ type, data: structuredClone(data) });
  };
  return { events, emit };
}

/** Text of each closed assistant message, from the stream of chat.text events. */
export function messagesOf(events: Emitted[]): { agent: string; text: string; id: string }[] {
  const open = new Map<string, string>();
  const out: { agent: string; text: string; id: string }[] = [];
  for (const e of events) {
    if (e.type !== 'chat.text') continue;
    if (!e.data.done) open.set(e.data.message_id, (open.get(e.data.message_id) ?? '') + e.data.delta);
    else {
      expect(e.data.content).toBe(open.get(e.data.message_id) ?? '');
      out.push({ agent: e.data.agent, text: e.data.content, id: e.data.message_id });
      open.delete(e.data.message_id);
    }
  }
  expect(open.size).toBe(0); // every message was closed
  return out;
}

/** Event types, with chat.text deltas collapsed to `chat.text*` and the final one as `chat.text!`. */
export function shapeOf(events: Emitted[]): string[] {
  const out: string[] = [];
  for (const e of events) {
    const t = e.type === 'chat.text' ? (e.data.done ? 'chat.text!' : 'chat.text*') : e.type;
    if (t === 'chat.text*' && out[out.length - 1] === 'chat.text*') continue;
    out.push(t);
  }
  return out;
}

export async function turn(
  w: LoadedWorkflow,
  input: RunTurnInput['input'],
  opts: Partial<Omit<RunTurnInput, 'workflow' | 'input' | 'emit'>> = {},
) {
  const { events, emit } = collector();
  const result = await runTurn({
    workflow: w,
    state: opts.state ?? emptyState(w.starting_agent),
    context: opts.context ?? {},
    input,
    turnId: opts.turnId ?? 'turn-1',
    signal: opts.signal ?? new AbortController().signal,
    emit,
    providers: opts.providers ?? registry,
    resolveBlueprint: opts.resolveBlueprint,
    extensions: opts.extensions,
  });
  return { ...result, events };
}

/** A provider that answers each call with the next reply of a list, and records requests. */
export function fakeProvider(replies: ((req: ModelRequest) => ModelChunk[] | Error)[]): ModelProvider & { requests: ModelRequest[] } {
  const requests: ModelRequest[] = [];
  return {
    name: 'fake',
    deterministic: true,
    requests,
    async *stream(req) {
      requests.push(structuredClone(req));
      const reply = replies[Math.min(requests.length - 1, replies.length - 1)](req);
      if (reply instanceof Error) throw reply;
      for (const c of reply) yield c;
    },
  };
}

export function registryWith(provider: ModelProvider): ProviderRegistry {
  return { get: () => provider, defaultModel: () => 'fake-model' };
}

export const finish = (reason: 'stop' | 'tool-calls' = 'stop'): ModelChunk => ({
  type: 'finish',
  reason,
  usage: { prompt_tokens: 10, completion_tokens: 2, total_tokens: 12 },
});

export function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object') {
    for (const v of Object.values(o)) deepFreeze(v);
    Object.freeze(o);
  }
  return o;
}

export type { ConversationState };

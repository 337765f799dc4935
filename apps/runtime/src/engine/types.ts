/**
 * The contract between the turn runner (worker, chat store, event log) and the workflow engine.
 * The engine is pure with respect to storage: it gets the conversation state and an `emit`
 * function, and returns the new state. Everything it emits becomes a timeline event, in order.
 */
import type { TimelineDataOf, TimelineType, Usage, WorkflowFile } from '@tessera/contracts';
import type { ModelProvider, ToolSpec } from '../providers/types';
import type { HistoryLimits } from './history';

export interface ConversationToolCall {
  id: string;
  name: string;
  args: Record<string, unknown>;
  /** The `chat.tool_call` event's id, for UI tool calls (the awaited ones are answered by it). */
  event_id?: string;
}

/** A message of the conversation as the engine keeps it between turns (stored in chats.state). */
export type ConversationMessage =
  | { role: 'user'; content: string }
  | { role: 'assistant'; agent: string; content: string; tool_calls?: ConversationToolCall[] }
  | { role: 'tool'; tool_call_id: string; tool_name: string; content: string };

export interface ConversationState {
  /** The agent that speaks next. */
  current_agent: string;
  messages: ConversationMessage[];
  /** Completed turns. */
  turns: number;
  usage: Usage;
  /** Mission chats only: checkpoint ids the tutor has completed (engine/checkpoints.ts). */
  completed_checkpoints?: string[];
}

/** What a turn answers. */
export type TurnInput =
  | { kind: 'message'; text: string }
  /** The first agent speaks first (workflow initiator = agent). */
  | { kind: 'greeting' }
  /** The answer to a UI tool call that awaited a response. */
  | { kind: 'tool_response'; event_id: string; tool_call_id: string; tool_name: string; agent: string; response: Record<string, unknown> };

export type Emit = <T extends TimelineType>(type: T, data: TimelineDataOf<T>) => Promise<void>;

export interface LoadedWorkflow extends WorkflowFile {
  /** The file it was loaded from (for error messages). */
  file: string;
}

export interface RunTurnInput {
  workflow: LoadedWorkflow;
  state: ConversationState;
  /** Context variables: backend values as is, client values under `ui_` keys. */
  context: Record<string, unknown>;
  input: TurnInput;
  /** Unique per turn; ids the engine makes (message_id, event_id, tool_call_id) derive from it so a re-run makes the same ids. */
  turnId: string;
  signal: AbortSignal;
  emit: Emit;
  providers: ProviderRegistry;
  /** System prompt of an agent-manager blueprint, for agents declared with `blueprint`. */
  resolveBlueprint?: (name: string) => Promise<string>;
  /** How much of the conversation is kept (and sent to the model); all of it when absent. */
  history?: HistoryLimits;
  /** What features contribute to the turn (Mission Ally's checkpoint tool): tools the runtime answers itself. */
  extensions?: readonly TurnExtensionSource[];
  /** Asked before every model call (budgets): the turn fails with BUDGET_EXCEEDED when refused, and reports each call's usage. */
  budget?: ModelCallBudget;
}

/** Budgets as the engine sees them: a call is admitted, then reports what it used; or it is refused, saying why. */
export interface ModelCallBudget {
  admit(): Promise<{ ok: true; done(usage: Usage | undefined, model: string, provider: string): Promise<void> } | { ok: false; message: string }>;
}

export interface RunTurnResult {
  state: ConversationState;
  /** `awaiting_input`: a UI tool call awaits the user's response. */
  status: 'completed' | 'awaiting_input' | 'stopped' | 'failed';
  /** UI tool calls left awaiting a response. */
  awaiting: { event_id: string; tool_call_id: string; tool_name: string; agent: string }[];
  /** Error message when status is failed. */
  error?: string;
}

export interface ProviderRegistry {
  get(name: 'scripted' | 'openai-compatible' | 'anthropic'): ModelProvider;
  /** Default model id per provider (from config). */
  defaultModel(name: string): string;
}

export function emptyState(startingAgent: string): ConversationState {
  return { current_agent: startingAgent, messages: [], turns: 0, usage: { prompt_tokens: 0, completion_tokens: 0, total_tokens: 0 } };
}

/** A tool the runtime answers itself within a turn (not a UI tool, not a handoff). */
export interface TurnTool {
  spec: ToolSpec;
  /** The result the model reads; what the user should see of it goes through `emit`. */
  call(args: Record<string, unknown>, agent: string, emit: Emit): Promise<Record<string, unknown>>;
}

/** What a feature contributes to one turn of a chat: its tools, and what it keeps in the conversation state. */
export interface TurnExtension {
  tools: TurnTool[];
  /** Fields it adds to the state saved at the end of the turn. */
  saved(): Partial<ConversationState>;
}

/** Looks at a chat's context and state before a turn; null when the feature has nothing for this chat. */
export type TurnExtensionSource = (context: Record<string, unknown>, state: ConversationState) => TurnExtension | null;

/**
 * One interface for every model provider: streamed text, tool calls, usage, finish reason, abort.
 */
import type { ModelRef, Usage } from '@tessera/contracts';

export type ModelMessage =
  | { role: 'user'; content: string }
  | { role: 'assistant'; content: string; tool_calls?: { id: string; name: string; args: Record<string, unknown> }[] }
  | { role: 'tool'; tool_call_id: string; tool_name: string; content: string };

export interface ToolSpec {
  name: string;
  description: string;
  /** JSON Schema of the arguments. */
  parameters: Record<string, unknown>;
}

export interface ModelRequest {
  model: string;
  system: string;
  messages: ModelMessage[];
  tools: ToolSpec[];
  temperature?: number;
  maxTokens?: number;
  /**
   * The agent's model block as its workflow declares it, passed as is: each provider reads what it
   * understands (the scripted provider its `script` and `token_delay_ms`).
   */
  declared?: ModelRef;
  /** The chat's context variables (the scripted provider's {{context.x}}); never sent to a model server. */
  context?: Record<string, unknown>;
}

export type ModelChunk =
  | { type: 'text-delta'; text: string }
  | { type: 'tool-call'; id: string; name: string; args: Record<string, unknown> }
  | { type: 'finish'; reason: 'stop' | 'tool-calls' | 'length' | 'error' | 'other'; usage: Usage };

export interface ModelProvider {
  readonly name: string;
  /** Same request, same chunks: a turn re-run after a worker died reproduces what was sent. */
  readonly deterministic: boolean;
  /**
   * Text deltas and tool calls as they arrive, then one `finish`. When `signal` aborts, the
   * iterator stops promptly and throws an Error named `AbortError` (`isAbortError` in ./errors);
   * any other failure throws a `ModelProviderError` whose message is safe to show (no keys).
   */
  stream(req: ModelRequest, signal: AbortSignal): AsyncIterable<ModelChunk>;
}

/**
 * What the OpenAI-compatible and Anthropic providers share: our request mapped to the AI SDK's
 * `streamText` (tools without `execute`, so the SDK hands tool calls back instead of running them),
 * and its `fullStream` mapped back to our chunks.
 */
import type { Usage } from '@tessera/contracts';
import { jsonSchema, streamText, type LanguageModel, type LanguageModelUsage, type ModelMessage as SdkMessage, type ProviderMetadata, type ToolSet } from 'ai';
import { abortError, ModelProviderError, safeErrorMessage } from './errors';
import type { ModelChunk, ModelMessage, ModelRequest, ToolSpec } from './types';

type FinishReason = Extract<ModelChunk, { type: 'finish' }>['reason'];

export interface SdkStreamOptions {
  /** Retries of a failed request before any chunk arrived (the SDK's `maxRetries`). */
  maxRetries: number;
  /** Values removed from error messages. */
  secrets: readonly (string | undefined)[];
  /** How the provider's usage reads as ours (default: OpenAI's reading, `usageOf`). */
  usage?: (u: LanguageModelUsage, meta: ProviderMetadata | undefined) => Usage;
}

const count = (n: number | undefined): number | undefined => (typeof n === 'number' && Number.isFinite(n) && n >= 0 ? Math.round(n) : undefined);

/**
 * The AI SDK's usage of an OpenAI-style provider, whose input tokens include the cached ones
 * (`prompt_tokens_details.cached_tokens`) and output tokens the reasoning ones. A part the
 * provider did not report stays absent, never 0.
 */
export function usageOf(u: LanguageModelUsage): Usage {
  const prompt = count(u.inputTokens) ?? 0;
  const completion = count(u.outputTokens) ?? 0;
  const cacheRead = count(u.cachedInputTokens);
  const reasoning = count(u.reasoningTokens);
  return {
    prompt_tokens: prompt,
    completion_tokens: completion,
    total_tokens: count(u.totalTokens) ?? prompt + completion,
    ...(cacheRead !== undefined && { cache_read_tokens: cacheRead }),
    ...(reasoning !== undefined && { reasoning_tokens: reasoning }),
  };
}

export async function* streamWithSdk(
  model: LanguageModel,
  req: ModelRequest,
  signal: AbortSignal,
  opts: SdkStreamOptions,
): AsyncGenerator<ModelChunk> {
  if (signal.aborted) throw abortError();
  const result = streamText({
    model,
    system: req.system || undefined,
    messages: toSdkMessages(req.messages),
    tools: req.tools.length > 0 ? toSdkTools(req.tools) : undefined,
    temperature: req.temperature,
    maxOutputTokens: req.maxTokens,
    maxRetries: opts.maxRetries,
    abortSignal: signal,
    // Errors come through the stream and are thrown below; the default handler logs them.
    onError: () => undefined,
  });

  let finished = false;
  // The last step's provider metadata (streamText runs one step here: tools have no execute).
  let meta: ProviderMetadata | undefined;
  const readUsage = opts.usage ?? usageOf;
  try {
    for await (const part of result.fullStream) {
      switch (part.type) {
        case 'text-delta':
          if (part.text) yield { type: 'text-delta', text: part.text };
          break;
        case 'tool-call': {
          const input = part.input;
          const args = input !== null && typeof input === 'object' && !Array.isArray(input) ? (input as Record<string, unknown>) : {};
          yield { type: 'tool-call', id: part.toolCallId, name: part.toolName, args };
          break;
        }
        case 'finish-step':
          meta = part.providerMetadata;
          break;
        case 'finish':
          finished = true;
          yield { type: 'finish', reason: mapFinishReason(part.finishReason), usage: readUsage(part.totalUsage, meta) };
          break;
        case 'abort':
          throw abortError();
        case 'error':
          throw part.error;
        default:
          break;
      }
    }
  } catch (e) {
    if (signal.aborted) throw abortError();
    if (e instanceof ModelProviderError) throw e;
    throw new ModelProviderError(safeErrorMessage(e, opts.secrets), statusOf(e));
  }
  if (signal.aborted) throw abortError();
  if (!finished) throw new ModelProviderError('The model stream ended without a finish');
}

/** Our conversation in the AI SDK's message format: tool calls and their results pair by id. */
export function toSdkMessages(messages: readonly ModelMessage[]): SdkMessage[] {
  const out: SdkMessage[] = [];
  for (const m of messages) {
    if (m.role === 'user') {
      out.push({ role: 'user', content: m.content });
    } else if (m.role === 'assistant') {
      const calls = m.tool_calls ?? [];
      if (calls.length === 0) {
        // Providers reject empty assistant turns (Anthropic: "text content blocks must be non-empty").
        if (m.content) out.push({ role: 'assistant', content: m.content });
        continue;
      }
      out.push({
        role: 'assistant',
        content: [
          ...(m.content ? [{ type: 'text' as const, text: m.content }] : []),
          ...calls.map((c) => ({ type: 'tool-call' as const, toolCallId: c.id, toolName: c.name, input: c.args })),
        ],
      });
    } else {
      const part = {
        type: 'tool-result' as const,
        toolCallId: m.tool_call_id,
        toolName: m.tool_name,
        output: { type: 'text' as const, value: m.content },
      };
      // Results of one assistant message travel together (Anthropic wants them in one user turn).
      const prev = out[out.length - 1];
      if (prev && prev.role === 'tool') prev.content.push(part);
      else out.push({ role: 'tool', content: [part] });
    }
  }
  return out;
}

export function toSdkTools(tools: readonly ToolSpec[]): ToolSet {
  const set: ToolSet = {};
  for (const t of tools) {
    set[t.name] = { description: t.description, inputSchema: jsonSchema(t.parameters as Parameters<typeof jsonSchema>[0]) };
  }
  return set;
}

function mapFinishReason(r: string): FinishReason {
  switch (r) {
    case 'stop':
    case 'length':
    case 'tool-calls':
    case 'error':
      return r;
    default:
      return 'other';
  }
}

function statusOf(e: unknown): number | undefined {
  const s = (e as { statusCode?: unknown } | null)?.statusCode;
  return typeof s === 'number' ? s : undefined;
}

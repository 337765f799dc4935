/** Anthropic's Messages API with streaming and tool use, through `@ai-sdk/anthropic`. */
import { createAnthropic } from '@ai-sdk/anthropic';
import type { Usage } from '@tessera/contracts';
import type { LanguageModelUsage, ProviderMetadata } from 'ai';
import { streamWithSdk, usageOf } from './ai-sdk-stream';
import type { ModelProvider } from './types';

export interface AnthropicConfig {
  apiKey: string;
  /** Default model id, used when a request names none. */
  model: string;
  /** Defaults to `https://api.anthropic.com/v1`. */
  baseURL?: string;
  /** Retries of a request that failed before streaming began (default 2). */
  maxRetries?: number;
}

export function createAnthropicProvider(config: AnthropicConfig): ModelProvider {
  const sdk = createAnthropic({ apiKey: config.apiKey, baseURL: config.baseURL });
  const opts = { maxRetries: config.maxRetries ?? 2, secrets: [config.apiKey], usage: anthropicUsage };
  return {
    name: 'anthropic',
    deterministic: false,
    stream: (req, signal) => streamWithSdk(sdk.messages(req.model || config.model), req, signal, opts),
  };
}

/**
 * Anthropic's `input_tokens` leave out the cached input: the prompt is those plus
 * `cache_read_input_tokens` and `cache_creation_input_tokens` (the AI SDK hands the latter over
 * in the provider metadata only).
 */
export function anthropicUsage(u: LanguageModelUsage, meta: ProviderMetadata | undefined): Usage {
  const base = usageOf(u);
  const written = meta?.anthropic?.cacheCreationInputTokens;
  const cacheWrite = typeof written === 'number' && Number.isFinite(written) && written >= 0 ? Math.round(written) : undefined;
  const prompt = base.prompt_tokens + (base.cache_read_tokens ?? 0) + (cacheWrite ?? 0);
  return {
    ...base,
    prompt_tokens: prompt,
    total_tokens: prompt + base.completion_tokens,
    ...(cacheWrite !== undefined && { cache_write_tokens: cacheWrite }),
  };
}

/** Anthropic's Messages API with streaming and tool use, through `@ai-sdk/anthropic`. */
import { createAnthropic } from '@ai-sdk/anthropic';
import { streamWithSdk } from './ai-sdk-stream';
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
  const opts = { maxRetries: config.maxRetries ?? 2, secrets: [config.apiKey] };
  return {
    name: 'anthropic',
    deterministic: false,
    stream: (req, signal) => streamWithSdk(sdk.messages(req.model || config.model), req, signal, opts),
  };
}

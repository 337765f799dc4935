/**
 * OpenAI-compatible chat completions (OpenAI, Ollama, vLLM, llama.cpp server) with streaming and
 * tool calls, through `@ai-sdk/openai-compatible`.
 */
import { createOpenAICompatible } from '@ai-sdk/openai-compatible';
import { streamWithSdk } from './ai-sdk-stream';
import type { ModelProvider } from './types';

export interface OpenAICompatibleConfig {
  /** e.g. `https://api.openai.com/v1`, `http://localhost:11434/v1` (Ollama). */
  baseURL: string;
  apiKey?: string;
  /** Default model id, used when a request names none. */
  model: string;
  /** Retries of a request that failed before streaming began (default 2). */
  maxRetries?: number;
}

export function createOpenAICompatibleProvider(config: OpenAICompatibleConfig): ModelProvider {
  const sdk = createOpenAICompatible({
    name: 'openai-compatible',
    baseURL: config.baseURL,
    apiKey: config.apiKey,
    // Sends `stream_options.include_usage`, so the stream ends with token counts.
    includeUsage: true,
  });
  const opts = { maxRetries: config.maxRetries ?? 2, secrets: [config.apiKey] };
  return {
    name: 'openai-compatible',
    deterministic: false,
    stream: (req, signal) => streamWithSdk(sdk.chatModel(req.model || config.model), req, signal, opts),
  };
}

/**
 * The providers a runtime process can use. The scripted provider is always there; the others exist
 * when configured, and asking for one that is not names the variables to set.
 */
import type { ProviderRegistry } from '../engine/types';
import { createAnthropicProvider, type AnthropicConfig } from './anthropic';
import { createOpenAICompatibleProvider, type OpenAICompatibleConfig } from './openai-compatible';
import { createScriptedProvider } from './scripted';
import type { ModelProvider } from './types';

export interface ProviderRegistryConfig {
  openai?: OpenAICompatibleConfig;
  anthropic?: AnthropicConfig;
}

export type ProviderName = Parameters<ProviderRegistry['get']>[0];

/** Thrown when a workflow asks for a provider the runtime has no configuration for. */
export class ProviderNotConfigured extends Error {
  override readonly name = 'ProviderNotConfigured';
}

const SCRIPTED_MODEL = 'scripted';

export function createProviderRegistry(config: ProviderRegistryConfig): ProviderRegistry {
  const scripted = createScriptedProvider();
  // Built on first use: a process that never calls a real model never constructs its client.
  let openai: ModelProvider | undefined;
  let anthropic: ModelProvider | undefined;

  const openaiConfig = (): OpenAICompatibleConfig => {
    if (!config.openai?.baseURL || !config.openai.model)
      throw new ProviderNotConfigured(
        'The "openai-compatible" provider is not configured: set OPENAI_BASE_URL (and OPENAI_MODEL, OPENAI_API_KEY if the server needs a key)',
      );
    return config.openai;
  };
  const anthropicConfig = (): AnthropicConfig => {
    if (!config.anthropic?.apiKey || !config.anthropic.model)
      throw new ProviderNotConfigured('The "anthropic" provider is not configured: set ANTHROPIC_API_KEY (and ANTHROPIC_MODEL)');
    return config.anthropic;
  };

  return {
    get(name: ProviderName): ModelProvider {
      switch (name) {
        case 'scripted':
          return scripted;
        case 'openai-compatible':
          return (openai ??= createOpenAICompatibleProvider(openaiConfig()));
        case 'anthropic':
          return (anthropic ??= createAnthropicProvider(anthropicConfig()));
        default:
          throw new ProviderNotConfigured(`Unknown model provider "${String(name)}"`);
      }
    },
    defaultModel(name: string): string {
      switch (name) {
        case 'scripted':
          return SCRIPTED_MODEL;
        case 'openai-compatible':
          return openaiConfig().model;
        case 'anthropic':
          return anthropicConfig().model;
        default:
          throw new ProviderNotConfigured(`Unknown model provider "${name}"`);
      }
    },
  };
}

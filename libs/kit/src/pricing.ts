/**
 * What a model call cost, in US dollars, priced once where its usage is stored (whatever path it
 * came by: a runtime chat, `POST /events`, OpenTelemetry). Prices come from `@pydantic/genai-prices`,
 * whose price table ships inside the package (nothing is fetched at run time), or from the
 * deployment's PRICE_OVERRIDES, which win. A model neither knows is priced as unknown (null),
 * never as free.
 */
import { calcPrice, findProvider, type Provider } from '@pydantic/genai-prices';
import { z } from 'zod';

/** USD per million tokens, as PRICE_OVERRIDES gives them; a cache price defaults to the input price. */
export interface ModelPrice {
  input: number;
  output: number;
  cache_read?: number;
  cache_write?: number;
}
export type PriceOverrides = Record<string, ModelPrice>;

/** A model call's tokens: `input` counts every input token, the cache reads and writes among them. */
export interface CallUsage {
  input: number;
  output: number;
  cacheRead?: number;
  cacheWrite?: number;
  reasoning?: number;
  model?: string | null;
  /** As the producer names it: `openai-compatible`, `anthropic`, `openai`, an OpenTelemetry `gen_ai.provider.name`… */
  provider?: string | null;
}

export interface Pricer {
  /** The call's cost in USD, or null when its model has no known price. */
  costOf(usage: CallUsage, at: Date): number | null;
}

/** Our providers' names that are not the price table's: an OpenAI-compatible server may be anyone's (Ollama, vLLM…), so it is matched by model. */
const PROVIDER_IDS: Record<string, string | undefined> = { 'openai-compatible': undefined, scripted: undefined };

export function createPricer(overrides: PriceOverrides = {}): Pricer {
  const custom: Provider | undefined =
    Object.keys(overrides).length === 0
      ? undefined
      : {
          id: 'price-overrides',
          name: 'PRICE_OVERRIDES',
          api_pattern: '^$',
          models: Object.entries(overrides).map(([id, p]) => ({
            id,
            match: { equals: id },
            prices: { input_mtok: p.input, output_mtok: p.output, cache_read_mtok: p.cache_read, cache_write_mtok: p.cache_write },
          })),
        };
  const known = new Map<string, string | undefined>();
  const providerId = (name: string | null | undefined): string | undefined => {
    if (!name) return undefined;
    const key = name.toLowerCase();
    if (key in PROVIDER_IDS) return PROVIDER_IDS[key];
    // A name the table does not know would make it find nothing: then the model alone decides.
    if (!known.has(key)) known.set(key, findProvider({ providerId: key })?.id);
    return known.get(key);
  };

  return {
    costOf(u, at) {
      const model = u.model?.trim();
      if (!model) return null;
      const tokens = { input_tokens: u.input, output_tokens: u.output, cache_read_tokens: u.cacheRead, cache_write_tokens: u.cacheWrite };
      // The table refuses usage that does not add up (cache reads beyond the input): unknown, not an error.
      try {
        const own = custom && Object.hasOwn(overrides, model) ? calcPrice(tokens, model, { provider: custom }) : null;
        const r = own ?? calcPrice(tokens, model, { providerId: providerId(u.provider), timestamp: at });
        return r && Number.isFinite(r.total_price) ? r.total_price : null;
      } catch {
        return null;
      }
    },
  };
}

/** USD per million tokens of one model; the cache prices default to the input price. */
const ModelPriceSchema = z.strictObject({
  input: z.number().min(0),
  output: z.number().min(0),
  cache_read: z.number().min(0).optional(),
  cache_write: z.number().min(0).optional(),
});

/**
 * `{"<model>": {"input": 2.5, "output": 10, "cache_read": 1.25}}`: prices that win over the price
 * table's (a model it does not know, a negotiated rate), keyed by the model id as calls report it.
 */
export const PriceOverridesEnv = z
  .string()
  .default('{}')
  .transform((s, ctx) => {
    try {
      return JSON.parse(s) as unknown;
    } catch (e) {
      ctx.addIssue({ code: 'custom', message: `not JSON (${(e as Error).message}); expected {"<model>": {"input": <USD per million>, "output": <USD per million>, "cache_read"?, "cache_write"?}}` });
      return z.NEVER;
    }
  })
  .pipe(z.record(z.string().min(1, 'a model id is needed'), ModelPriceSchema));

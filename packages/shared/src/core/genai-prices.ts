/**
 * M2: rates from npm `@pydantic/genai-prices` (its bundled data; works offline). Maps the
 * library's `model_price` (`input_mtok`, `cache_read_mtok`, `cache_write_mtok`, `output_mtok`,
 * each a number or TieredPrices `{base, tiers:[{start, price}]}`) to ModelRates; the first tier
 * becomes the long-context tier. Lookups are cached per (provider, model).
 *
 * Provider names in workflows are not always price providers: `simulated`, `local` or an
 * OpenAI-compatible alias. When the lookup with the provider id finds nothing, the model is
 * looked up without one (genai-prices then matches the model id across all providers).
 */
import { calcPrice } from '@pydantic/genai-prices';
import type { ModelRates, PriceTable } from './types.js';

type Price = number | { readonly base: number; readonly tiers: ReadonlyArray<{ start: number; price: number }> } | undefined;

function base(p: Price): number | undefined {
  if (p === undefined) return undefined;
  return typeof p === 'number' ? p : p.base;
}

function firstTier(p: Price): { start: number; price: number } | undefined {
  return typeof p === 'object' ? p.tiers[0] : undefined;
}

/** Converts a genai-prices `model_price` to ModelRates (undefined when it has no input price). */
export function ratesFromModelPrice(
  provider: string,
  model: string,
  price: Readonly<Record<string, Price>>,
  source = 'genai-prices',
): ModelRates | undefined {
  const input = price.input_mtok;
  const cached = price.cache_read_mtok;
  const write = price.cache_write_mtok;
  const output = price.output_mtok;
  const inputBase = base(input);
  if (inputBase === undefined) return undefined;
  const rates: ModelRates = {
    provider,
    model,
    inputPerMTokUsd: inputBase,
    cachedInputPerMTokUsd: base(cached) ?? inputBase,
    ...(base(write) !== undefined ? { cacheWritePerMTokUsd: base(write) } : {}),
    outputPerMTokUsd: base(output) ?? 0,
    source,
  };
  const tier = firstTier(input) ?? firstTier(output) ?? firstTier(cached);
  if (tier === undefined) return rates;
  const tierPrice = (p: Price): number | undefined => firstTier(p)?.price ?? base(p);
  const lcInput = tierPrice(input) ?? inputBase;
  const lcWrite = tierPrice(write);
  return {
    ...rates,
    longContext: {
      thresholdTokens: tier.start,
      inputPerMTokUsd: lcInput,
      cachedInputPerMTokUsd: tierPrice(cached) ?? lcInput,
      ...(lcWrite !== undefined ? { cacheWritePerMTokUsd: lcWrite } : {}),
      outputPerMTokUsd: tierPrice(output) ?? 0,
    },
  };
}

export interface GenaiPriceTableOptions {
  /** Date used to pick date- or time-dependent prices; default: the time of each first lookup. */
  readonly at?: Date;
}

/** M2: the public price table. Tools have no public price here (0). */
export class GenaiPriceTable implements PriceTable {
  /** Lookups already made, by provider then model (no key string built per lookup). */
  private readonly cache = new Map<string, Map<string, ModelRates | undefined>>();

  constructor(private readonly options: GenaiPriceTableOptions = {}) {}

  rates(provider: string, model: string): ModelRates | undefined {
    let byModel = this.cache.get(provider);
    if (byModel === undefined) {
      byModel = new Map();
      this.cache.set(provider, byModel);
    }
    const hit = byModel.get(model);
    if (hit !== undefined || byModel.has(model)) return hit;
    const r = this.lookup(provider, model);
    byModel.set(model, r);
    return r;
  }

  toolCallUsd(_tool: string): number {
    return 0;
  }

  private lookup(provider: string, model: string): ModelRates | undefined {
    const usage = { input_tokens: 1, output_tokens: 1 };
    const at = this.options.at;
    const opts = at !== undefined ? { timestamp: at } : {};
    const found = calcPrice(usage, model, { ...opts, providerId: provider }) ?? calcPrice(usage, model, opts);
    if (found === null) return undefined;
    return ratesFromModelPrice(provider, model, found.model_price as Record<string, Price>);
  }
}

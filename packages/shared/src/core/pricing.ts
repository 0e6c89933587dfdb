/**
 * M2 (price): the dollar cost of an LLM call from its token counts and the model's rates, and
 * the configured / layered price tables services use. Rates are $ per million tokens.
 *
 *   C = N_uncached_in * r_in + N_cached_in * r_cached + N_cache_write * r_write + N_out * r_out
 *
 * r_write falls back to r_in when the model has no cache-write rate. When the prompt
 * (uncached + cached + cache-write tokens) exceeds `longContext.thresholdTokens`, every token of
 * the call is billed at the long-context rates (as genai-prices and the providers do).
 */
import { ValidationError } from '../errors.js';
import { GenaiPriceTable } from './genai-prices.js';
import type { ModelRates, PriceTable, TokenUsage } from './types.js';

const PER_MTOK = 1_000_000;

/** Tokens of prompt that decide the long-context tier. */
export function promptTokens(usage: TokenUsage): number {
  return usage.inputTokens + usage.cachedInputTokens + (usage.cacheWriteTokens ?? 0);
}

/** The rates that apply to a call of this prompt size (base, or the long-context tier). */
export function effectiveRates(rates: ModelRates, promptTokenCount: number): Omit<ModelRates, 'longContext'> {
  const lc = rates.longContext;
  if (lc === undefined || promptTokenCount <= lc.thresholdTokens) return rates;
  return { ...rates, ...lc };
}

/** M2: cost in dollars of one LLM call. */
export function llmCostUsd(rates: ModelRates, usage: TokenUsage): number {
  return llmCostOfTokensUsd(rates, usage.inputTokens, usage.cachedInputTokens, usage.cacheWriteTokens ?? 0, usage.outputTokens);
}

/**
 * M2: `llmCostUsd` with the token counts as arguments (the same arithmetic): for the decision
 * path, which prices a call per decision without building a usage object (issue 9).
 */
export function llmCostOfTokensUsd(rates: ModelRates, inputTokens: number, cachedInputTokens: number, cacheWriteTokens: number, outputTokens: number): number {
  const r = effectiveRates(rates, inputTokens + cachedInputTokens + cacheWriteTokens);
  const writeRate = r.cacheWritePerMTokUsd ?? r.inputPerMTokUsd;
  return (
    (inputTokens * r.inputPerMTokUsd + cachedInputTokens * r.cachedInputPerMTokUsd + cacheWriteTokens * writeRate + outputTokens * r.outputPerMTokUsd) /
    PER_MTOK
  );
}

/** Configured rates of one model (self-hosted, or an override of the public table). */
export interface ConfiguredModelRates {
  readonly inputPerMTokUsd: number;
  readonly cachedInputPerMTokUsd?: number;
  readonly outputPerMTokUsd: number;
}

export interface PriceTableConfig {
  /** Keyed by `"provider/model"` (exact provider) or `"model"` (any provider). */
  readonly models?: Readonly<Record<string, ConfiguredModelRates>>;
  /** Per-call tool prices in dollars (M2). */
  readonly toolPrices?: Readonly<Record<string, number>>;
}

function checkRate(path: string, v: number | undefined): void {
  if (v !== undefined && !(Number.isFinite(v) && v >= 0))
    throw new ValidationError([{ path, message: `must be a finite rate ≥ 0, got ${v}` }]);
}

/** M2: configured rates for self-hosted models and per-call tool prices. */
export class ConfiguredPriceTable implements PriceTable {
  private readonly models: ReadonlyMap<string, ConfiguredModelRates>;
  private readonly tools: ReadonlyMap<string, number>;

  constructor(config: PriceTableConfig = {}) {
    for (const [key, r] of Object.entries(config.models ?? {})) {
      checkRate(`models.${key}.inputPerMTokUsd`, r.inputPerMTokUsd);
      checkRate(`models.${key}.cachedInputPerMTokUsd`, r.cachedInputPerMTokUsd);
      checkRate(`models.${key}.outputPerMTokUsd`, r.outputPerMTokUsd);
    }
    for (const [tool, usd] of Object.entries(config.toolPrices ?? {})) checkRate(`toolPrices.${tool}`, usd);
    this.models = new Map(Object.entries(config.models ?? {}));
    this.tools = new Map(Object.entries(config.toolPrices ?? {}));
  }

  rates(provider: string, model: string): ModelRates | undefined {
    // Nothing configured (the common case): no key string built per lookup.
    if (this.models.size === 0) return undefined;
    const r = this.models.get(`${provider}/${model}`) ?? this.models.get(model);
    if (r === undefined) return undefined;
    return {
      provider,
      model,
      inputPerMTokUsd: r.inputPerMTokUsd,
      // Without a configured cached rate, cached tokens cost as much as uncached ones.
      cachedInputPerMTokUsd: r.cachedInputPerMTokUsd ?? r.inputPerMTokUsd,
      outputPerMTokUsd: r.outputPerMTokUsd,
      source: 'configured',
    };
  }

  toolCallUsd(tool: string): number {
    return this.tools.get(tool) ?? 0;
  }

  hasTool(tool: string): boolean {
    return this.tools.has(tool);
  }
}

/** Asks each table in turn: the first that knows the model (or prices the tool) wins. */
export class LayeredPriceTable implements PriceTable {
  constructor(private readonly layers: readonly PriceTable[]) {}

  rates(provider: string, model: string): ModelRates | undefined {
    for (const t of this.layers) {
      const r = t.rates(provider, model);
      if (r !== undefined) return r;
    }
    return undefined;
  }

  toolCallUsd(tool: string): number {
    for (const t of this.layers) {
      const usd = t.toolCallUsd(tool);
      if (usd > 0) return usd;
    }
    return 0;
  }
}

/** The price table services use: configured rates first, then `@pydantic/genai-prices`. */
export function createPriceTable(config: PriceTableConfig = {}): LayeredPriceTable {
  return new LayeredPriceTable([new ConfiguredPriceTable(config), new GenaiPriceTable()]);
}

/** Cost of a tool call (M2): its configured per-call price. */
export function toolCostUsd(table: PriceTable, tool: string): number {
  return table.toolCallUsd(tool);
}

/**
 * M2: a frozen price table for reproducible benchmarks and replays:
 * `packages/shared/data/llm_prices_snapshot_2026-11-28.json` (extracted from
 * `@pydantic/genai-prices@0.1.8`'s bundled data, MIT). Live services use `createPriceTable`.
 * The file is read relative to the package root, so it works from both `src/` and `dist/`.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { ModelRates, PriceTable } from './types.js';

type Tier = { readonly start: number; readonly price: number };

export interface PriceSnapshotModel {
  readonly provider: string;
  readonly model: string;
  readonly matched_id?: string;
  readonly input_mtok: number | null;
  readonly cached_input_mtok: number | null;
  readonly cache_write_5m_mtok?: number | null;
  readonly output_mtok: number | null;
  readonly long_context_tiers?: {
    readonly input?: readonly Tier[];
    readonly cache_read?: readonly Tier[];
    readonly output?: readonly Tier[];
  };
  readonly conditional_prices?: ReadonlyArray<{
    readonly constraint: unknown;
    readonly input_mtok?: number;
    readonly cache_read_mtok?: number;
    readonly output_mtok?: number;
  }>;
}

export interface PriceSnapshot {
  readonly source: string;
  readonly models: readonly PriceSnapshotModel[];
}

export const DEFAULT_PRICE_SNAPSHOT_PATH = fileURLToPath(
  new URL('../../data/llm_prices_snapshot_2026-11-28.json', import.meta.url),
);

/** ModelRates of one snapshot row (undefined when it has no usable input price). */
export function ratesFromSnapshotRow(row: PriceSnapshotModel): ModelRates | undefined {
  // Rows with only conditional prices (e.g. time-of-day pricing) use the unconstrained one.
  const cond = row.conditional_prices?.find((c) => c.constraint === null || c.constraint === undefined);
  const input = row.input_mtok ?? cond?.input_mtok;
  if (input === undefined || input === null) return undefined;
  const cached = row.cached_input_mtok ?? cond?.cache_read_mtok ?? input;
  const output = row.output_mtok ?? cond?.output_mtok ?? 0;
  const write = row.cache_write_5m_mtok ?? undefined;
  const rates: ModelRates = {
    provider: row.provider,
    model: row.model,
    inputPerMTokUsd: input,
    cachedInputPerMTokUsd: cached,
    ...(write !== undefined ? { cacheWritePerMTokUsd: write } : {}),
    outputPerMTokUsd: output,
    source: 'snapshot',
  };
  const lc = row.long_context_tiers;
  const inTier = lc?.input?.[0];
  if (lc === undefined || inTier === undefined) return rates;
  return {
    ...rates,
    longContext: {
      thresholdTokens: inTier.start,
      inputPerMTokUsd: inTier.price,
      cachedInputPerMTokUsd: lc.cache_read?.[0]?.price ?? inTier.price,
      outputPerMTokUsd: lc.output?.[0]?.price ?? output,
    },
  };
}

/** M2: rates from a frozen snapshot; provider-exact match first, then the model name alone. */
export class SnapshotPriceTable implements PriceTable {
  private readonly byKey = new Map<string, ModelRates>();
  private readonly byModel = new Map<string, ModelRates>();

  constructor(
    readonly snapshot: PriceSnapshot,
    private readonly toolPrices: Readonly<Record<string, number>> = {},
  ) {
    for (const row of snapshot.models) {
      const r = ratesFromSnapshotRow(row);
      if (r === undefined) continue;
      this.byKey.set(`${row.provider}/${row.model}`, r);
      if (!this.byModel.has(row.model)) this.byModel.set(row.model, r);
      if (row.matched_id !== undefined && !this.byModel.has(row.matched_id)) this.byModel.set(row.matched_id, r);
    }
  }

  rates(provider: string, model: string): ModelRates | undefined {
    const r = this.byKey.get(`${provider}/${model}`) ?? this.byModel.get(model);
    return r === undefined ? undefined : { ...r, provider, model };
  }

  toolCallUsd(tool: string): number {
    return this.toolPrices[tool] ?? 0;
  }

  /** The models in the snapshot, as `provider/model`. */
  models(): string[] {
    return [...this.byKey.keys()];
  }
}

/** Reads the frozen snapshot (default: the one shipped in packages/shared/data). */
export function loadSnapshotPriceTable(
  path: string = DEFAULT_PRICE_SNAPSHOT_PATH,
  toolPrices: Readonly<Record<string, number>> = {},
): SnapshotPriceTable {
  return new SnapshotPriceTable(JSON.parse(readFileSync(path, 'utf8')) as PriceSnapshot, toolPrices);
}

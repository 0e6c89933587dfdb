import { describe, expect, it } from 'vitest';
import { ValidationError } from '../errors.js';
import { GenaiPriceTable } from './genai-prices.js';
import { ConfiguredPriceTable, LayeredPriceTable, createPriceTable, llmCostUsd } from './pricing.js';
import { loadSnapshotPriceTable } from './snapshot-prices.js';
import type { ModelRates, PriceTable } from './types.js';

const genai = new GenaiPriceTable();
const snapshot = loadSnapshotPriceTable();

function rates(provider: string, model: string, table: PriceTable = genai): ModelRates {
  const r = table.rates(provider, model);
  if (r === undefined) throw new Error(`no rates for ${provider}/${model}`);
  return r;
}

describe('M2 price table: @pydantic/genai-prices', () => {
  it('has gpt-5 at 1.25 / 0.125 cached / 10 per MTok', () => {
    const r = rates('openai', 'gpt-5');
    expect([r.inputPerMTokUsd, r.cachedInputPerMTokUsd, r.outputPerMTokUsd]).toEqual([1.25, 0.125, 10]);
    expect(r.longContext).toBeUndefined();
    expect(r.source).toBe('genai-prices');
  });

  it('has claude-sonnet-4-5 at 3 / 0.3 / 15 with a long-context tier above 200k', () => {
    const r = rates('anthropic', 'claude-sonnet-4-5');
    expect([r.inputPerMTokUsd, r.cachedInputPerMTokUsd, r.cacheWritePerMTokUsd, r.outputPerMTokUsd]).toEqual([3, 0.3, 3.75, 15]);
    expect(r.longContext).toEqual({
      thresholdTokens: 200_000,
      inputPerMTokUsd: 6,
      cachedInputPerMTokUsd: 0.6,
      cacheWritePerMTokUsd: 7.5,
      outputPerMTokUsd: 22.5,
    });
  });

  it('has gemini-2.5-flash at 0.3 / 0.03 / 2.5', () => {
    const r = rates('google', 'gemini-2.5-flash');
    expect([r.inputPerMTokUsd, r.cachedInputPerMTokUsd, r.outputPerMTokUsd]).toEqual([0.3, 0.03, 2.5]);
  });

  it('looks up models of non-price providers (simulated, local, aliases) without a provider id', () => {
    expect(rates('simulated', 'gpt-5').inputPerMTokUsd).toBe(1.25);
    expect(rates('local', 'claude-haiku-4-5').outputPerMTokUsd).toBe(5);
    expect(genai.rates('openai', 'no-such-model-xyz')).toBeUndefined();
    expect(genai.rates('simulated', 'no-such-model-xyz')).toBeUndefined();
    expect(genai.toolCallUsd('search')).toBe(0);
  });

  it('returns the cached answer on repeated lookups', () => {
    expect(genai.rates('openai', 'gpt-5')).toBe(genai.rates('openai', 'gpt-5'));
  });
});

describe('M2 C_spec formula', () => {
  it('prices uncached input, cached input and output at their own rates (gpt-5)', () => {
    // 10k × 1.25 + 90k × 0.125 + 500 × 10, per million = 0.0125 + 0.01125 + 0.005.
    const c = llmCostUsd(rates('openai', 'gpt-5'), { inputTokens: 10_000, cachedInputTokens: 90_000, outputTokens: 500 });
    expect(c).toBeCloseTo(0.02875, 12);
  });

  it('bills cache writes at the write rate, or the input rate when the model has none', () => {
    const sonnet = rates('anthropic', 'claude-sonnet-4-5');
    expect(llmCostUsd(sonnet, { inputTokens: 0, cachedInputTokens: 0, cacheWriteTokens: 1000, outputTokens: 0 })).toBeCloseTo(
      0.00375,
      12,
    );
    const gpt5 = rates('openai', 'gpt-5');
    expect(llmCostUsd(gpt5, { inputTokens: 0, cachedInputTokens: 0, cacheWriteTokens: 1000, outputTokens: 0 })).toBeCloseTo(
      0.00125,
      12,
    );
  });

  it('bills every token at the long-context rates once the prompt exceeds the threshold (claude-sonnet-4-5)', () => {
    const r = rates('anthropic', 'claude-sonnet-4-5');
    // At exactly 200k the base tier applies: 200k × 3 + 1k × 15.
    expect(llmCostUsd(r, { inputTokens: 200_000, cachedInputTokens: 0, outputTokens: 1000 })).toBeCloseTo(0.615, 12);
    // 250k of prompt: 250k × 6 + 1k × 22.5.
    expect(llmCostUsd(r, { inputTokens: 250_000, cachedInputTokens: 0, outputTokens: 1000 })).toBeCloseTo(1.5225, 12);
    // Cached tokens count toward the threshold: 150k × 6 + 100k × 0.6 + 1k × 22.5.
    expect(llmCostUsd(r, { inputTokens: 150_000, cachedInputTokens: 100_000, outputTokens: 1000 })).toBeCloseTo(
      0.9 + 0.06 + 0.0225,
      12,
    );
  });

  it('is the formula, term by term, on arbitrary rates', () => {
    const r: ModelRates = {
      provider: 'p',
      model: 'm',
      inputPerMTokUsd: 2,
      cachedInputPerMTokUsd: 0.5,
      cacheWritePerMTokUsd: 3,
      outputPerMTokUsd: 8,
      source: 'test',
    };
    const u = { inputTokens: 1_000_000, cachedInputTokens: 2_000_000, cacheWriteTokens: 3_000_000, outputTokens: 4_000_000 };
    expect(llmCostUsd(r, u)).toBeCloseTo(2 + 1 + 9 + 32, 9);
  });
});

describe('M2 configured and layered price tables', () => {
  it('serves configured self-hosted rates by provider/model or by model, and tool prices', () => {
    const t = new ConfiguredPriceTable({
      models: { 'local/llama-3-8b': { inputPerMTokUsd: 0.1, outputPerMTokUsd: 0.2 }, 'my-model': { inputPerMTokUsd: 1, cachedInputPerMTokUsd: 0.5, outputPerMTokUsd: 4 } },
      toolPrices: { search: 0.005 },
    });
    expect(t.rates('local', 'llama-3-8b')).toMatchObject({ inputPerMTokUsd: 0.1, cachedInputPerMTokUsd: 0.1, outputPerMTokUsd: 0.2, source: 'configured' });
    expect(t.rates('other', 'llama-3-8b')).toBeUndefined();
    expect(t.rates('anything', 'my-model')).toMatchObject({ cachedInputPerMTokUsd: 0.5 });
    expect(t.toolCallUsd('search')).toBe(0.005);
    expect(t.toolCallUsd('unknown')).toBe(0);
  });

  it('rejects negative configured rates with a ValidationError naming the field', () => {
    try {
      new ConfiguredPriceTable({ models: { m: { inputPerMTokUsd: -1, outputPerMTokUsd: 1 } } });
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(ValidationError);
      expect((err as ValidationError).issues[0]?.path).toBe('models.m.inputPerMTokUsd');
    }
  });

  it('createPriceTable: configured rates override genai-prices, which fill in the rest', () => {
    const t = createPriceTable({ models: { 'openai/gpt-5': { inputPerMTokUsd: 1, outputPerMTokUsd: 2 } }, toolPrices: { t: 0.01 } });
    expect(t).toBeInstanceOf(LayeredPriceTable);
    expect(t.rates('openai', 'gpt-5')?.source).toBe('configured');
    expect(t.rates('openai', 'gpt-5-mini')?.source).toBe('genai-prices');
    expect(t.rates('openai', 'gpt-5-mini')?.inputPerMTokUsd).toBe(0.25);
    expect(t.rates('local', 'not-a-model')).toBeUndefined();
    expect(t.toolCallUsd('t')).toBe(0.01);
  });
});

describe('M2 frozen snapshot (reproducible benchmarks)', () => {
  it('matches the live genai-prices table for the models both have', () => {
    for (const [p, m] of [
      ['openai', 'gpt-5'],
      ['anthropic', 'claude-sonnet-4-5'],
      ['google', 'gemini-2.5-flash'],
      ['google', 'gemini-2.5-pro'],
      ['openai', 'gpt-4o-mini'],
    ] as const) {
      const s = rates(p, m, snapshot);
      const g = rates(p, m);
      expect([s.inputPerMTokUsd, s.cachedInputPerMTokUsd, s.outputPerMTokUsd]).toEqual([g.inputPerMTokUsd, g.cachedInputPerMTokUsd, g.outputPerMTokUsd]);
      expect(s.longContext?.thresholdTokens).toBe(g.longContext?.thresholdTokens);
      expect(s.source).toBe('snapshot');
    }
    expect(snapshot.models().length).toBeGreaterThanOrEqual(25);
  });

  it('uses the unconstrained conditional price when a row has no flat price', () => {
    expect(rates('deepseek', 'deepseek-v4-flash', snapshot)).toMatchObject({ inputPerMTokUsd: 0.14, outputPerMTokUsd: 0.28 });
  });
});

/**
 * Token-size distributions sampled from real traces: percentiles of the Azure LLM inference
 * trace 2023 (code, conversation; CC-BY-4.0, Patel et al., Splitwise, ISCA 2024) and the
 * Mooncake FAST'25 conversation trace (Apache-2.0, Qin et al., FAST 2025), derived into
 * data/token_sizes/token-quantiles.json (see its README). Sampling is inverse-CDF with linear
 * interpolation between percentiles.
 */
import { readFileSync } from 'node:fs';
import type { Rng } from '../stats.js';

export const TOKEN_SOURCES = ['azure_code', 'azure_conv', 'mooncake_conv'] as const;
export type TokenSource = (typeof TOKEN_SOURCES)[number];

interface Quantiles {
  readonly n: number;
  readonly input: readonly number[];
  readonly output: readonly number[];
  readonly repeatedBlockShare?: number;
}

type QuantileFile = Record<TokenSource, Quantiles>;

let cache: QuantileFile | undefined;

export function tokenQuantiles(): QuantileFile {
  cache ??= JSON.parse(readFileSync(new URL('../../data/token_sizes/token-quantiles.json', import.meta.url), 'utf8')) as QuantileFile;
  return cache;
}

/** A token count drawn from a source's input or output distribution, scaled and clamped. */
export type TokenDist =
  | { readonly from: TokenSource; readonly side: 'input' | 'output'; readonly scale?: number; readonly min?: number; readonly max?: number }
  | { readonly fixed: number }
  | { readonly uniform: readonly [number, number] };

export function sampleTokens(rng: Rng, d: TokenDist): number {
  if ('fixed' in d) return d.fixed;
  if ('uniform' in d) return Math.round(d.uniform[0] + rng() * (d.uniform[1] - d.uniform[0]));
  const q = tokenQuantiles()[d.from][d.side];
  const pos = rng() * (q.length - 1);
  const lo = Math.floor(pos);
  const hi = Math.min(q.length - 1, lo + 1);
  const v = (q[lo]! + (q[hi]! - q[lo]!) * (pos - lo)) * (d.scale ?? 1);
  return Math.round(Math.min(d.max ?? Number.POSITIVE_INFINITY, Math.max(d.min ?? 1, v)));
}

/** Median of a distribution (for the live workflow's expectedOutputTokens). */
export function medianTokens(d: TokenDist): number {
  if ('fixed' in d) return d.fixed;
  if ('uniform' in d) return Math.round((d.uniform[0] + d.uniform[1]) / 2);
  const v = tokenQuantiles()[d.from][d.side][50]! * (d.scale ?? 1);
  return Math.round(Math.min(d.max ?? Number.POSITIVE_INFINITY, Math.max(d.min ?? 1, v)));
}

/**
 * Small seeded statistics for replay and the generators: seeds, a log-normal sampler, mean and
 * quantiles, driven by the core's seeded PRNG so every generator is reproducible from its seed.
 */

import { mulberry32 } from '@gambit/shared';

export type Rng = () => number;

/** The core's seeded PRNG (mulberry32), re-exported for generators and benchmarks. */
export { mulberry32 };

/** A 32-bit seed from a string (FNV-1a), to derive per-archetype or per-run seeds. */
export function seedFrom(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

export function mean(xs: readonly number[]): number {
  if (xs.length === 0) return Number.NaN;
  let s = 0;
  for (const x of xs) s += x;
  return s / xs.length;
}

/** Quantile q ∈ [0, 1] with linear interpolation between order statistics. */
export function quantile(xs: readonly number[], q: number): number {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  const pos = (s.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return s[lo]! + (s[hi]! - s[lo]!) * (pos - lo);
}

/** Log-normal with the given median and spread (σ of the log). */
export function logNormal(rng: Rng, median: number, sigma: number): number {
  const u1 = Math.max(rng(), 1e-12);
  const u2 = rng();
  const z = Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
  return median * Math.exp(sigma * z);
}

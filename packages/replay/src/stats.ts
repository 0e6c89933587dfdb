/**
 * Small seeded statistics for replay and the benchmarks: a PRNG (mulberry32, so every generator
 * and bootstrap is reproducible from its seed), samplers, quantiles and a percentile bootstrap.
 */

export type Rng = () => number;

/** mulberry32: a fast 32-bit PRNG; the same seed gives the same sequence on every machine. */
export function mulberry32(seed: number): Rng {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

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

/** Draws an index with probability proportional to `weights`. */
export function pickWeighted(rng: Rng, weights: readonly number[]): number {
  const total = weights.reduce((s, w) => s + w, 0);
  let r = rng() * total;
  for (let i = 0; i < weights.length; i++) {
    r -= weights[i]!;
    if (r < 0) return i;
  }
  return weights.length - 1;
}

/** Log-normal with the given median and spread (σ of the log). */
export function logNormal(rng: Rng, median: number, sigma: number): number {
  const u1 = Math.max(rng(), 1e-12);
  const u2 = rng();
  const z = Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
  return median * Math.exp(sigma * z);
}

export interface Interval {
  readonly lo: number;
  readonly hi: number;
}

/**
 * Percentile bootstrap 95% interval of `stat` over paired per-run samples: each resample draws
 * run indices with replacement (the same indices for every column, so ratios stay paired).
 */
export function bootstrapInterval(
  n: number,
  stat: (indices: readonly number[]) => number,
  opts: { seed: number; resamples?: number; level?: number },
): Interval {
  const rng = mulberry32(opts.seed);
  const b = opts.resamples ?? 1000;
  const level = opts.level ?? 0.95;
  const values: number[] = [];
  const idx = new Array<number>(n);
  for (let r = 0; r < b; r++) {
    for (let i = 0; i < n; i++) idx[i] = Math.floor(rng() * n);
    const v = stat(idx);
    if (Number.isFinite(v)) values.push(v);
  }
  return { lo: quantile(values, (1 - level) / 2), hi: quantile(values, 1 - (1 - level) / 2) };
}

/**
 * Learned distributions of an operation class's duration, time to first token and output
 * tokens (METHOD.md M4 "Estimates"): a log-spaced histogram, enough for the mean and quantiles.
 * This module is the histogram as data (what the estimator keeps in Redis, what replay learns);
 * as a duration distribution for decisions (mean, quantile, conditional remaining time
 * E[T − t | T > t]) it implements the one `DurationDistribution` interface of duration.ts, via
 * `histogramDuration`, like the parametric prior families.
 *
 * Bin 0 holds [0, 1); bin i ≥ 1 holds [R^(i−1), R^i) with R = 2^(1/4) (about 19% wide, so a
 * quantile is within ~10% of the truth); the last bin is open above. Values are in the metric's
 * own unit (ms or tokens). The exact sum is kept beside the counts, so the mean is exact. Counts
 * may be fractional (after `decay`). The form matches the Redis hash the estimator keeps
 * (`opClassKeys().dist`): one field per non-empty bin, plus `n` and `sum`, per metric.
 *
 * Pure: no store, no clock. The functions take and return plain immutable data.
 */
import { ValidationError } from '../errors.js';

/** Bins per doubling: 4 → ratio 2^(1/4) ≈ 1.189 between bin edges. */
export const BINS_PER_DOUBLING = 4;
const LOG_R = Math.LN2 / BINS_PER_DOUBLING;
/** Highest bin index: its lower edge is R^(MAX_BIN−1) ≈ 2^40 ≈ 1.1e12 (ms: 35 years; tokens: plenty). */
export const MAX_BIN = 40 * BINS_PER_DOUBLING + 1;

export interface LogHistogram {
  /** Observations (weighted; fractional after decay). */
  readonly n: number;
  /** Sum of the observed values (same weights). */
  readonly sum: number;
  /** Bin index → weight; only non-empty bins are present. */
  readonly bins: Readonly<Record<number, number>>;
}

export const EMPTY_HISTOGRAM: LogHistogram = Object.freeze({ n: 0, sum: 0, bins: Object.freeze({}) });

/** Index of the bin that holds `value` (≥ 0, finite). */
export function binOf(value: number): number {
  if (!(value >= 0) || !Number.isFinite(value)) {
    throw new ValidationError([{ path: 'value', message: `must be a finite number ≥ 0, got ${value}` }]);
  }
  if (value < 1) return 0;
  // floor(log_R(value)) + 1, guarded against rounding at exact edges.
  let i = Math.floor(Math.log(value) / LOG_R) + 1;
  if (value < binLow(i)) i -= 1;
  else if (value >= binHigh(i)) i += 1;
  return Math.min(i, MAX_BIN);
}

/** Lower edge of bin i. */
export function binLow(i: number): number {
  return i <= 0 ? 0 : Math.exp((i - 1) * LOG_R);
}

/** Upper edge of bin i (the last bin is open; its nominal upper edge is used for interpolation). */
export function binHigh(i: number): number {
  return Math.exp(i * LOG_R);
}

/** The histogram with `value` added `weight` times. */
export function observe(h: LogHistogram, value: number, weight = 1): LogHistogram {
  const i = binOf(value);
  if (!(weight > 0) || !Number.isFinite(weight)) {
    throw new ValidationError([{ path: 'weight', message: `must be a finite number > 0, got ${weight}` }]);
  }
  return { n: h.n + weight, sum: h.sum + weight * value, bins: { ...h.bins, [i]: (h.bins[i] ?? 0) + weight } };
}

/** A histogram of many values at once (e.g. a replay's fit of a class). */
export function histogramOf(values: Iterable<number>): LogHistogram {
  const bins: Record<number, number> = {};
  let n = 0;
  let sum = 0;
  for (const v of values) {
    const i = binOf(v);
    bins[i] = (bins[i] ?? 0) + 1;
    n += 1;
    sum += v;
  }
  return { n, sum, bins };
}

/** The two histograms' observations together. */
export function merge(a: LogHistogram, b: LogHistogram): LogHistogram {
  const bins: Record<number, number> = { ...a.bins };
  for (const [k, w] of Object.entries(b.bins)) bins[Number(k)] = (bins[Number(k)] ?? 0) + w;
  return { n: a.n + b.n, sum: a.sum + b.sum, bins };
}

/** Every weight multiplied by `factor` ∈ (0, 1]: older observations count less. */
export function decay(h: LogHistogram, factor: number): LogHistogram {
  if (!(factor > 0 && factor <= 1)) {
    throw new ValidationError([{ path: 'factor', message: `must be in (0, 1], got ${factor}` }]);
  }
  const bins: Record<number, number> = {};
  for (const [k, w] of Object.entries(h.bins)) bins[Number(k)] = w * factor;
  return { n: h.n * factor, sum: h.sum * factor, bins };
}

/** Non-empty bins in increasing order, as [index, weight] pairs. */
export type SortedBins = readonly (readonly [number, number])[];

/** The non-empty bins of `h` in increasing order (compute once, then `quantileOfSorted` / `survivalOfSorted`). */
export function sortedBins(h: LogHistogram): [number, number][] {
  return Object.entries(h.bins)
    .map(([k, w]) => [Number(k), w] as [number, number])
    .filter(([, w]) => w > 0)
    .sort((x, y) => x[0] - y[0]);
}

function requireData(h: LogHistogram, what: string): void {
  if (!(h.n > 0)) throw new ValidationError([{ path: 'histogram', message: `${what} of an empty distribution` }]);
}

/** Exact mean of the observed values. */
export function mean(h: LogHistogram): number {
  requireData(h, 'mean');
  return h.sum / h.n;
}

/**
 * The q-quantile (q ∈ [0, 1]), interpolated within its bin on a log scale (bin 0 linearly).
 * With q drawn uniformly this is a draw from the distribution (inverse CDF), which is how ΔT's
 * expectation samples durations deterministically.
 */
export function quantile(h: LogHistogram, q: number): number {
  requireData(h, 'quantile');
  return quantileOfSorted(h.n, sortedBins(h), q);
}

/** `quantile` over bins already sorted (`sortedBins`) of a histogram of weight n > 0. */
export function quantileOfSorted(n: number, bins: SortedBins, q: number): number {
  if (!(q >= 0 && q <= 1)) throw new ValidationError([{ path: 'q', message: `must be in [0, 1], got ${q}` }]);
  const target = q * n;
  let acc = 0;
  for (const [i, w] of bins) {
    if (acc + w >= target) {
      const f = w > 0 ? Math.min(1, Math.max(0, (target - acc) / w)) : 0;
      if (i === 0) return f;
      return Math.exp((i - 1 + f) * LOG_R);
    }
    acc += w;
  }
  const last = bins[bins.length - 1]!;
  return binHigh(last[0]);
}

/**
 * Mass above t, with values inside a bin taken as spread uniformly (linear scale) between its
 * edges: the part of t's own bin above t counts with its share of the weight.
 */
function massAbove(bins: SortedBins, t: number): number {
  let mass = 0;
  for (const [i, w] of bins) {
    const lo = binLow(i);
    const hi = i === 0 ? 1 : binHigh(i);
    if (hi <= t) continue;
    mass += lo >= t ? w : w * ((hi - t) / (hi - lo));
  }
  return mass;
}

/** P(T > t), from the bins (uniform within a bin). */
export function survival(h: LogHistogram, t: number): number {
  requireData(h, 'survival');
  return survivalOfSorted(h.n, sortedBins(h), t);
}

/** `survival` over bins already sorted (`sortedBins`) of a histogram of weight n > 0. */
export function survivalOfSorted(n: number, bins: SortedBins, t: number): number {
  if (t <= 0) return 1;
  return massAbove(bins, t) / n;
}

/**
 * M4 duration distributions: the one interface for a duration, whether it comes from a prior
 * (a parametric family around a static estimate) or is learned (an operation class's histogram):
 * what the timing analysis (timing.ts) samples a node's duration from, and the conditional
 * remaining time E[T − t | T > t] of a node that is already running (replay's C_fail, the
 * scheduler's remaining upstream time).
 *
 * A distribution gives its mean, its CDF, its quantile function and its conditional remaining
 * time; `durationDistribution` derives the last from the quantiles, for every family alike:
 * - `lognormalDuration(meanMs, cv)`: the default for an estimate known only by its mean (LLM
 *   latencies and tool calls are right-skewed); `cv` is the coefficient of variation.
 * - `fixedDuration(ms)`: a point mass (tests, declared fixed durations).
 * - `empiricalDuration(samples)`: observed durations, one by one.
 * - `histogramDuration(h)`: an operation class's learned log-histogram (distribution.ts keeps the
 *   histogram as data: what the estimator stores and replay learns).
 *
 * Remaining time of a node that has run `elapsedMs` is T − t given T > t (M4: "never 0"). Its
 * quantile q is F⁻¹(F(t) + q·(1 − F(t))) − t. Past the support (a point mass or the largest
 * observed sample outrun), nothing is known about the rest: the remainder is then taken as
 * exponential with mean max(1 ms, mean/2), which is stated here so that it is one documented
 * choice and never a silent zero.
 */
import { ValidationError } from '../errors.js';
import { type LogHistogram, mean as histogramMean, quantileOfSorted, sortedBins, survivalOfSorted } from './distribution.js';

export interface DurationDistribution {
  readonly meanMs: number;
  /** P(T ≤ ms). */
  cdf(ms: number): number;
  /** The q-quantile of T, q ∈ (0, 1). */
  quantileMs(q: number): number;
  /** E[T − t | T > t] for an operation that has run `elapsedMs` (the mean at 0; never 0 after). */
  expectedRemainingMs(elapsedMs: number): number;
  /**
   * Set for a lognormal: ln T ~ N(mu, sigma²), and then quantileMs(q) is exactly
   * exp(mu + sigma·Φ⁻¹(q)) (lets callers sample without the generic quantile closure).
   */
  readonly lognormal?: { readonly mu: number; readonly sigma: number };
}

/** The parts a family defines; the conditional remaining time follows from them. */
export interface DurationParts {
  readonly meanMs: number;
  cdf(ms: number): number;
  quantileMs(q: number): number;
  readonly lognormal?: { readonly mu: number; readonly sigma: number };
}

/** A duration distribution from its mean, CDF and quantile function (M4). */
export function durationDistribution(parts: DurationParts): DurationDistribution {
  const d: DurationDistribution = {
    meanMs: parts.meanMs,
    cdf: parts.cdf,
    quantileMs: parts.quantileMs,
    expectedRemainingMs: (elapsedMs) => expectedRemainingMs(d, elapsedMs),
    ...(parts.lognormal === undefined ? {} : { lognormal: parts.lognormal }),
  };
  return d;
}

// Acklam's rational approximation of the standard normal quantile (relative error < 1.2e-9).
// The coefficients are written out (not read from arrays): this runs K times per running node
// and state in the timing analysis (issue 9), and literals keep it free of loads and checks.
// a1..a6, b1..b5 (central region); c1..c6, d1..d4 (tails).

/** Standard normal quantile Φ⁻¹(q). */
export function normalQuantile(q: number): number {
  if (q <= 0) return Number.NEGATIVE_INFINITY;
  if (q >= 1) return Number.POSITIVE_INFINITY;
  if (q < 0.02425) {
    const r = Math.sqrt(-2 * Math.log(q));
    return (
      (((((-7.784894002430293e-3 * r + -3.223964580411365e-1) * r + -2.400758277161838) * r + -2.549732539343734) * r + 4.374664141464968) * r + 2.938163982698783) /
      ((((7.784695709041462e-3 * r + 3.224671290700398e-1) * r + 2.445134137142996) * r + 3.754408661907416) * r + 1)
    );
  }
  if (q > 1 - 0.02425) {
    const r = Math.sqrt(-2 * Math.log(1 - q));
    return -(
      (((((-7.784894002430293e-3 * r + -3.223964580411365e-1) * r + -2.400758277161838) * r + -2.549732539343734) * r + 4.374664141464968) * r + 2.938163982698783) /
      ((((7.784695709041462e-3 * r + 3.224671290700398e-1) * r + 2.445134137142996) * r + 3.754408661907416) * r + 1)
    );
  }
  const x = q - 0.5;
  const r = x * x;
  return (
    ((((((-3.969683028665376e1 * r + 2.209460984245205e2) * r + -2.759285104469687e2) * r + 1.38357751867269e2) * r + -3.066479806614716e1) * r + 2.506628277459239) * x) /
    (((((-5.447609879822406e1 * r + 1.615858368580409e2) * r + -1.556989798598866e2) * r + 6.680131188771972e1) * r + -1.328068155288572e1) * r + 1)
  );
}

/** Standard normal CDF Φ(z), from Abramowitz & Stegun 7.1.26 (absolute error < 1.5e-7). */
export function normalCdf(z: number): number {
  const x = Math.abs(z) / Math.SQRT2;
  const t = 1 / (1 + 0.3275911 * x);
  const erfc = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429)))) * Math.exp(-x * x);
  return z >= 0 ? 1 - erfc / 2 : erfc / 2;
}

function checkMs(field: string, v: number, allowZero: boolean): void {
  if (!(Number.isFinite(v) && (allowZero ? v >= 0 : v > 0))) throw new ValidationError([{ path: field, message: `must be a finite number ${allowZero ? '≥' : '>'} 0, got ${v}` }]);
}

/**
 * Spread (coefficient of variation) of a duration known only by its expected value, used with
 * `lognormalDuration` until a learned operation-class distribution replaces it (M4).
 */
export const DEFAULT_DURATION_CV = 0.3;

/** A point mass at `ms`. */
export function fixedDuration(ms: number): DurationDistribution {
  checkMs('durationMs', ms, true);
  return durationDistribution({ meanMs: ms, cdf: (t) => (t >= ms ? 1 : 0), quantileMs: () => ms });
}

/** Lognormal with mean `meanMs` and coefficient of variation `cv` (cv = 0 gives a point mass). */
export function lognormalDuration(meanMs: number, cv: number): DurationDistribution {
  checkMs('meanMs', meanMs, true);
  checkMs('cv', cv, true);
  if (cv === 0 || meanMs === 0) return fixedDuration(meanMs);
  const s2 = Math.log(1 + cv * cv);
  const sigma = Math.sqrt(s2);
  const mu = Math.log(meanMs) - s2 / 2;
  return durationDistribution({
    meanMs,
    lognormal: { mu, sigma },
    cdf: (t) => (t <= 0 ? 0 : normalCdf((Math.log(t) - mu) / sigma)),
    quantileMs: (q) => Math.exp(mu + sigma * normalQuantile(q)),
  });
}

/** The empirical distribution of observed durations (at least one). */
export function empiricalDuration(samplesMs: readonly number[]): DurationDistribution {
  if (samplesMs.length === 0) throw new ValidationError([{ path: 'samplesMs', message: 'needs at least one observed duration' }]);
  samplesMs.forEach((v, i) => {
    checkMs(`samplesMs[${i}]`, v, true);
  });
  const sorted = Float64Array.from(samplesMs).sort();
  const n = sorted.length;
  let sum = 0;
  for (const v of sorted) sum += v;
  return durationDistribution({
    meanMs: sum / n,
    cdf: (t) => {
      // Count of samples ≤ t (binary search).
      let lo = 0;
      let hi = n;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if (sorted[mid]! <= t) lo = mid + 1;
        else hi = mid;
      }
      return lo / n;
    },
    quantileMs: (q) => sorted[Math.min(n - 1, Math.max(0, Math.floor(q * n)))]!,
  });
}

/**
 * A learned operation-class histogram (distribution.ts) as a duration distribution: its exact
 * mean, its CDF (uniform within a bin) and its inverse CDF (log-interpolated within a bin), so
 * ΔT samples an operation class's real durations. Its bins are sorted once here.
 */
export function histogramDuration(h: LogHistogram): DurationDistribution {
  const meanMs = histogramMean(h);
  const bins = sortedBins(h);
  const n = h.n;
  return durationDistribution({ meanMs, cdf: (t) => 1 - survivalOfSorted(n, bins, t), quantileMs: (q) => quantileOfSorted(n, bins, q) });
}

/** Below this tail mass the support is taken as outrun (see the module header). */
export const OUTRUN_TAIL = 1e-9;

/** M4: the q-quantile of the remaining time T − t given T > t, for a node that has run `elapsedMs`. */
export function remainingQuantileMs(dist: DurationDistribution, elapsedMs: number, q: number): number {
  if (!(elapsedMs > 0)) return dist.quantileMs(q);
  return remainingQuantileGivenCdfMs(dist, elapsedMs, dist.cdf(elapsedMs), q);
}

/** `remainingQuantileMs` with F(elapsedMs) already known (`f`), for many levels of one node; elapsedMs > 0. */
export function remainingQuantileGivenCdfMs(dist: DurationDistribution, elapsedMs: number, f: number, q: number): number {
  const tail = 1 - f;
  if (tail > OUTRUN_TAIL) {
    const r = dist.quantileMs(f + q * tail) - elapsedMs;
    if (r > 0) return r;
  }
  return -Math.log(1 - q) * Math.max(1, dist.meanMs / 2);
}

/** dist.cdf(ms), a lognormal's without the closure call (the same expression as lognormalDuration's). */
export function cdfAt(dist: DurationDistribution, ms: number): number {
  const ln = dist.lognormal;
  if (ln === undefined) return dist.cdf(ms);
  return ms <= 0 ? 0 : normalCdf((Math.log(ms) - ln.mu) / ln.sigma);
}

// expDraw: e^y as 2^(i/64) · e^r with i = round(64·y/ln 2), |r| ≤ ln 2/128, e^r by its Taylor
// polynomial of degree 5 (truncation < 4e-17 relative). ln 2/64 is split as in fdlibm's exp (a
// high part with 32 significant bits, so that i times it is exact for |i| < 2^20, and the rest
// of ln 2 to double precision), so r is exact to the last bits. 2^(j/64) and 2^n from tables.
const EXP_FRAC = Float64Array.from({ length: 64 }, (_, j) => 2 ** (j / 64));
const EXP_POW2_MAX = 64;
const EXP_POW2 = Float64Array.from({ length: 2 * EXP_POW2_MAX + 1 }, (_, n) => 2 ** (n - EXP_POW2_MAX));
const EXP_INV_STEP = 64 / Math.LN2;
/** 1.5·2^52: adding and subtracting it rounds a double of magnitude < 2^51 to an integer (to even). */
const ROUND_SHIFT = 6755399441055744;
const EXP_STEP_HI = 0.6931471803691238 / 64;
const EXP_STEP_LO = 1.9082149292705877e-10 / 64;
/** Largest |y| for the tables (2^64 ≈ e^44: durations from 1e-19 to 1e19 ms); beyond, Math.exp. */
const EXP_TABLE_Y = 44;

/**
 * e^y within 4 ulp of Math.exp (duration.test.ts checks it; relative difference < 1e-15, a
 * femtosecond on a 1 s duration): the running nodes' draws (issue 9). Math.exp is a call out of
 * the compiled loop, half of a level's cost; this is arithmetic and two table reads inline.
 */
export function expDraw(y: number): number {
  if (!(y > -EXP_TABLE_Y && y < EXP_TABLE_Y)) return Math.exp(y);
  const kf = y * EXP_INV_STEP + ROUND_SHIFT - ROUND_SHIFT;
  const r = y - kf * EXP_STEP_HI - kf * EXP_STEP_LO;
  const i = kf + 64 * EXP_POW2_MAX;
  return EXP_FRAC[i & 63]! * EXP_POW2[i >> 6]! * (1 + r * (1 + r * (0.5 + r * (1 / 6 + r * (1 / 24 + r * (1 / 120))))));
}

/**
 * `remainingQuantileMs` at the levels levels[offset + k], k < K, written to out[offset + k], for
 * elapsedMs > 0: the timing analysis's draws of a running node (issue 9: F(t) once per node, a
 * lognormal without the generic quantile closure; the numbers are the same but for e^y, see
 * expDraw).
 */
export function remainingQuantilesInto(dist: DurationDistribution, elapsedMs: number, levels: Float64Array, offset: number, K: number, out: Float64Array): void {
  const f = cdfAt(dist, elapsedMs);
  const ln = dist.lognormal;
  const tail = 1 - f;
  if (ln === undefined || !(tail > OUTRUN_TAIL)) {
    for (let k = offset; k < offset + K; k++) out[k] = remainingQuantileGivenCdfMs(dist, elapsedMs, f, levels[k]!);
    return;
  }
  one.row[0] = offset;
  one.f[0] = f;
  one.mu[0] = ln.mu;
  one.sigma[0] = ln.sigma;
  one.elapsed[0] = elapsedMs;
  one.halfMean[0] = Math.max(1, dist.meanMs / 2);
  lognormalRemainingRows(one, 1, levels, K, out);
}

/**
 * Lognormal running nodes for `lognormalRemainingRows`: job j is the row at row[j] (levels and
 * out at row[j] + k, k < K) of a lognormal (mu[j], sigma[j]) that has run elapsed[j] ms, with
 * f[j] = F(elapsed[j]) (1 − f[j] > OUTRUN_TAIL) and halfMean[j] = max(1, mean/2) (the remainder
 * past the support, see the module header). Grown by `remainingJobs`.
 */
export interface RemainingJobs {
  row: Int32Array;
  f: Float64Array;
  mu: Float64Array;
  sigma: Float64Array;
  elapsed: Float64Array;
  halfMean: Float64Array;
}

/** Job arrays for at least `n` jobs (`jobs` itself when large enough). */
export function remainingJobs(n: number, jobs?: RemainingJobs): RemainingJobs {
  if (jobs !== undefined && jobs.row.length >= n) return jobs;
  return { row: new Int32Array(n), f: new Float64Array(n), mu: new Float64Array(n), sigma: new Float64Array(n), elapsed: new Float64Array(n), halfMean: new Float64Array(n) };
}

const one = remainingJobs(1);

/**
 * remainingQuantilesInto's lognormal case for `count` running nodes at once (issue 9: the
 * timing analysis draws every running node of a state in one call, so the levels of all of them
 * run through one loop of Φ⁻¹ and one of exponentials, with no call per node or level). Returns
 * the index in `out` of the first draw that is not finite and ≥ 0, or −1.
 */
export function lognormalRemainingRows(jobs: RemainingJobs, count: number, levels: Float64Array, K: number, out: Float64Array): number {
  const { row, f: fs, mu: mus, sigma: sigmas, elapsed, halfMean } = jobs;
  // The log-scale draws mu + sigma·Φ⁻¹(F(t) + level·(1 − F(t))), into `out` (replaced below):
  // normalQuantile written out (the same expressions); a call per level would box its argument
  // and result.
  for (let j = 0; j < count; j++) {
    const o = row[j]!;
    const f = fs[j]!;
    const tail = 1 - f;
    const mu = mus[j]!;
    const sigma = sigmas[j]!;
    for (let k = o; k < o + K; k++) {
      const u = f + levels[k]! * tail;
      if (u >= 0.02425 && u <= 1 - 0.02425) {
        const x = u - 0.5;
        const r2 = x * x;
        out[k] =
          mu +
          sigma *
            (((((((-3.969683028665376e1 * r2 + 2.209460984245205e2) * r2 + -2.759285104469687e2) * r2 + 1.38357751867269e2) * r2 + -3.066479806614716e1) * r2 + 2.506628277459239) * x) /
              (((((-5.447609879822406e1 * r2 + 1.615858368580409e2) * r2 + -1.556989798598866e2) * r2 + 6.680131188771972e1) * r2 + -1.328068155288572e1) * r2 + 1));
      } else {
        let z: number;
        if (u <= 0) z = Number.NEGATIVE_INFINITY;
        else if (u >= 1) z = Number.POSITIVE_INFINITY;
        else {
          const lower = u < 0.02425;
          const r = Math.sqrt(-2 * Math.log(lower ? u : 1 - u));
          const t =
            (((((-7.784894002430293e-3 * r + -3.223964580411365e-1) * r + -2.400758277161838) * r + -2.549732539343734) * r + 4.374664141464968) * r + 2.938163982698783) /
            ((((7.784695709041462e-3 * r + 3.224671290700398e-1) * r + 2.445134137142996) * r + 3.754408661907416) * r + 1);
          z = lower ? t : -t;
        }
        out[k] = mu + sigma * z;
      }
    }
  }
  // Then e^y − t (expDraw written out: the same expressions), and remainingQuantileGivenCdfMs's
  // fallback past the support, which is > 0 and finite for a finite mean; only e^y can overflow.
  let bad = -1;
  for (let j = 0; j < count; j++) {
    const o = row[j]!;
    const t = elapsed[j]!;
    const h = halfMean[j]!;
    for (let k = o; k < o + K; k++) {
      const y = out[k]!;
      let e: number;
      if (y > -EXP_TABLE_Y && y < EXP_TABLE_Y) {
        const kf = y * EXP_INV_STEP + ROUND_SHIFT - ROUND_SHIFT;
        const r = y - kf * EXP_STEP_HI - kf * EXP_STEP_LO;
        const i = kf + 64 * EXP_POW2_MAX;
        e = EXP_FRAC[i & 63]! * EXP_POW2[i >> 6]! * (1 + r * (1 + r * (0.5 + r * (1 / 6 + r * (1 / 24 + r * (1 / 120))))));
      } else e = Math.exp(y);
      const r = e - t;
      const d = r > 0 ? r : -Math.log(1 - levels[k]!) * h;
      out[k] = d;
      if (!(d < Number.POSITIVE_INFINITY) && bad < 0) bad = k;
    }
  }
  return bad;
}

/**
 * M4: E[T − t | T > t], by the midpoint rule over `levels` levels of the conditional remaining
 * quantiles (never 0 when t > 0): the mean of the same conditional draws the timing analysis
 * takes, for every family. Distributions expose it as `expectedRemainingMs(t)`.
 */
export function expectedRemainingMs(dist: DurationDistribution, elapsedMs: number, levels = 32): number {
  if (!(elapsedMs > 0)) return dist.meanMs;
  let sum = 0;
  for (let k = 0; k < levels; k++) sum += remainingQuantileMs(dist, elapsedMs, (k + 0.5) / levels);
  return sum / levels;
}

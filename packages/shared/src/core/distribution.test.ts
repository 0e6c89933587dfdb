import { describe, expect, it } from 'vitest';
import { ValidationError } from '../errors.js';
import {
  BINS_PER_DOUBLING,
  binHigh,
  binLow,
  binOf,
  decay,
  EMPTY_HISTOGRAM,
  histogramOf,
  type LogHistogram,
  mean,
  merge,
  observe,
  quantile,
  survival,
} from './distribution.js';
import { expectedRemainingMs, histogramDuration, lognormalDuration } from './duration.js';
import { mulberry32 } from './prng.js';

/** E[T − t | T > t] of a learned histogram through the one duration interface (duration.ts). */
const conditionalRemaining = (h: LogHistogram, t: number) => histogramDuration(h).expectedRemainingMs(t);

/** Exponential draws with the given mean (memoryless: E[T − t | T > t] = mean for every t). */
function exponential(meanMs: number, n: number, seed: number): number[] {
  const rnd = mulberry32(seed);
  return Array.from({ length: n }, () => -meanMs * Math.log(1 - rnd()));
}

describe('M4 log-histogram: bins', () => {
  it('puts each value in the bin whose edges hold it, including exact edges', () => {
    for (const v of [0, 0.5, 1, 1.5, 2, 3, 100, 1000, 1234.5, 2 ** 20, 1e9]) {
      const i = binOf(v);
      expect(binLow(i)).toBeLessThanOrEqual(v);
      expect(v).toBeLessThan(i === 0 ? 1 : binHigh(i));
    }
    // 2^k is an exact edge: it opens bin k·B + 1.
    expect(binOf(2)).toBe(BINS_PER_DOUBLING + 1);
    expect(binOf(1024)).toBe(10 * BINS_PER_DOUBLING + 1);
  });

  it('rejects a negative or non-finite value with a clear error', () => {
    expect(() => binOf(-1)).toThrow(ValidationError);
    expect(() => binOf(Number.NaN)).toThrow(/finite number/);
    expect(() => observe(EMPTY_HISTOGRAM, Number.POSITIVE_INFINITY)).toThrow(ValidationError);
  });
});

describe('M4 log-histogram: mean, quantiles', () => {
  it('keeps the exact mean and gives quantiles within one bin width of the truth', () => {
    const xs = exponential(2000, 20_000, 7);
    const h = histogramOf(xs);
    expect(mean(h)).toBeCloseTo(xs.reduce((s, x) => s + x, 0) / xs.length, 6);
    const sorted = [...xs].sort((a, b) => a - b);
    for (const q of [0.1, 0.5, 0.9, 0.99]) {
      const truth = sorted[Math.floor(q * sorted.length)]!;
      expect(Math.abs(quantile(h, q) / truth - 1)).toBeLessThan(0.1);
    }
  });

  it('is monotone in q and spans the observed range', () => {
    const h = histogramOf([10, 20, 40, 80, 160]);
    let prev = -1;
    for (let q = 0; q <= 1; q += 0.05) {
      const v = quantile(h, q);
      expect(v).toBeGreaterThanOrEqual(prev);
      prev = v;
    }
    expect(quantile(h, 0)).toBeGreaterThanOrEqual(binLow(binOf(10)));
    expect(quantile(h, 1)).toBeLessThanOrEqual(binHigh(binOf(160)));
  });

  it('says an empty distribution has no mean rather than inventing one', () => {
    expect(() => mean(EMPTY_HISTOGRAM)).toThrow(/empty distribution/);
    expect(() => quantile(EMPTY_HISTOGRAM, 0.5)).toThrow(ValidationError);
    expect(() => quantile(histogramOf([1]), 1.5)).toThrow(/q/);
  });

  it('observe, merge and decay agree with a histogram built at once', () => {
    const a = [5, 50, 500];
    const b = [7, 70];
    let h = EMPTY_HISTOGRAM;
    for (const x of [...a, ...b]) h = observe(h, x);
    expect(merge(histogramOf(a), histogramOf(b))).toEqual(h);
    const d = decay(h, 0.5);
    expect(d.n).toBe(2.5);
    expect(mean(d)).toBeCloseTo(mean(h), 9);
    expect(quantile(d, 0.5)).toBeCloseTo(quantile(h, 0.5), 9);
    expect(() => decay(h, 0)).toThrow(/factor/);
  });
});

describe('M4 conditional remaining time E[T − t | T > t]', () => {
  it('is the mean at t = 0', () => {
    const h = histogramOf(exponential(1000, 5000, 1));
    expect(conditionalRemaining(h, 0)).toBe(mean(h));
  });

  it('stays near the mean for a memoryless (exponential) class however long it has run', () => {
    const h = histogramOf(exponential(1000, 50_000, 3));
    for (const t of [500, 1000, 2000, 4000]) {
      expect(conditionalRemaining(h, t) / 1000).toBeGreaterThan(0.85);
      expect(conditionalRemaining(h, t) / 1000).toBeLessThan(1.15);
    }
  });

  it('shrinks for a tight class as its end approaches', () => {
    const rnd = mulberry32(11);
    const h = histogramOf(Array.from({ length: 5000 }, () => 3000 + 200 * (rnd() - 0.5)));
    expect(conditionalRemaining(h, 0)).toBeCloseTo(3000, -1);
    expect(conditionalRemaining(h, 1500)).toBeGreaterThan(1300);
    expect(conditionalRemaining(h, 1500)).toBeLessThan(1700);
    expect(conditionalRemaining(h, 2950)).toBeLessThan(400);
  });

  it('grows with t for a heavy-tailed class (the longest waits are not thrown away)', () => {
    const rnd = mulberry32(5);
    // Mixture: 90% fast (~200 ms), 10% slow (~20 s).
    const xs = Array.from({ length: 10_000 }, () => (rnd() < 0.9 ? 150 + 100 * rnd() : 15_000 + 10_000 * rnd()));
    const h = histogramOf(xs);
    expect(conditionalRemaining(h, 0)).toBeLessThan(2500);
    expect(conditionalRemaining(h, 1000)).toBeGreaterThan(15_000);
  });

  it('is never 0 once the operation has outrun every observation', () => {
    // Past the support the remainder is exponential with mean max(1 ms, mean/2) (duration.ts).
    const h = histogramOf([100, 110, 120]);
    const r = conditionalRemaining(h, 10_000);
    expect(r).toBeGreaterThan(0);
    expect(Math.abs(r - mean(h) / 2) / (mean(h) / 2)).toBeLessThan(0.05);
  });

  it('survival is 1 at 0, falls with t and is 0 past the data', () => {
    const h = histogramOf(exponential(1000, 20_000, 9));
    expect(survival(h, 0)).toBe(1);
    expect(Math.abs(survival(h, 1000) - Math.exp(-1))).toBeLessThan(0.03);
    expect(survival(h, 1e9)).toBe(0);
  });
});

describe('M4 histogram as a timing-analysis duration distribution', () => {
  it('has the exact mean, a CDF that agrees with the quantile function, and no mean when empty', () => {
    const h = histogramOf(exponential(1000, 20_000, 21));
    const d = histogramDuration(h);
    expect(d.meanMs).toBe(mean(h));
    for (const q of [0.1, 0.5, 0.9]) expect(d.cdf(d.quantileMs(q))).toBeCloseTo(q, 2);
    expect(() => histogramDuration(EMPTY_HISTOGRAM)).toThrow(/empty distribution/);
  });
});

describe('M4 one duration interface for priors and learned histograms (issue 9)', () => {
  it('a histogram of lognormal draws gives the lognormal’s mean, quantiles and E[T − t | T > t]', () => {
    const prior = lognormalDuration(2000, 0.5);
    const rnd = mulberry32(17);
    const learned = histogramDuration(histogramOf(Array.from({ length: 20_000 }, () => prior.quantileMs(rnd()))));
    const rel = (a: number, b: number) => Math.abs(a - b) / b;
    expect(rel(learned.meanMs, prior.meanMs)).toBeLessThan(0.03);
    for (const q of [0.1, 0.5, 0.9]) expect(rel(learned.quantileMs(q), prior.quantileMs(q))).toBeLessThan(0.1);
    // Where the draws determine it (over 2,700 of the 20,000 above t; far in the tail, e.g. t = 6 s
    // with 100 draws above, the learned value follows its few draws, not the lognormal).
    for (const t of [0, 1000, 2000, 3000]) expect(rel(learned.expectedRemainingMs(t), prior.expectedRemainingMs(t))).toBeLessThan(0.1);
    // The conditional remaining time is the mean of the conditional draws ΔT takes.
    expect(learned.expectedRemainingMs(3000)).toBe(expectedRemainingMs(learned, 3000));
  });
});

import { describe, expect, it } from 'vitest';
import { ValidationError } from '../errors.js';
import { DEFAULT_PRIORS, betaMean, credibleInterval, pointEstimate, priorFor, refitPrior, updatePosterior } from './posterior.js';
import { betaBinomialCdf, betaBinomialPmf, betaBinomialTailPValue, predictiveInterval } from './predictive.js';
import { mulberry32 } from './prng.js';
import { DEPENDENCY_TYPES, type BetaParams } from './types.js';

function simulate(prior: BetaParams, p: number, n: number, rnd: () => number): BetaParams {
  let hits = 0;
  for (let i = 0; i < n; i++) if (rnd() < p) hits++;
  return updatePosterior(prior, hits, n - hits);
}

describe('M5 priors by dependency type', () => {
  it('are exactly the METHOD.md table', () => {
    expect(DEFAULT_PRIORS).toEqual({
      passthrough: { a: 9, b: 1 },
      lookup: { a: 8, b: 2 },
      validation_gate: { a: 8, b: 2 },
      structured_extract: { a: 4, b: 3 },
      tool_args: { a: 2, b: 5 },
      free_text: { a: 1, b: 19 },
    });
    for (const t of DEPENDENCY_TYPES) if (t !== 'router_k_way') expect(priorFor(t)).toEqual(DEFAULT_PRIORS[t]);
  });

  it('router_k_way is Beta(1, k−1) with mean 1/k, and needs k', () => {
    expect(priorFor('router_k_way', 4)).toEqual({ a: 1, b: 3 });
    expect(betaMean(priorFor('router_k_way', 7))).toBeCloseTo(1 / 7, 15);
    expect(() => priorFor('router_k_way')).toThrow(ValidationError);
    expect(() => priorFor('router_k_way', 1)).toThrow(ValidationError);
  });

  it('takes configured overrides', () => {
    expect(priorFor('lookup', undefined, { lookup: { a: 3, b: 3 } })).toEqual({ a: 3, b: 3 });
    expect(priorFor('free_text', undefined, { lookup: { a: 3, b: 3 } })).toEqual({ a: 1, b: 19 });
    expect(() => priorFor('lookup', undefined, { lookup: { a: 0, b: 3 } })).toThrow(ValidationError);
  });
});

describe('M5 posterior: Beta(a + hits, b + misses)', () => {
  it('updates and reads point estimates', () => {
    const post = updatePosterior({ a: 8, b: 2 }, 10, 5);
    expect(post).toEqual({ a: 18, b: 7 });
    expect(pointEstimate(post)).toBeCloseTo(18 / 25, 15);
    // Lower credible bound: the 10% quantile has 10% of the mass below it.
    const q10 = pointEstimate(post, { kind: 'lower_bound', quantile: 0.1 });
    expect(q10).toBeLessThan(18 / 25);
    // Beta(1, 1) is uniform: its q-quantile is q.
    expect(pointEstimate({ a: 1, b: 1 }, { kind: 'lower_bound', quantile: 0.1 })).toBeCloseTo(0.1, 6);
    // Beta(2, 1) has CDF x², so the 0.25 quantile is 0.5.
    expect(pointEstimate({ a: 2, b: 1 }, { kind: 'lower_bound', quantile: 0.25 })).toBeCloseTo(0.5, 6);
    expect(() => updatePosterior({ a: 1, b: 1 }, -1, 0)).toThrow(ValidationError);
    expect(() => pointEstimate(post, { kind: 'lower_bound', quantile: 1 })).toThrow(ValidationError);
  });

  it('credible interval of the uniform is the central quantiles', () => {
    const ci = credibleInterval({ a: 1, b: 1 }, 0.9);
    expect(ci.lo).toBeCloseTo(0.05, 6);
    expect(ci.hi).toBeCloseTo(0.95, 6);
  });

  it('recovery: from every type’s prior, outcomes at p move the mean to p, the 95% interval covers p, and its width shrinks like 1/√n', () => {
    const rnd = mulberry32(7);
    for (const type of DEPENDENCY_TYPES) {
      const prior = priorFor(type, type === 'router_k_way' ? 4 : undefined);
      for (const p of [0.05, 0.3, 0.7, 0.95]) {
        // Mean after many outcomes: within 3 standard errors of p.
        const big = simulate(prior, p, 20_000, rnd);
        expect(Math.abs(betaMean(big) - p), `${type} p=${p}`).toBeLessThan(3 * Math.sqrt((p * (1 - p)) / 20_000));
        // Coverage: over 40 independent runs of 10k outcomes, the 95% interval covers p in ≥ 85% of
        // them (at this n even the most wrong prior, Beta(9, 1) at p = 0.05, shifts the mean < 0.4 sd).
        let covered = 0;
        for (let r = 0; r < 40; r++) {
          const ci = credibleInterval(simulate(prior, p, 10_000, rnd), 0.95);
          if (ci.lo <= p && p <= ci.hi) covered++;
        }
        expect(covered, `${type} p=${p}`).toBeGreaterThanOrEqual(34);
        // Width at n and 4n: ratio ≈ 2 (1/√n), at n large enough for the prior to have washed out.
        const w = (n: number) => {
          const ci = credibleInterval(simulate(prior, p, n, rnd), 0.95);
          return ci.hi - ci.lo;
        };
        const ratio = w(10_000) / w(40_000);
        expect(ratio, `${type} p=${p}`).toBeGreaterThan(1.8);
        expect(ratio, `${type} p=${p}`).toBeLessThan(2.2);
      }
    }
  });
});

describe('M5/M9 Beta-Binomial predictive', () => {
  it('pmf matches the closed form and sums to 1', () => {
    // Beta(1, 1) → K is uniform on 0..n.
    for (let k = 0; k <= 5; k++) expect(betaBinomialPmf({ a: 1, b: 1 }, 5, k)).toBeCloseTo(1 / 6, 12);
    // n = 1: P(K = 1) = a / (a + b).
    expect(betaBinomialPmf({ a: 3, b: 7 }, 1, 1)).toBeCloseTo(0.3, 12);
    // n = 2, Beta(2, 3): P(K = 2) = a(a+1) / ((a+b)(a+b+1)) = 6 / 30.
    expect(betaBinomialPmf({ a: 2, b: 3 }, 2, 2)).toBeCloseTo(0.2, 12);
    let s = 0;
    for (let k = 0; k <= 40; k++) s += betaBinomialPmf({ a: 8, b: 2 }, 40, k);
    expect(s).toBeCloseTo(1, 10);
    expect(betaBinomialCdf({ a: 1, b: 1 }, 5, 2)).toBeCloseTo(0.5, 12);
    expect(betaBinomialCdf({ a: 1, b: 1 }, 5, 5)).toBe(1);
    expect(betaBinomialCdf({ a: 1, b: 1 }, 5, -1)).toBe(0);
    expect(betaBinomialPmf({ a: 1, b: 1 }, 5, 6)).toBe(0);
  });

  it('predictive interval holds the stated mass and contains the expected count', () => {
    const beta = { a: 80, b: 20 };
    const { lo, hi } = predictiveInterval(beta, 50, 0.95);
    expect(lo).toBeLessThan(40);
    expect(hi).toBeGreaterThan(40);
    const mass = betaBinomialCdf(beta, 50, hi) - betaBinomialCdf(beta, 50, lo - 1);
    expect(mass).toBeGreaterThanOrEqual(0.95);
    expect(betaBinomialCdf(beta, 50, lo - 1)).toBeLessThanOrEqual(0.025);
    expect(1 - betaBinomialCdf(beta, 50, hi)).toBeLessThanOrEqual(0.025);
  });

  it('tail p-value is small for outcomes far from the posterior (drift) and large for typical ones', () => {
    const beta = { a: 90, b: 10 };
    expect(betaBinomialTailPValue(beta, 30, 27)).toBeGreaterThan(0.3);
    expect(betaBinomialTailPValue(beta, 30, 12)).toBeLessThan(1e-4);
  });
});

describe('M9 refit priors (offline replay)', () => {
  it('recovers the mean and concentration of class rates drawn from a known Beta', () => {
    const rnd = mulberry32(42);
    // 2000 classes with rates from Beta(6, 4) (mean 0.6, a + b = 10), drawn by inverse CDF, and
    // only 20 outcomes each, so the binomial noise is large: without subtracting it, the fit
    // would give a + b ≈ 6 instead of 10.
    const counts = [];
    for (let c = 0; c < 2000; c++) {
      const rate = pointEstimate({ a: 6, b: 4 }, { kind: 'lower_bound', quantile: Math.min(0.9999, Math.max(0.0001, rnd())) });
      let hits = 0;
      for (let i = 0; i < 20; i++) if (rnd() < rate) hits++;
      counts.push({ hits, misses: 20 - hits });
    }
    const fit = refitPrior(counts);
    expect(betaMean(fit)).toBeCloseTo(0.6, 1);
    expect(fit.a + fit.b).toBeGreaterThan(8.5);
    expect(fit.a + fit.b).toBeLessThan(12);
  });

  it('falls back sanely with no data, one class, or identical classes', () => {
    expect(refitPrior([])).toEqual({ a: 1, b: 1 });
    expect(refitPrior([{ hits: 0, misses: 0 }], { fallback: { a: 2, b: 5 } })).toEqual({ a: 2, b: 5 });
    const one = refitPrior([{ hits: 30, misses: 10 }], { fallback: { a: 5, b: 5 } });
    expect(one.a + one.b).toBeCloseTo(10, 12);
    expect(betaMean(one)).toBeCloseTo(0.75, 12);
    const same = refitPrior([
      { hits: 50, misses: 50 },
      { hits: 50, misses: 50 },
    ]);
    expect(same.a + same.b).toBe(1000);
    const allHits = refitPrior([
      { hits: 10, misses: 0 },
      { hits: 20, misses: 0 },
    ]);
    expect(allHits.a).toBeGreaterThan(0);
    expect(allHits.b).toBeGreaterThan(0);
  });
});

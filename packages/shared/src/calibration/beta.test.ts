/** M5 Beta-Binomial arithmetic used by the calibration gates and the tail test. */
import { describe, expect, it } from 'vitest';
import { betaBinomialCdf, betaBinomialInterval, betaBinomialPmf, lnGamma } from './beta.js';

describe('M5 Beta-Binomial predictive', () => {
  it('lnGamma matches factorials', () => {
    for (const [x, f] of [[1, 1], [2, 1], [5, 24], [11, 3628800]] as const) expect(lnGamma(x)).toBeCloseTo(Math.log(f), 10);
    expect(lnGamma(0.5)).toBeCloseTo(Math.log(Math.sqrt(Math.PI)), 10);
  });
  it('the pmf sums to 1 and Beta(1,1) gives the uniform distribution on 0..n', () => {
    let s = 0;
    for (let k = 0; k <= 30; k++) s += betaBinomialPmf(k, 30, 9, 1);
    expect(s).toBeCloseTo(1, 10);
    for (let k = 0; k <= 10; k++) expect(betaBinomialPmf(k, 10, 1, 1)).toBeCloseTo(1 / 11, 10);
  });
  it('approaches the binomial for a concentrated posterior', () => {
    // Beta(9e5, 1e5) ≈ point mass at 0.9: P(H ≤ 25 | n = 30) for Binomial(30, 0.9) = 0.1755
    expect(betaBinomialCdf(25, 30, 9e5, 1e5)).toBeCloseTo(0.1755, 3);
    expect(betaBinomialCdf(30, 30, 9, 1)).toBe(1);
    expect(betaBinomialCdf(-1, 30, 9, 1)).toBe(0);
  });
  it('the central interval holds at least the requested mass', () => {
    const { lo, hi } = betaBinomialInterval(30, 27, 3, 0.95);
    let mass = 0;
    for (let k = lo; k <= hi; k++) mass += betaBinomialPmf(k, 30, 27, 3);
    expect(mass).toBeGreaterThanOrEqual(0.95);
    expect(lo).toBeGreaterThan(15);
    expect(hi).toBe(30);
  });
});

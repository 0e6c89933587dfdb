/**
 * M5/M9: the Beta-Binomial predictive distribution of the number of hits K in n future trials
 * of an edge class whose posterior is Beta(a, b):
 *   P(K = k) = C(n, k) B(k + a, n − k + b) / B(a, b)
 * Used by the shadow-stage calibration check (observed hits inside the predictive interval) and
 * by the drift kill-switch's tail test on a sliding window.
 */
import jstat from 'jstat';
import { ValidationError } from '../errors.js';
import type { BetaParams } from './types.js';

function checkTrials(n: number): void {
  if (!(Number.isInteger(n) && n >= 0)) throw new ValidationError([{ path: 'n', message: `must be an integer ≥ 0, got ${n}` }]);
}

/** P(K = k) for K ~ BetaBinomial(n, a, b). */
export function betaBinomialPmf(beta: BetaParams, n: number, k: number): number {
  checkTrials(n);
  if (!Number.isInteger(k) || k < 0 || k > n) return 0;
  const lnChoose = jstat.gammaln(n + 1) - jstat.gammaln(k + 1) - jstat.gammaln(n - k + 1);
  return Math.exp(lnChoose + jstat.betaln(k + beta.a, n - k + beta.b) - jstat.betaln(beta.a, beta.b));
}

/** P(K ≤ k). */
export function betaBinomialCdf(beta: BetaParams, n: number, k: number): number {
  checkTrials(n);
  if (k < 0) return 0;
  if (k >= n) return 1;
  let s = 0;
  for (let j = 0; j <= Math.floor(k); j++) s += betaBinomialPmf(beta, n, j);
  return Math.min(1, s);
}

/** Central predictive interval [lo, hi] of K holding at least `level` of the mass. */
export function predictiveInterval(beta: BetaParams, n: number, level = 0.95): { lo: number; hi: number } {
  checkTrials(n);
  const tail = (1 - level) / 2;
  let cdf = 0;
  let lo = -1;
  let hi = n;
  for (let k = 0; k <= n; k++) {
    const before = cdf;
    cdf += betaBinomialPmf(beta, n, k);
    // lo: the smallest k with P(K < k) ≤ tail < P(K ≤ k); hi: the smallest k with P(K ≤ k) ≥ 1 − tail.
    if (lo === -1 && cdf > tail) lo = k;
    if (before < 1 - tail && cdf >= 1 - tail) {
      hi = k;
      break;
    }
  }
  return { lo: Math.max(0, lo), hi };
}

/**
 * Two-sided tail p-value of observing `hits` in n trials under the predictive distribution:
 * 2 · min(P(K ≤ hits), P(K ≥ hits)), capped at 1. Small values mean the recent outcomes do not
 * fit the posterior (drift, M9).
 */
export function betaBinomialTailPValue(beta: BetaParams, n: number, hits: number): number {
  const lower = betaBinomialCdf(beta, n, hits);
  const upper = 1 - betaBinomialCdf(beta, n, hits - 1);
  return Math.min(1, 2 * Math.min(lower, upper));
}

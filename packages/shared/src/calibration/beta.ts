/**
 * Beta-Binomial arithmetic for calibration (M5, M9): log-gamma, the Beta-Binomial predictive
 * pmf/cdf and its central interval. Pure: no I/O, no clock, no randomness.
 */

// Lanczos approximation (g = 7, n = 9): |relative error| < 1e-13 for x > 0.
const LANCZOS = [
  0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059,
  12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7,
];

/** ln Γ(x) for x > 0. */
export function lnGamma(x: number): number {
  if (x < 0.5) return Math.log(Math.PI / Math.sin(Math.PI * x)) - lnGamma(1 - x);
  const z = x - 1;
  let s = LANCZOS[0] as number;
  for (let i = 1; i < 9; i++) s += (LANCZOS[i] as number) / (z + i);
  const t = z + 7.5;
  return 0.5 * Math.log(2 * Math.PI) + (z + 0.5) * Math.log(t) - t + Math.log(s);
}

/** ln B(a, b). */
export function lnBeta(a: number, b: number): number {
  return lnGamma(a) + lnGamma(b) - lnGamma(a + b);
}

/** The Beta-Binomial(n, a, b) pmf at k: probability of k hits in n trials under Beta(a, b). */
export function betaBinomialPmf(k: number, n: number, a: number, b: number): number {
  if (k < 0 || k > n) return 0;
  const lnChoose = lnGamma(n + 1) - lnGamma(k + 1) - lnGamma(n - k + 1);
  return Math.exp(lnChoose + lnBeta(k + a, n - k + b) - lnBeta(a, b));
}

/** P(H ≤ h) for H ~ Beta-Binomial(n, a, b). */
export function betaBinomialCdf(h: number, n: number, a: number, b: number): number {
  if (h < 0) return 0;
  if (h >= n) return 1;
  let s = 0;
  for (let k = 0; k <= h; k++) s += betaBinomialPmf(k, n, a, b);
  return Math.min(1, s);
}

/**
 * Central predictive interval [lo, hi] of hits in n trials under Beta(a, b), holding at least
 * `level` of the mass: lo is the smallest k with P(H ≤ k) > (1 − level) / 2, hi the smallest k
 * with P(H ≤ k) ≥ 1 − (1 − level) / 2.
 */
export function betaBinomialInterval(n: number, a: number, b: number, level: number): { lo: number; hi: number } {
  const tail = (1 - level) / 2;
  let cdf = 0;
  let lo = -1;
  let hi = n;
  for (let k = 0; k <= n; k++) {
    cdf += betaBinomialPmf(k, n, a, b);
    if (lo < 0 && cdf > tail) lo = k;
    if (cdf >= 1 - tail) {
      hi = k;
      break;
    }
  }
  return { lo: Math.max(0, lo), hi };
}

/**
 * The detection bound of the tail test (M9.5, docs/estimator.md): for a drop of the hit rate
 * from `pre` to `post` on a class with `historyN` outcomes of history, the number of outcomes
 * after the change by which the tail test has alarmed with probability ≥ `quantile`.
 *
 * Derivation. Take the posterior before the window at its expectation,
 * Beta(a0 + pre·N, b0 + (1 − pre)·N), and let h* be the largest hit count with
 * P(H ≤ h* | W trials) < threshold (the alarm fires exactly when the window holds ≤ h* hits).
 * k outcomes after the change the window holds W − k outcomes from before (at most W − k hits,
 * the worst case) and k from after (Binomial(k, post) hits), so
 *   P(alarm at k) ≥ P(Binomial(k, post) ≤ h* − (W − k)).
 * The bound B is the smallest k where this reaches `quantile`. Page-Hinkley can only make the
 * alarm earlier. Pure arithmetic; the simulation in bound.test.ts checks it.
 */
import type { BetaParams } from '../core/types.js';
import { betaBinomialCdf } from './beta.js';
import type { TailTestParams } from './detectors.js';

function binomialCdf(x: number, n: number, p: number): number {
  if (x < 0) return 0;
  if (x >= n) return 1;
  let term = (1 - p) ** n;
  let s = term;
  for (let k = 1; k <= x; k++) {
    term *= ((n - k + 1) / k) * (p / (1 - p));
    s += term;
  }
  return Math.min(1, s);
}

/** Largest hit count of a full window that alarms under `before`, or -1 if none does. */
export function alarmHitCount(before: BetaParams, tail: TailTestParams): number {
  let hs = -1;
  for (let h = 0; h <= tail.windowSize; h++) if (betaBinomialCdf(h, tail.windowSize, before.a, before.b) < tail.threshold) hs = h;
  return hs;
}

export interface BoundInput {
  readonly prior: BetaParams;
  readonly historyN: number;
  readonly pre: number;
  readonly post: number;
  readonly tail: TailTestParams;
  readonly quantile: number;
}

/** Outcomes after the change by which the tail test alarms with probability ≥ quantile; Infinity if never within a window's length. */
export function tailDetectionBound(x: BoundInput): { bound: number; alarmHits: number } {
  const before = { a: x.prior.a + x.pre * x.historyN, b: x.prior.b + (1 - x.pre) * x.historyN };
  const hs = alarmHitCount(before, x.tail);
  const W = x.tail.windowSize;
  for (let k = 1; k <= W; k++) {
    if (binomialCdf(hs - (W - k), k, x.post) >= x.quantile) return { bound: k, alarmHits: hs };
  }
  return { bound: Number.POSITIVE_INFINITY, alarmHits: hs };
}

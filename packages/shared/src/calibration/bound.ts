/**
 * The detection bound of the multi-window tail test (M9.5, docs/estimator.md): for a drop of the
 * hit rate from `pre` to `post` on a class with `historyN` outcomes of history, the number of
 * outcomes after the change by which the test has alarmed with probability ≥ `quantile`.
 *
 * Derivation. k outcomes after the change, take each window w ≤ k that is wholly after the
 * change, with its reference (the outcomes before it, at most `windowCap − w`) at its
 * expectation: historyN outcomes at `pre` and k − w at `post`. Let h*_w be the largest hit count
 * of w outcomes with P(H ≤ h*_w) below the per-window level under that reference; the window
 * alarms exactly when it holds ≤ h*_w hits, so P(alarm by k) ≥ max over such w of
 * P(Binomial(w, post) ≤ h*_w). The bound B is the smallest k where this reaches `quantile`
 * (windows that straddle the change can only make the alarm earlier). Pure arithmetic; the
 * simulation in detectors.test.ts checks it.
 */
import { betaBinomialCdf } from '../core/predictive.js';
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

/** Largest hit count of a w-outcome window that alarms against a reference of refHits in refN, or -1. */
export function alarmHitCount(w: number, refN: number, refHits: number, tail: TailTestParams): number {
  const level = tail.level / tail.windows.length;
  const beta = { a: 1 + refHits, b: 1 + refN - refHits };
  let hs = -1;
  for (let h = 0; h <= w; h++) {
    if (betaBinomialCdf(beta, w, h) < level) hs = h;
    else break;
  }
  return hs;
}

export interface BoundInput {
  readonly historyN: number;
  readonly pre: number;
  readonly post: number;
  readonly tail: TailTestParams;
  readonly windowCap: number;
  readonly quantile: number;
  /** Outcomes after the change to look at (default 400). */
  readonly horizon?: number;
}

/** Outcomes after the change by which the tail test alarms with probability ≥ quantile; Infinity if not within the horizon. */
export function tailDetectionBound(x: BoundInput): { bound: number } {
  const horizon = x.horizon ?? 400;
  for (let k = 1; k <= horizon; k++) {
    for (const w of x.tail.windows) {
      if (w > k) break;
      const fromPost = Math.min(k - w, x.windowCap - w);
      const fromPre = Math.min(x.historyN, x.windowCap - w - fromPost);
      const refN = fromPre + fromPost;
      if (refN < x.tail.minReference) continue;
      const refHits = Math.round(fromPre * x.pre + fromPost * x.post);
      const hs = alarmHitCount(w, refN, refHits, x.tail);
      if (binomialCdf(hs, w, x.post) >= x.quantile) return { bound: k };
    }
  }
  return { bound: Number.POSITIVE_INFINITY };
}

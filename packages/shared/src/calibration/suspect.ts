/**
 * Drift suspicion (M5, M9; docs/method.md "Drift: suspicion before the kill"): the P the rule
 * decides with reacts to a drop within a few outcomes, while the M9.5 kill keeps its own
 * false-alarm guarantee. Pure: the caller passes the class's recent hit sequence.
 *
 * A CUSUM over the class's last `window` outcomes (oldest first, '1' hit) of the log-likelihood
 * ratio of "the rate fell by `drop`" (p1 = p0 − drop) against "the rate is the posterior's mean"
 * (p0): S_t = max(0, S_{t−1} + ln(P(x_t | p1) / P(x_t | p0))). While S > `threshold` the class is
 * suspect, and the outcomes since S last stood at 0 (the CUSUM's estimate of the change point)
 * are its current regime: the decision uses the posterior of that segment, with the
 * whole-history mean m as its prior at a weight of `weight` outcomes (Beta(w·m + hits,
 * w·(1 − m) + misses)), when its mean is below m. The weight keeps a short false suspicion (two
 * misses on a class at 0.9) from stopping a class that pays by a wide margin, and costs a real
 * drop only the first few outcomes of its segment. Nothing is reset and nothing is
 * killed: every outcome still feeds the whole-history posterior and the detector (M5: learning
 * is never blocked), and the class decides from the whole history again as soon as S falls back
 * to the threshold (the hits that follow a false suspicion pull it down).
 *
 * Why a separate, looser statistic: the kill is held to ≤ 1e-5 false alarms per stationary
 * outcome because a false kill resets learning and escalates; by Lorden's bound that costs
 * ln(1e5) / KL outcomes of delay, 37 to 60 for a 0.3 drop, every one of them a launch at the old
 * P. A suspicion costs only the launches it skips while it lasts, so it can fire at a rate a
 * kill cannot.
 *
 * `method: 'changepoint'` replaces the switch with the Bayes predictive of a change-point model
 * (`changePointPosterior`), which lowers P by as much as a change is probable; measured worse
 * than the CUSUM on both of issue 9's gates at every hazard (docs/method.md M9, the frontier), so
 * it is selectable, not the default.
 */
import { type LearnedBeta, posteriorUnder } from '../core/priors.js';
import type { BetaParams } from '../core/types.js';
import { DEFAULT_CALIBRATION } from './config.js';

export interface SuspicionParams {
  /**
   * `cusum` (the default): the CUSUM switch (`driftSuspicion`); `changepoint`: the Bayes
   * predictive under a change-point model (`changePointPosterior`). Measured against each other
   * in docs/method.md M9 (the frontier table).
   */
  readonly method: 'cusum' | 'changepoint';
  /** changepoint: prior probability of a change before each outcome (constant hazard). */
  readonly hazard: number;
  /**
   * changepoint: a new segment's prior mean, `whole` the whole-history mean m, `drop` m − drop
   * (a change is expected to be a drop); its weight is `weight` outcomes.
   */
  readonly segmentPrior: 'whole' | 'drop';
  /** The drop of the hit rate the CUSUM is tuned to (p1 = p0 − drop). 0 turns suspicion (either method) off. */
  readonly drop: number;
  /**
   * S above this (nats) makes the class suspect. In the settings a decision uses
   * (`suspectParams(…, α)`), the level in force at its α; in configuration, the level at α ≤ 0.5.
   */
  readonly threshold: number;
  /** The level at α = 1 (latency first); linear from `threshold` at α = 0.5. */
  readonly thresholdAtAlpha1: number;
  /** Most recent outcomes the CUSUM runs over. */
  readonly window: number;
  /** Outcomes the whole-history mean counts for in the segment's posterior. */
  readonly weight: number;
}

export interface Suspicion {
  readonly suspect: boolean;
  /** The CUSUM statistic at the last outcome (nats). */
  readonly stat: number;
  /** Outcomes and hits since the statistic last stood at 0. */
  readonly since: number;
  readonly hits: number;
}

const NONE: Suspicion = { suspect: false, stat: 0, since: 0, hits: 0 };

/** The CUSUM of a drop of `drop` below p0 over the last `window` outcomes of `seq`. */
export function driftSuspicion(seq: string, p0: number, p: SuspicionParams): Suspicion {
  const p1 = p0 - p.drop;
  if (!(p.drop > 0) || p1 < 0.01 || p0 >= 1 || seq.length === 0) return NONE;
  const onHit = Math.log(p1 / p0);
  const onMiss = Math.log((1 - p1) / (1 - p0));
  let s = 0;
  let since = 0;
  let hits = 0;
  for (let i = Math.max(0, seq.length - p.window); i < seq.length; i++) {
    const hit = seq.charCodeAt(i) === 49;
    s += hit ? onHit : onMiss;
    if (s <= 0) {
      s = 0;
      since = 0;
      hits = 0;
    } else {
      since++;
      if (hit) hits++;
    }
  }
  return { suspect: s > p.threshold, stat: s, since, hits };
}

/**
 * The Bayes predictive of the next outcome under a change-point model (Adams & MacKay's run
 * length, truncated to the window), moment-matched to a Beta. Hypotheses: the last r outcomes of
 * the window (r = 0 … n − 1, n ≤ `window`) are a new segment that began after a change, prior
 * h(1 − h)^r; or no change within the window, prior (1 − h)^n (longer run lengths merged into
 * it), under which the class's whole-history posterior holds. A segment's rate has the prior
 * `segmentPrior` (mean m or m − drop) at `weight` outcomes. The weight of hypothesis r is its
 * prior times the Bayes factor of "the last r outcomes are a new segment" against "they continue
 * the whole history": the product, over those outcomes, of the segment's sequential predictive
 * over the whole history's; exchangeability makes both O(1) per step walking back from the
 * newest outcome, so the whole is O(n) and deterministic. P only falls: a predictive mean at or
 * above m leaves the whole-history posterior (a rise is the whole history's to learn, as with the
 * CUSUM). Unlike the CUSUM's switch, P falls by as much as a change is probable. The walk stops
 * where the whole-history counts run out (a window longer than the evidence the posterior holds,
 * which the estimator never writes).
 */
export function changePointPosterior(posterior: BetaParams, seq: string, p: SuspicionParams): BetaParams {
  const a = posterior.a;
  const b = posterior.b;
  const m = a / (a + b);
  const m1 = p.segmentPrior === 'drop' ? m - p.drop : m;
  if (!(p.drop > 0) || m1 < 0.01 || m >= 1 || seq.length === 0) return posterior;
  const n = Math.min(seq.length, p.window);
  const h = p.hazard;
  const w = p.weight;
  const last = seq.length - 1;
  // r = 0: a change right now, the next outcome is the new segment's first.
  let q = 1; // (1 − h)^r
  let W = h;
  let M = h * m1;
  let Q = h * (m1 * m1 + (m1 * (1 - m1)) / (w + 1));
  let ca = a; // whole-history counts before the outcome walked
  let cb = b;
  let sa = w * m1; // the segment's counts from it on
  let sb = w * (1 - m1);
  let bf = 1;
  for (let r = 1; r < n; r++) {
    const hit = seq.charCodeAt(last - r + 1) === 49;
    if (hit) ca -= 1;
    else cb -= 1;
    if (!(ca > 0 && cb > 0)) break;
    bf *= hit ? (sa / (sa + sb)) * ((ca + cb) / ca) : (sb / (sa + sb)) * ((ca + cb) / cb);
    if (hit) sa += 1;
    else sb += 1;
    q *= 1 - h;
    const wr = h * q * bf;
    const mr = sa / (sa + sb);
    W += wr;
    M += wr * mr;
    Q += wr * (mr * mr + (mr * (1 - mr)) / (sa + sb + 1));
  }
  // No change within the window: the whole history.
  q *= 1 - h;
  W += q;
  M += q * m;
  Q += q * (m * m + (m * (1 - m)) / (a + b + 1));
  const mu = M / W;
  if (mu >= m) return posterior;
  const v = Q / W - mu * mu;
  const k = (mu * (1 - mu)) / v - 1;
  return { a: mu * k, b: (1 - mu) * k };
}

/**
 * The posterior a decision uses (M5 with drift suspicion): the class's whole-history posterior,
 * or, while the class is suspect, the segment's posterior (see the header) when its mean is
 * lower. `recent` is the class's hit sequence (oldest first); undefined or empty leaves the
 * posterior as it is.
 */
export function decisionPosterior(
  posterior: BetaParams,
  recent: string | undefined,
  p: SuspicionParams,
): { posterior: BetaParams; suspicion?: Suspicion } {
  if (recent === undefined || recent.length === 0) return { posterior };
  if (p.method === 'changepoint') return { posterior: changePointPosterior(posterior, recent, p) };
  const m = posterior.a / (posterior.a + posterior.b);
  const s = driftSuspicion(recent, m, p);
  if (!s.suspect) return { posterior };
  const seg = { a: p.weight * m + s.hits, b: p.weight * (1 - m) + (s.since - s.hits) };
  if (seg.a / (seg.a + seg.b) >= m) return { posterior, suspicion: s };
  return { posterior: seg, suspicion: s };
}

/**
 * The suspicion settings a decision at `alpha` uses: the defaults under the tenant's calibration
 * overrides (validated where they are set), with `threshold` the level in force at that α. M3:
 * a suspicion trades latency (launches skipped that would have paid, if the class did not drop)
 * for dollars (launches that miss, if it did), so latency first (α = 1) asks for more evidence:
 * the level rises linearly from `threshold` at α = 0.5 to `thresholdAtAlpha1` at α = 1.
 */
export function suspectParams(
  overrides: { readonly suspect?: Partial<SuspicionParams> } | undefined,
  alpha: number,
  base: SuspicionParams = DEFAULT_CALIBRATION.suspect,
): SuspicionParams {
  const o = overrides?.suspect;
  const p = o === undefined ? base : { ...base, ...o };
  const level = alpha <= 0.5 ? p.threshold : p.threshold + (p.thresholdAtAlpha1 - p.threshold) * ((Math.min(alpha, 1) - 0.5) / 0.5);
  return level === p.threshold ? p : { ...p, threshold: level };
}

/**
 * The posterior every live decision reads for an edge class (decider, plan, re-decision, ΔT's
 * sibling P): the class's learned evidence under the prior now in force (`posteriorUnder`), then
 * drift suspicion on its recent hit sequence (`decisionPosterior`). Replay's learnOnline calls
 * `decisionPosterior` on the same sequence.
 */
export function classPosterior(
  prior: BetaParams,
  learned: (LearnedBeta & { readonly recent?: string }) | undefined,
  suspect: SuspicionParams = DEFAULT_CALIBRATION.suspect,
): BetaParams {
  const post = posteriorUnder(prior, learned);
  return learned?.recent === undefined ? post : decisionPosterior(post, learned.recent, suspect).posterior;
}

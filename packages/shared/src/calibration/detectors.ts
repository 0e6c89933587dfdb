/**
 * Drift detectors (M9.5): a Beta-Binomial predictive tail test on a sliding window, and
 * Page-Hinkley on the hit sequence (detecting a drop of the mean). Pure and deterministic: the
 * caller passes the posterior and the window; nothing here reads a clock or a store.
 *
 * A hit sequence is a string of '1' (hit) and '0' (miss), oldest first: the form the estimator
 * keeps in Redis (`classKeys().window`), so the same bytes are tested live and in simulation.
 */
import type { BetaParams } from '../core/types.js';
import { betaBinomialCdf } from './beta.js';

export interface TailTestParams {
  /** Outcomes in the tested window (the most recent ones). No test until the window is full. */
  readonly windowSize: number;
  /** Alarm when P(H ≤ h | posterior before the window) < threshold. */
  readonly threshold: number;
}

export interface PageHinkleyParams {
  /** Tolerated drop per outcome (δ): the statistic drifts up by δ per outcome while stationary. */
  readonly delta: number;
  /** Alarm threshold λ_PH on max(m) − m. */
  readonly lambda: number;
  /** No alarm before this many outcomes in the scanned sequence. */
  readonly minN: number;
}

export interface TailTestResult {
  readonly alarm: boolean;
  readonly pValue: number;
  readonly n: number;
  readonly hits: number;
  /** The posterior before the window, the one the window was tested against. */
  readonly before: BetaParams;
}

function countHits(seq: string): number {
  let h = 0;
  for (let i = 0; i < seq.length; i++) if (seq.charCodeAt(i) === 49) h++;
  return h;
}

/**
 * Beta-Binomial predictive tail test. `posterior` is the class's current posterior, which already
 * includes the window's outcomes; they are subtracted to get the posterior before the window
 * (floored at a tiny positive value so a prior-only posterior stays proper).
 */
export function tailTest(posterior: BetaParams, seq: string, p: TailTestParams): TailTestResult {
  const win = seq.length > p.windowSize ? seq.slice(seq.length - p.windowSize) : seq;
  const n = win.length;
  const hits = countHits(win);
  const before = { a: Math.max(1e-6, posterior.a - hits), b: Math.max(1e-6, posterior.b - (n - hits)) };
  if (n < p.windowSize) return { alarm: false, pValue: 1, n, hits, before };
  const pValue = betaBinomialCdf(hits, n, before.a, before.b);
  return { alarm: pValue < p.threshold, pValue, n, hits, before };
}

export interface PageHinkleyState {
  readonly n: number;
  readonly mean: number;
  /** m_t = Σ (x_i − x̄_i + δ) */
  readonly cum: number;
  /** M_t = max over i ≤ t of m_i */
  readonly max: number;
}

export const PH_INITIAL: PageHinkleyState = { n: 0, mean: 0, cum: 0, max: 0 };

/** One Page-Hinkley step for a decrease of the mean. `stat` = M_t − m_t. */
export function pageHinkleyStep(
  s: PageHinkleyState,
  x: number,
  p: PageHinkleyParams,
): { state: PageHinkleyState; stat: number; alarm: boolean } {
  const n = s.n + 1;
  const mean = s.mean + (x - s.mean) / n;
  const cum = s.cum + (x - mean + p.delta);
  const max = Math.max(s.max, cum);
  const stat = max - cum;
  return { state: { n, mean, cum, max }, stat, alarm: n >= p.minN && stat > p.lambda };
}

/** Page-Hinkley over a whole hit sequence (oldest first); alarm reflects the last step. */
export function pageHinkleyScan(seq: string, p: PageHinkleyParams): { alarm: boolean; stat: number; n: number } {
  let s = PH_INITIAL;
  let stat = 0;
  let alarm = false;
  for (let i = 0; i < seq.length; i++) {
    const r = pageHinkleyStep(s, seq.charCodeAt(i) === 49 ? 1 : 0, p);
    s = r.state;
    stat = r.stat;
    alarm = r.alarm;
  }
  return { alarm, stat, n: s.n };
}

export interface DriftParams {
  readonly tail: TailTestParams;
  readonly pageHinkley: PageHinkleyParams;
}

export interface DriftVerdict {
  readonly alarm: boolean;
  /** Which detector fired first in the check order (tail, then Page-Hinkley), with numbers. */
  readonly reason?: string;
  readonly tail: TailTestResult;
  readonly pageHinkley: { alarm: boolean; stat: number; n: number };
}

/** Runs both detectors on a class's posterior and stored window. */
export function detectDrift(posterior: BetaParams, seq: string, p: DriftParams): DriftVerdict {
  const tail = tailTest(posterior, seq, p.tail);
  const ph = pageHinkleyScan(seq, p.pageHinkley);
  let reason: string | undefined;
  if (tail.alarm) {
    reason =
      `drift: tail test P(H<=${tail.hits} of ${tail.n} | Beta(${tail.before.a.toFixed(1)},${tail.before.b.toFixed(1)}))` +
      `=${tail.pValue.toExponential(2)} < ${p.tail.threshold}`;
  } else if (ph.alarm) {
    reason = `drift: page-hinkley stat ${ph.stat.toFixed(2)} > ${p.pageHinkley.lambda} over ${ph.n} outcomes`;
  }
  return { alarm: tail.alarm || ph.alarm, ...(reason === undefined ? {} : { reason }), tail, pageHinkley: ph };
}

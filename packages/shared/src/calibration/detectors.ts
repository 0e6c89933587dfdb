/**
 * Drift detectors (M9.5): a Beta-Binomial predictive tail test on a sliding window, and
 * Page-Hinkley on the hit sequence (detecting a drop of the mean). Pure and deterministic: the
 * caller passes the posterior and the window; nothing here reads a clock or a store.
 *
 * A hit sequence is a string of '1' (hit) and '0' (miss), oldest first: the form the estimator
 * keeps in Redis (`classKeys().window`), so the same bytes are tested live and in simulation.
 * The Page-Hinkley state is updated incrementally, one outcome at a time, by the estimator's
 * outcome script (estimatorApplyOutcome-3.lua mirrors `pageHinkleyStep`; a test checks they agree).
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

/** Page-Hinkley state after a whole hit sequence (oldest first), from `from`. */
export function pageHinkleyScan(seq: string, p: PageHinkleyParams, from: PageHinkleyState = PH_INITIAL): PageHinkleyState {
  let s = from;
  for (let i = 0; i < seq.length; i++) s = pageHinkleyStep(s, seq.charCodeAt(i) === 49 ? 1 : 0, p).state;
  return s;
}

export interface DriftParams {
  readonly tail: TailTestParams;
  readonly pageHinkley: PageHinkleyParams;
}

export interface DriftVerdict {
  readonly alarm: boolean;
  /** Which detector fired (tail test checked first), with its numbers. */
  readonly reason?: string;
  readonly tail: TailTestResult;
  readonly pageHinkley: { alarm: boolean; stat: number; n: number };
}

/** The Page-Hinkley verdict of a state: alarm when n ≥ minN and M_t − m_t > λ. */
export function pageHinkleyVerdict(s: PageHinkleyState, p: PageHinkleyParams): { alarm: boolean; stat: number; n: number } {
  const stat = s.max - s.cum;
  return { alarm: s.n >= p.minN && stat > p.lambda, stat, n: s.n };
}

/**
 * Runs both detectors on a class: the tail test on its posterior and stored window, Page-Hinkley
 * on its incremental state (kept since the class last (re)entered shadow, so the running mean
 * carries the class's whole recent history, not just one window).
 */
export function detectDrift(posterior: BetaParams, seq: string, ph: PageHinkleyState, p: DriftParams): DriftVerdict {
  const tail = tailTest(posterior, seq, p.tail);
  const phv = pageHinkleyVerdict(ph, p.pageHinkley);
  let reason: string | undefined;
  if (tail.alarm) {
    reason =
      `drift: tail test P(H<=${tail.hits} of ${tail.n} | Beta(${tail.before.a.toFixed(1)},${tail.before.b.toFixed(1)}))` +
      `=${tail.pValue.toExponential(2)} < ${p.tail.threshold}`;
  } else if (phv.alarm) {
    reason = `drift: page-hinkley stat ${phv.stat.toFixed(2)} > ${p.pageHinkley.lambda} after ${phv.n} outcomes`;
  }
  return { alarm: tail.alarm || phv.alarm, ...(reason === undefined ? {} : { reason }), tail, pageHinkley: phv };
}

/**
 * Drift detectors (M9.5): a multi-window Beta-Binomial tail test whose false-alarm rate holds at
 * every hit rate a class can have (0.05 to 0.95), and Page-Hinkley on the hit sequence, kept as a
 * reported statistic only. Pure and deterministic: the caller passes the hit sequence; nothing
 * here reads a clock or a store.
 *
 * A hit sequence is a string of '1' (hit) and '0' (miss), oldest first: the form the estimator
 * keeps in Redis (`classKeys().window`), so the same bytes are tested live, in replay and in the
 * benchmark.
 *
 * The test. At every outcome, for each window size w in `windows`, the last w outcomes are
 * compared with the outcomes before them in the stored sequence (the reference, at least
 * `minReference` of them): with the reference's r hits in m outcomes, the predictive
 * distribution of the window's hits is Beta-Binomial(w, 1 + r, 1 + m − r), and the window alarms
 * when P(H ≤ h) < level / |windows| (a Bonferroni split of `level`). The reference is the class's
 * own recent history, not its posterior: a prior far from the truth (a Beta(9, 1) passthrough
 * prior on a class that hits half the time) is not a drift, and the posterior's weight on the
 * prior would otherwise make a stationary class look like it dropped. Short windows catch steep
 * drops within a few outcomes; long ones catch moderate drops. Consecutive tests share most of
 * their outcomes, so the measured false-alarm rate per outcome is far below `level`: with the
 * defaults it is ≤ 1e-5 at every p in {0.05, 0.1, 0.3, 0.5, 0.7, 0.9, 0.95}
 * (`bench/drift`, 10^6 outcomes per p).
 *
 * Page-Hinkley (kept incrementally by the estimator's outcome script, which mirrors
 * `pageHinkleyStep`) is no longer an alarm: on a Bernoulli sequence its false-alarm rate grows
 * with the variance p(1 − p) (about 18% of stationary classes at p = 0.5-0.6 were killed within
 * 5,000 outcomes), so its statistic is only reported beside the verdict.
 */
import { betaBinomialCdf } from '../core/predictive.js';

export interface TailTestParams {
  /** Window sizes tested at every outcome (each the most recent w outcomes), ascending. */
  readonly windows: readonly number[];
  /** Total test level per outcome, split evenly over the windows. */
  readonly level: number;
  /** Reference outcomes (before a window) needed before that window is tested. */
  readonly minReference: number;
}

export interface PageHinkleyParams {
  /** Tolerated drop per outcome (δ): the statistic drifts up by δ per outcome while stationary. */
  readonly delta: number;
  /** Level λ_PH on max(m) − m that is reported as exceeded. */
  readonly lambda: number;
  /** Outcomes before the statistic is reported as meaningful. */
  readonly minN: number;
}

/** One window's test. */
export interface WindowTest {
  readonly window: number;
  readonly hits: number;
  readonly referenceN: number;
  readonly referenceHits: number;
  /** P(H ≤ hits) under Beta-Binomial(window, 1 + referenceHits, 1 + referenceN − referenceHits). */
  readonly pValue: number;
}

export interface TailTestResult {
  readonly alarm: boolean;
  /** The window with the smallest p-value (undefined when no window had enough reference). */
  readonly worst?: WindowTest;
  /** Per-window alarm level: level / windows.length. */
  readonly perWindowLevel: number;
}

/**
 * A cheap pre-check: a window whose hits are within 3 predictive standard deviations below the
 * mean (or above it) has a p-value above 1e-3, far above any alarm level, so the exact sum is
 * skipped. Exact for the decision: the alarm levels are ≤ 1e-3 (CalibrationConfigSchema).
 */
function clearlyTypical(h: number, w: number, a: number, b: number): boolean {
  const m = a / (a + b);
  const sd = Math.sqrt((w * m * (1 - m) * (a + b + w)) / (a + b + 1));
  return (h + 0.5 - w * m) / sd > -3;
}

/** Prefix hit counts of a sequence: cum[i] = hits among its first i outcomes. */
export function prefixHits(seq: string): Int32Array {
  const cum = new Int32Array(seq.length + 1);
  for (let i = 0; i < seq.length; i++) cum[i + 1] = cum[i]! + (seq.charCodeAt(i) === 49 ? 1 : 0);
  return cum;
}

/** The multi-window tail test on a hit sequence (oldest first). */
export function tailTest(seq: string, p: TailTestParams): TailTestResult {
  return tailTestPrefix(prefixHits(seq), 0, seq.length, p);
}

/**
 * The same test on prefix counts: the sequence is outcomes [start, end) of a longer history whose
 * prefix hit counts are `cum` (a simulation keeps one running array instead of rebuilding a string).
 */
export function tailTestPrefix(cum: ArrayLike<number>, start: number, end: number, p: TailTestParams): TailTestResult {
  const perWindowLevel = p.level / p.windows.length;
  let worst: WindowTest | undefined;
  let alarm = false;
  for (const w of p.windows) {
    const refN = end - start - w;
    if (refN < p.minReference) continue;
    const hits = cum[end]! - cum[end - w]!;
    const refHits = cum[end - w]! - cum[start]!;
    const a = 1 + refHits;
    const b = 1 + refN - refHits;
    if (clearlyTypical(hits, w, a, b)) continue;
    const pValue = betaBinomialCdf({ a, b }, w, hits);
    if (worst === undefined || pValue < worst.pValue) worst = { window: w, hits, referenceN: refN, referenceHits: refHits, pValue };
    if (pValue < perWindowLevel) alarm = true;
  }
  return { alarm, ...(worst === undefined ? {} : { worst }), perWindowLevel };
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
): { state: PageHinkleyState; stat: number; exceeded: boolean } {
  const n = s.n + 1;
  const mean = s.mean + (x - s.mean) / n;
  const cum = s.cum + (x - mean + p.delta);
  const max = Math.max(s.max, cum);
  const stat = max - cum;
  return { state: { n, mean, cum, max }, stat, exceeded: n >= p.minN && stat > p.lambda };
}

/** Page-Hinkley state after a whole hit sequence (oldest first), from `from`. */
export function pageHinkleyScan(seq: string, p: PageHinkleyParams, from: PageHinkleyState = PH_INITIAL): PageHinkleyState {
  let s = from;
  for (let i = 0; i < seq.length; i++) s = pageHinkleyStep(s, seq.charCodeAt(i) === 49 ? 1 : 0, p).state;
  return s;
}

/** The Page-Hinkley statistic of a state, and whether it exceeds λ_PH (reported, not an alarm). */
export function pageHinkleyVerdict(s: PageHinkleyState, p: PageHinkleyParams): { exceeded: boolean; stat: number; n: number } {
  const stat = s.max - s.cum;
  return { exceeded: s.n >= p.minN && stat > p.lambda, stat, n: s.n };
}

export interface DriftParams {
  readonly tail: TailTestParams;
  readonly pageHinkley: PageHinkleyParams;
}

export interface DriftVerdict {
  readonly alarm: boolean;
  /** The alarm's reason with its numbers. */
  readonly reason?: string;
  readonly tail: TailTestResult;
  readonly pageHinkley: { exceeded: boolean; stat: number; n: number };
}

/**
 * Runs the detector on a class's stored hit sequence; the Page-Hinkley statistic of its
 * incremental state is reported beside the verdict.
 */
export function detectDrift(seq: string, ph: PageHinkleyState, p: DriftParams): DriftVerdict {
  return detectDriftPrefix(prefixHits(seq), 0, seq.length, ph, p);
}

/**
 * `detectDrift` on outcomes [start, end) of a longer sequence whose prefix hit counts are `cum`:
 * the same verdict as `detectDrift` on that slice (the estimator tests consecutive windows of a
 * class's batch on one prefix array instead of recounting each window).
 */
export function detectDriftPrefix(cum: ArrayLike<number>, start: number, end: number, ph: PageHinkleyState, p: DriftParams): DriftVerdict {
  const tail = tailTestPrefix(cum, start, end, p.tail);
  const phv = pageHinkleyVerdict(ph, p.pageHinkley);
  let reason: string | undefined;
  if (tail.alarm && tail.worst !== undefined) {
    const w = tail.worst;
    reason =
      `drift: tail test P(H<=${w.hits} of ${w.window} | ${w.referenceHits}/${w.referenceN} before)` +
      `=${w.pValue.toExponential(2)} < ${tail.perWindowLevel.toExponential(2)}`;
  }
  return { alarm: tail.alarm, ...(reason === undefined ? {} : { reason }), tail, pageHinkley: phv };
}

/**
 * The per-class stage machine and its promotion gates (M9): shadow → canary → online, any
 * live stage → killed on a drift alarm, killed → shadow after the cooldown. Pure: the estimator
 * reads a class snapshot from Redis, calls `nextTransition`, then applies the result with a
 * compare-and-set script. Every transition carries a reason string.
 */
import type { BetaParams, Stage } from '../core/types.js';
import { betaBinomialInterval } from './beta.js';
import type { CalibrationConfig } from './config.js';
import { detectDrift, detectDriftPrefix, type PageHinkleyState } from './detectors.js';

/** Stages a live class can be in (`replay` is offline only). */
export type LiveStage = Exclude<Stage, 'replay'>;

/** What the estimator knows about a class after applying an outcome (read atomically). */
export interface ClassSnapshot {
  readonly stage: LiveStage;
  /** Current posterior Beta(a0 + hits, b0 + misses). */
  readonly posterior: BetaParams;
  /** Recent hit sequence, oldest first ('1' hit, '0' miss), at most windowCap long. */
  readonly window: string;
  /**
   * Optional: `window` is outcomes [start, end) of a longer sequence whose prefix hit counts are
   * `cum` (prefixHits). The detector then counts from `cum`; the verdict is the same.
   */
  readonly windowHits?: { readonly cum: ArrayLike<number>; readonly start: number; readonly end: number };
  /** Posterior-updating outcomes (hit, miss, shadow_hit, shadow_miss) since the stage began. */
  readonly stageN: number;
  /** Real speculation outcomes (hit, miss, cancelled) since the stage began. */
  readonly stageRealN: number;
  readonly stageSavedMs: number;
  readonly stageWasteNanoUsd: number;
  readonly stageFencing: number;
  /** Page-Hinkley state since the class last (re)entered shadow. */
  readonly ph: PageHinkleyState;
}

export interface Transition {
  readonly from: LiveStage;
  readonly to: LiveStage;
  readonly reason: string;
  /** True when the transition is a drift alarm (the caller sets the kill switch first). */
  readonly alarm: boolean;
}

/** M9.2 calibration gate: hits of the last nMin outcomes inside the posterior predictive interval. */
export function calibrationGate(
  s: ClassSnapshot,
  cfg: CalibrationConfig,
): { pass: boolean; hits: number; n: number; lo: number; hi: number } {
  const n = Math.min(cfg.nMin, s.window.length);
  const recent = s.window.slice(s.window.length - n);
  let hits = 0;
  for (let i = 0; i < recent.length; i++) if (recent.charCodeAt(i) === 49) hits++;
  const a = Math.max(1e-6, s.posterior.a - hits);
  const b = Math.max(1e-6, s.posterior.b - (n - hits));
  const { lo, hi } = betaBinomialInterval(n, a, b, cfg.calibrationLevel);
  return { pass: n >= cfg.nMin && hits >= lo && hits <= hi, hits, n, lo, hi };
}

/** M9.3 canary gate: realized net value λ·seconds saved − dollars wasted, in dollars. */
export function realizedNetUsd(s: ClassSnapshot, lambdaUsdPerSec: number): number {
  return lambdaUsdPerSec * (s.stageSavedMs / 1000) - s.stageWasteNanoUsd / 1e9;
}

/**
 * The transition a class should take now, or null. Drift detection runs only where speculation
 * really happens (canary, online): a shadow class launches nothing, and its promotion is
 * already guarded by the calibration gate.
 */
export function nextTransition(s: ClassSnapshot, cfg: CalibrationConfig, lambdaUsdPerSec: number): Transition | null {
  if (s.stage === 'canary' || s.stage === 'online') {
    const v = s.windowHits === undefined ? detectDrift(s.window, s.ph, cfg) : detectDriftPrefix(s.windowHits.cum, s.windowHits.start, s.windowHits.end, s.ph, cfg);
    if (v.alarm) return { from: s.stage, to: 'killed', reason: v.reason ?? 'drift', alarm: true };
  }
  if (s.stage === 'shadow' && s.stageN >= cfg.nMin) {
    const g = calibrationGate(s, cfg);
    if (g.pass) {
      return {
        from: 'shadow',
        to: 'canary',
        reason: `calibrated: ${g.hits}/${g.n} hits inside the ${cfg.calibrationLevel} predictive interval [${g.lo}, ${g.hi}]`,
        alarm: false,
      };
    }
  }
  if (s.stage === 'canary') {
    if (s.stageFencing > 0) {
      return { from: 'canary', to: 'shadow', reason: `fencing violation in canary (${s.stageFencing})`, alarm: false };
    }
    if (s.stageRealN >= cfg.nMin) {
      const net = realizedNetUsd(s, lambdaUsdPerSec);
      if (net >= 0) {
        return {
          from: 'canary',
          to: 'online',
          reason: `net value $${net.toFixed(6)} >= 0 over ${s.stageRealN} canary outcomes, no fencing violation`,
          alarm: false,
        };
      }
    }
  }
  return null;
}

/** killed → shadow once the cooldown has elapsed. */
export function cooldownTransition(stage: LiveStage, killedUntilMs: number, nowMs: number): Transition | null {
  if (stage !== 'killed' || nowMs < killedUntilMs) return null;
  return { from: 'killed', to: 'shadow', reason: 'cooldown elapsed: re-entering shadow', alarm: false };
}

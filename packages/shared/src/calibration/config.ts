/**
 * Calibration configuration (M9): detector parameters, promotion gates, canary fraction and
 * cooldown, with the documented defaults (docs/estimator.md). Per-tenant overrides are a partial
 * object validated with `CalibrationOverridesSchema` and merged over the defaults once.
 */
import { z } from 'zod';

export const CalibrationConfigSchema = z.object({
  /** Outcomes a class must see in shadow (and real outcomes in canary) before a promotion. */
  nMin: z.number().int().positive(),
  /** Mass of the posterior predictive interval the shadow hit count must fall in (calibration gate). */
  calibrationLevel: z.number().gt(0).lt(1),
  /** Fraction of eligible decisions a canary class really speculates on (`canarySampled`). */
  canaryFraction: z.number().min(0).max(1),
  /** How long a killed class stays killed before it re-enters shadow. */
  cooldownMs: z.number().int().nonnegative(),
  tail: z.object({
    /** Window sizes tested at every outcome, ascending (the multi-window tail test, M9.5). */
    windows: z.array(z.number().int().positive()).min(1).max(16),
    /** Total test level per outcome, split evenly over the windows (≤ 1e-3: see detectors.ts). */
    level: z.number().gt(0).max(1e-3),
    /** Reference outcomes before a window needed to test it. */
    minReference: z.number().int().positive(),
  }),
  /** Page-Hinkley statistic, reported beside the verdict (not an alarm). */
  pageHinkley: z.object({
    delta: z.number().nonnegative(),
    lambda: z.number().positive(),
    minN: z.number().int().positive(),
  }),
  /** Outcomes kept in the class's window list (raised to cover the largest window plus its reference, and nMin). */
  windowCap: z.number().int().positive(),
  /** Drift suspicion (suspect.ts): the CUSUM that lets the decision's P follow a drop before the kill. */
  suspect: z.object({
    /** `cusum` (the CUSUM switch) or `changepoint` (the Bayes predictive under a change-point model); suspect.ts. */
    method: z.enum(['cusum', 'changepoint']),
    /** changepoint: prior probability of a change before each outcome. */
    hazard: z.number().gt(0).lt(1),
    /** changepoint: a new segment's prior mean, the whole-history mean (`whole`) or that minus `drop` (`drop`). */
    segmentPrior: z.enum(['whole', 'drop']),
    /** Drop of the hit rate the CUSUM is tuned to; 0 turns suspicion (either method) off. */
    drop: z.number().min(0).max(1),
    /** CUSUM level (nats) above which the class is suspect, at α ≤ 0.5. */
    threshold: z.number().positive(),
    /** The level at α = 1 (linear in between): latency first asks for more evidence. */
    thresholdAtAlpha1: z.number().positive(),
    /** Most recent outcomes the CUSUM runs over. */
    window: z.number().int().positive().max(600),
    /** Outcomes the whole-history mean counts for in a suspect class's segment posterior. */
    weight: z.number().positive(),
  }),
});
export type CalibrationConfig = z.infer<typeof CalibrationConfigSchema>;

/**
 * Defaults. Measured by `bench/drift` (docs/estimator.md): ≤ 1e-5 false alarms per stationary
 * outcome at every p from 0.05 to 0.95; for a drop of the hit rate from 0.9 to 0.2 on a class
 * with ≥ 100 outcomes of history, 99% of alarms come within DETECTION_BOUND_OUTCOMES outcomes
 * (the derived bound of bound.ts; the test checks it by simulation).
 */
export const DEFAULT_CALIBRATION: CalibrationConfig = {
  nMin: 30,
  calibrationLevel: 0.95,
  canaryFraction: 0.2,
  cooldownMs: 60_000,
  tail: { windows: [8, 12, 16, 24, 32, 48, 64, 96, 128, 192], level: 6e-5, minReference: 30 },
  pageHinkley: { delta: 0.05, lambda: 15, minN: 30 },
  windowCap: 600,
  suspect: { method: 'cusum', hazard: 0.03, segmentPrior: 'whole', drop: 0.2, threshold: 2.25, thresholdAtAlpha1: 3, window: 64, weight: 4 },
};

/** The stated bound for the defaults (0.9 → 0.2, ≥ 100 outcomes of history, 99% of alarms). */
export const DETECTION_BOUND_OUTCOMES = 25;

export const CalibrationOverridesSchema = z.object({
  nMin: z.number().int().positive().optional(),
  calibrationLevel: z.number().gt(0).lt(1).optional(),
  canaryFraction: z.number().min(0).max(1).optional(),
  cooldownMs: z.number().int().nonnegative().optional(),
  tail: CalibrationConfigSchema.shape.tail.partial().optional(),
  pageHinkley: CalibrationConfigSchema.shape.pageHinkley.partial().optional(),
  windowCap: z.number().int().positive().optional(),
  suspect: CalibrationConfigSchema.shape.suspect.partial().optional(),
});
export type CalibrationOverrides = z.infer<typeof CalibrationOverridesSchema>;

/** Defaults merged with overrides, validated, windowCap raised to cover the window and nMin. */
export function resolveCalibration(
  overrides: CalibrationOverrides = {},
  base: CalibrationConfig = DEFAULT_CALIBRATION,
): CalibrationConfig {
  const merged = {
    ...base,
    ...overrides,
    tail: { ...base.tail, ...(overrides.tail ?? {}) },
    pageHinkley: { ...base.pageHinkley, ...(overrides.pageHinkley ?? {}) },
    suspect: { ...base.suspect, ...(overrides.suspect ?? {}) },
  };
  const cfg = CalibrationConfigSchema.parse(merged);
  const windows = [...cfg.tail.windows].sort((x, y) => x - y);
  const largest = windows[windows.length - 1] ?? 0;
  return {
    ...cfg,
    tail: { ...cfg.tail, windows },
    windowCap: Math.max(cfg.windowCap, largest + cfg.tail.minReference, cfg.nMin, cfg.pageHinkley.minN, cfg.suspect.window),
  };
}

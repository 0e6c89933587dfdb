/**
 * M4 (the rule) with M1 (join: P is the product over pending upstream edges), M5 (P from the
 * posterior) and the gates of M6, M9 and M10. One implementation, shared by the live scheduler,
 * the estimator and offline replay:
 *
 *   L  = λ · ΔT
 *   EV = P · L − (1 − P) · C_fail
 *   SPECULATE  iff  EV ≥ (1 − α) · C_spec          (threshold = (1 − α) · C_spec)
 *
 * Gate order (first failing gate is the reason): disabled → inadmissible (rule not evaluated) →
 * killed → estimator_unavailable → no_prediction → unpriced (no price for the node's model: C_spec unknown, never taken
 * as free) → zero_value (ΔT = 0 or L = 0: a launch is a pure cost, M4) → the rule
 * (below_threshold) → stage (shadow never launches, canary only when sampled) → budget. Every
 * numeric field is computed and recorded even when waiting.
 */
import { ValidationError } from '../errors.js';
import { isValidDial, validateDial } from './dial.js';
import { pointEstimate } from './posterior.js';
import type { BetaParams, DecisionReason, Dial, PosteriorMode, Stage } from './types.js';

/** One pending upstream edge of the node being decided. */
export interface PendingEdge {
  readonly posterior: BetaParams;
  readonly mode?: PosteriorMode;
}

export interface DecisionFlags {
  /** M6: effects allow speculation and disclosure is allowed. */
  readonly admissible: boolean;
  /** M9: kill-switch (class, tenant, global). */
  readonly killed: boolean;
  /** M9: no fresh estimator heartbeat (nothing watches for drift): WAIT `estimator_unavailable`. */
  readonly estimatorUnavailable?: boolean;
  /** A guess is available for every pending upstream. */
  readonly hasPrediction: boolean;
  /** M10: the tenant's speculative budget can cover C_spec. */
  readonly budgetOk: boolean;
  /** Speculation is on for the run and the edge. */
  readonly speculationEnabled: boolean;
  /** M9 canary: the caller sampled this decision for a real launch. */
  readonly canarySampled?: boolean;
  /** M2: the node's model has no price (C_spec unknown): WAIT with `unpriced`. */
  readonly unpriced?: boolean;
}

export interface DecideInput {
  readonly edges: readonly PendingEdge[];
  /** Cost of the speculative attempt, predictor cost included (M10), dollars. */
  readonly cSpecUsd: number;
  /** Cost of producing the guess, already included in cSpecUsd (recorded separately). */
  readonly predictorUsd?: number;
  /** Money lost on a miss (M4/M8); defaults to cSpecUsd (no cancellation). */
  readonly cFailUsd?: number;
  readonly deltaTSec: number;
  readonly dial: Dial;
  readonly stage: Stage;
  readonly flags: DecisionFlags;
}

export interface PosteriorUsed {
  readonly a: number;
  readonly b: number;
  readonly mode: 'mean' | 'lcb';
  readonly quantile?: number;
}

/** The decision fields of DecisionRecordSchema (schemas/records.ts), without ids and time. */
export interface Decision {
  readonly action: 'SPECULATE' | 'WAIT';
  readonly reason: DecisionReason;
  readonly p: number;
  readonly cSpecUsd: number;
  readonly cFailUsd: number;
  readonly deltaTSec: number;
  readonly lUsd: number;
  readonly evUsd: number;
  readonly thresholdUsd: number;
  readonly alpha: number;
  readonly lambdaUsdPerSec: number;
  readonly stage: Stage;
  readonly posteriors: PosteriorUsed[];
  readonly predictorUsd: number;
}

function posteriorUsed(e: PendingEdge): PosteriorUsed {
  const mode = e.mode ?? { kind: 'mean' };
  return mode.kind === 'mean'
    ? { a: e.posterior.a, b: e.posterior.b, mode: 'mean' }
    : { a: e.posterior.a, b: e.posterior.b, mode: 'lcb', quantile: mode.quantile };
}

/** M1: P that every pending upstream's guess matches (edges independent). */
export function jointProbability(edges: readonly PendingEdge[]): number {
  let p = 1;
  for (const e of edges) p *= pointEstimate(e.posterior, e.mode ?? { kind: 'mean' });
  return p;
}

/** M4: EV = P·L − (1 − P)·C_fail. */
export function expectedValueUsd(p: number, lUsd: number, cFailUsd: number): number {
  return p * lUsd - (1 - p) * cFailUsd;
}

/** M4: the preference threshold (1 − α)·C_spec. */
export function thresholdUsd(alpha: number, cSpecUsd: number): number {
  return (1 - alpha) * cSpecUsd;
}

function stageAllowsLaunch(stage: Stage, canarySampled: boolean): boolean {
  if (stage === 'shadow' || stage === 'killed') return false;
  if (stage === 'canary') return canarySampled;
  // `online`, and `replay` (offline counterfactual: the caller asks what the rule would do).
  return true;
}

const okAmount = (v: number | undefined): boolean => v === undefined || (Number.isFinite(v) && v >= 0);

function checkAmounts(input: DecideInput): void {
  // The valid case (every decision) allocates nothing.
  if (okAmount(input.cSpecUsd) && okAmount(input.cFailUsd) && okAmount(input.predictorUsd) && okAmount(input.deltaTSec)) return;
  const issues: { path: string; message: string }[] = [];
  for (const field of ['cSpecUsd', 'cFailUsd', 'predictorUsd', 'deltaTSec'] as const) {
    const v = input[field];
    if (v !== undefined && !(Number.isFinite(v) && v >= 0)) issues.push({ path: field, message: `must be a finite number ≥ 0, got ${v}` });
  }
  if (issues.length > 0) throw new ValidationError(issues);
}

/**
 * M4: the decision for one downstream node, with every field of its record. For a cascade
 * (M8, depth > 1) pass every edge along the speculative chain: P is their product.
 */
export function decide(input: DecideInput): Decision {
  checkAmounts(input);
  const dial = isValidDial(input.dial) ? input.dial : validateDial(input.dial, 'dial');
  const p = jointProbability(input.edges);
  const cSpecUsd = input.cSpecUsd;
  const cFailUsd = input.cFailUsd ?? cSpecUsd;
  const lUsd = dial.lambdaUsdPerSec * input.deltaTSec;
  const evUsd = expectedValueUsd(p, lUsd, cFailUsd);
  const threshold = thresholdUsd(dial.alpha, cSpecUsd);
  const f = input.flags;
  let reason: DecisionReason;
  if (!f.speculationEnabled) reason = 'disabled';
  else if (!f.admissible) reason = 'inadmissible';
  else if (f.killed || input.stage === 'killed') reason = 'killed';
  else if (f.estimatorUnavailable === true) reason = 'estimator_unavailable';
  else if (!f.hasPrediction) reason = 'no_prediction';
  else if (f.unpriced === true) reason = 'unpriced';
  else if (!(lUsd > 0)) reason = 'zero_value';
  else if (!(evUsd >= threshold)) reason = 'below_threshold';
  else if (!stageAllowsLaunch(input.stage, f.canarySampled ?? false)) reason = 'stage';
  else if (!f.budgetOk) reason = 'budget';
  else reason = 'ev';
  return {
    action: reason === 'ev' ? 'SPECULATE' : 'WAIT',
    reason,
    p,
    cSpecUsd,
    cFailUsd,
    deltaTSec: input.deltaTSec,
    lUsd,
    evUsd,
    thresholdUsd: threshold,
    alpha: dial.alpha,
    lambdaUsdPerSec: dial.lambdaUsdPerSec,
    stage: input.stage,
    posteriors: input.edges.map(posteriorUsed),
    predictorUsd: input.predictorUsd ?? 0,
  };
}

/** M4: with C_fail = C_spec, speculate iff P ≥ P* = (2 − α)·C_spec / (L + C_spec). */
export function pStar(alpha: number, lUsd: number, cSpecUsd: number): number {
  return ((2 - alpha) * cSpecUsd) / (lUsd + cSpecUsd);
}

/** M5 self-limit: with k equally likely outcomes (P = 1/k) the rule waits iff k > (1 + ρ)/(2 − α), ρ = L/C_spec. */
export function kCrit(alpha: number, rho: number): number {
  return (1 + rho) / (2 - alpha);
}

/** The fields of a decision record that bound λ. */
export type LambdaEvidence = Pick<Decision, 'action' | 'reason' | 'p' | 'cSpecUsd' | 'cFailUsd' | 'deltaTSec' | 'alpha'>;

export interface ImpliedLambda {
  /** Midpoint of the tightest bounds (the one bound when only one side is known; undefined when none). */
  readonly lambdaUsdPerSec: number | undefined;
  /** Largest lower bound from SPECULATE records (0 when none). */
  readonly lowerUsdPerSec: number;
  /** Smallest upper bound from WAIT (below_threshold) records (Infinity when none). */
  readonly upperUsdPerSec: number;
  /** False when the records cannot come from one λ (lower > upper). */
  readonly consistent: boolean;
}

/**
 * M4 inverse: recover λ from decisions made at an unknown λ. Each rule-decided record gives the
 * break-even λ_i = ((1 − α)·C_spec + (1 − P)·C_fail) / (P·ΔT): SPECULATE ⇒ λ ≥ λ_i, WAIT ⇒ λ < λ_i.
 * Records decided by a gate (killed, stage, budget, …) or with P·ΔT = 0 say nothing about λ.
 * Stage and budget gates come after the rule, so a `stage`/`budget` WAIT still proves λ ≥ λ_i.
 */
export function impliedLambda(records: readonly LambdaEvidence[]): ImpliedLambda {
  let lower = 0;
  let upper = Number.POSITIVE_INFINITY;
  for (const r of records) {
    const denom = r.p * r.deltaTSec;
    if (!(denom > 0)) continue;
    const breakEven = ((1 - r.alpha) * r.cSpecUsd + (1 - r.p) * r.cFailUsd) / denom;
    const passedRule = r.reason === 'ev' || r.reason === 'stage' || r.reason === 'budget';
    if (passedRule) lower = Math.max(lower, breakEven);
    else if (r.reason === 'below_threshold') upper = Math.min(upper, breakEven);
  }
  const hasUpper = Number.isFinite(upper);
  const lambda = hasUpper ? (lower + upper) / 2 : lower > 0 ? lower : undefined;
  return { lambdaUsdPerSec: lambda, lowerUsdPerSec: lower, upperUsdPerSec: upper, consistent: lower <= upper };
}

/**
 * Decision records and outcomes (METHOD.md M4): the one record that is logged, streamed,
 * stored, replayed and tested. All money in float dollars here (decision arithmetic); ledgers
 * that persist money use integer nano-dollars (see core/money.ts).
 */
import { z } from 'zod';
import { DECISION_REASONS, OUTCOME_KINDS, STAGES } from '../core/types.js';

export const PosteriorUsedSchema = z.object({
  a: z.number().positive(),
  b: z.number().positive(),
  /** `mean`, or `lcb` with the quantile used. */
  mode: z.enum(['mean', 'lcb']),
  quantile: z.number().min(0).max(1).optional(),
});

export const DecisionRecordSchema = z.object({
  decisionId: z.string().min(1),
  /** `plan` at submission, `runtime` when an upstream starts, `stream` when re-made from a prefix. */
  phase: z.enum(['plan', 'runtime', 'stream']),
  tenant: z.string(),
  workflow: z.string(),
  runId: z.string(),
  /** The downstream node being decided. */
  node: z.string(),
  /** Edge classes whose predictions the decision depends on (M1: one per pending upstream). */
  edgeClasses: z.array(z.string()),
  action: z.enum(['SPECULATE', 'WAIT']),
  reason: z.enum(DECISION_REASONS),
  /** Success probability used (product over pending upstream edges). */
  p: z.number().min(0).max(1),
  cSpecUsd: z.number().nonnegative(),
  cFailUsd: z.number().nonnegative(),
  deltaTSec: z.number().nonnegative(),
  lUsd: z.number().nonnegative(),
  evUsd: z.number(),
  thresholdUsd: z.number().nonnegative(),
  alpha: z.number().min(0).max(1),
  lambdaUsdPerSec: z.number().nonnegative(),
  stage: z.enum(STAGES),
  posteriors: z.array(PosteriorUsedSchema),
  /** Cost of producing the guess (M10), included in cSpecUsd. */
  predictorUsd: z.number().nonnegative().default(0),
  atMs: z.number().int().nonnegative(),
});
export type DecisionRecord = z.infer<typeof DecisionRecordSchema>;

/** Outcome kinds that may carry `evidence: false` (a launched speculation's). */
export const NO_EVIDENCE_KINDS: ReadonlySet<string> = new Set(['hit', 'miss', 'cancelled']);

export const OutcomeSchema = z.object({
  /** Idempotency key: an outcome delivered twice counts once. */
  outcomeId: z.string().min(1),
  decisionId: z.string().min(1),
  tenant: z.string(),
  workflow: z.string(),
  runId: z.string(),
  edgeClass: z.string(),
  kind: z.enum(OUTCOME_KINDS),
  /** For a not-launched guess (shadow_hit / shadow_miss): why the decision waited (M5). */
  waitReason: z.enum(DECISION_REASONS).optional(),
  /** Dollars spent on the speculation that bought nothing (0 on a hit); paid guesses excluded. */
  wasteUsd: z.number().nonnegative(),
  /**
   * M10: price of the paid guess of this edge that the speculation was launched on: sunk once
   * bought, so booked as guess spend on a hit and on a miss alike (absent when the guess was free).
   */
  guessUsd: z.number().nonnegative().optional(),
  /** Realized seconds of workflow latency saved (0 on a miss). */
  secondsSaved: z.number().nonnegative(),
  /** True when a fencing check rejected a late result during this speculation. */
  fencingViolation: z.boolean().default(false),
  /**
   * M5: `false` when the outcome carries value (seconds saved, waste, guess spend) but is no
   * evidence about the class's guesses: the speculation was launched on an upstream output the
   * stream had already settled (M8), so that edge's "guess" was known, not predicted. The
   * estimator books its value and leaves the posterior and the drift detector alone; the guess
   * the class really made for that upstream is scored by its own (WAIT) decision. Absent: evidence.
   * Only a launched speculation's outcome (hit, miss, cancelled) can carry no evidence: a shadow
   * outcome is nothing but evidence.
   */
  evidence: z.boolean().optional(),
  atMs: z.number().int().nonnegative(),
}).refine((o) => o.evidence !== false || NO_EVIDENCE_KINDS.has(o.kind), {
  path: ['evidence'],
  message: 'false is allowed only on a launched speculation\'s outcome (hit, miss, cancelled), not on a shadow outcome',
});
export type Outcome = z.infer<typeof OutcomeSchema>;

/** M5: whether an outcome is evidence for its class's posterior and drift detector (see `evidence`). */
export function isEvidence(o: Pick<Outcome, 'evidence'>): boolean {
  return o.evidence !== false;
}

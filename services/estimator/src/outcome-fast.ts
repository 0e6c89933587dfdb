/**
 * A fast, sound check of OutcomeSchema for the estimator's hot path (issue 13 item 2): the zod
 * parse costs several times the JSON.parse of an outcome. `outcomeFast` returns the outcome only
 * when OutcomeSchema would accept the value and produce the same fields (its default applied,
 * unknown keys dropped); otherwise `undefined`, and the caller runs OutcomeSchema, which decides
 * and names the reason. It may decline a value zod accepts (zod then accepts it), never the
 * reverse: `outcome-fast.test.ts` checks both directions against OutcomeSchema on valid outcomes
 * and on many mutated ones.
 */
import { DECISION_REASONS, NO_EVIDENCE_KINDS, OUTCOME_KINDS, type Outcome } from '@gambit/shared';

const KINDS: ReadonlySet<unknown> = new Set(OUTCOME_KINDS);
const REASONS: ReadonlySet<unknown> = new Set(DECISION_REASONS);

const nonNegative = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v) && v >= 0;

export function outcomeFast(json: unknown): Outcome | undefined {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) return undefined;
  const o = json as Record<string, unknown>;
  const { outcomeId, decisionId, tenant, workflow, runId, edgeClass, kind, waitReason, wasteUsd, guessUsd, secondsSaved, fencingViolation, evidence, atMs } = o;
  if (typeof outcomeId !== 'string' || outcomeId.length === 0) return undefined;
  if (typeof decisionId !== 'string' || decisionId.length === 0) return undefined;
  if (typeof tenant !== 'string' || typeof workflow !== 'string' || typeof runId !== 'string' || typeof edgeClass !== 'string') return undefined;
  if (!KINDS.has(kind)) return undefined;
  if (waitReason !== undefined && !REASONS.has(waitReason)) return undefined;
  if (!nonNegative(wasteUsd) || !nonNegative(secondsSaved)) return undefined;
  if (guessUsd !== undefined && !nonNegative(guessUsd)) return undefined;
  if (fencingViolation !== undefined && typeof fencingViolation !== 'boolean') return undefined;
  // M5: `evidence: false` only on a launched speculation's outcome (OutcomeSchema's refinement).
  if (evidence !== undefined && (typeof evidence !== 'boolean' || (evidence === false && !NO_EVIDENCE_KINDS.has(kind as string)))) return undefined;
  if (typeof atMs !== 'number' || !Number.isSafeInteger(atMs) || atMs < 0) return undefined;
  // One object literal of a fixed shape, the optional fields added after (conditional spreads
  // would allocate and copy on every outcome).
  const out: { -readonly [K in keyof Outcome]: Outcome[K] } = {
    outcomeId,
    decisionId,
    tenant,
    workflow,
    runId,
    edgeClass,
    kind: kind as Outcome['kind'],
    wasteUsd,
    secondsSaved,
    fencingViolation: fencingViolation ?? false,
    atMs,
  };
  if (waitReason !== undefined) out.waitReason = waitReason as NonNullable<Outcome['waitReason']>;
  if (guessUsd !== undefined) out.guessUsd = guessUsd;
  if (evidence !== undefined) out.evidence = evidence;
  return out;
}

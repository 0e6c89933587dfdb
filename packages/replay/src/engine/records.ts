/**
 * M4: replayed decisions as the project's one decision record (schemas/records.ts), so replay
 * output can be logged, compared and tested with the same schema as live decisions, together
 * with the outcome joined to it by decision id.
 */
import { type DecisionRecord, DecisionRecordSchema, nanoToUsd, type Outcome, OutcomeSchema } from '@gambit/shared';
import type { Run } from '../trace.js';
import type { PolicyName, ReplayDecision } from './schedule.js';

/** The decision record and its outcome (null when the policy did not speculate). */
export function toDecisionRecord(
  run: Run,
  policy: PolicyName,
  d: ReplayDecision,
): { record: DecisionRecord; outcome: Outcome | null } {
  const decisionId = `replay:${policy}:${run.runId}:${d.node}`;
  const atMs = Math.round(run.startUnixMs + d.atMs);
  const record = DecisionRecordSchema.parse({
    decisionId,
    phase: 'runtime',
    tenant: run.tenant,
    workflow: run.workflow,
    runId: run.runId,
    node: d.node,
    edgeClasses: [...d.edgeClasses],
    // The record says what the policy did; `reason` stays the rule's own verdict.
    ...d.decision,
    action: d.speculated ? 'SPECULATE' : 'WAIT',
    posteriors: d.decision.posteriors.map((p) => ({ ...p })),
    atMs,
  });
  if (!d.speculated) return { record, outcome: null };
  const outcome = OutcomeSchema.parse({
    outcomeId: `${decisionId}:outcome`,
    decisionId,
    tenant: run.tenant,
    workflow: run.workflow,
    runId: run.runId,
    edgeClass: d.edgeClasses.join('+'),
    kind: d.hit ? 'hit' : 'miss',
    wasteUsd: nanoToUsd(d.wasteNano),
    secondsSaved: d.savedMs / 1000,
    atMs,
  });
  return { record, outcome };
}

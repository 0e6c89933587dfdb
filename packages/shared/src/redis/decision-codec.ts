/**
 * How a decision record (M4) is stored in a run's `decisions` list (issue 13 item 3): a JSON array
 * of its values in a fixed order instead of an object with its field names, and without what the
 * run already says (tenant, workflow, run id; the run-id prefix of the decision id and the
 * `tenant/workflow/` prefix of each edge class). A plan-phase WAIT takes about 110 bytes instead of
 * about 490. `decodeDecision` restores the full record given the run; a stored object (a record
 * written before this encoding) is read as it is. Every number is kept as JSON writes it, so a
 * decoded record equals the encoded one field for field.
 */
import { type DecisionRecord, DecisionRecordSchema } from '../schemas/records.js';

/** Version tag, the array's first element. */
const V = 2;

export interface DecisionContext {
  readonly tenant: string;
  readonly workflow: string;
  readonly runId: string;
}

function shorten(value: string, prefix: string): string {
  return value.startsWith(prefix) ? `~${value.slice(prefix.length)}` : value;
}

function lengthen(value: string, prefix: string): string {
  return value.startsWith('~') ? `${prefix}${value.slice(1)}` : value;
}

/** The stored text of a decision record. */
export function encodeDecision(d: DecisionRecord): string {
  const classPrefix = `${d.tenant}/${d.workflow}/`;
  return JSON.stringify([
    V,
    shorten(d.decisionId, `${d.runId}:`),
    d.phase,
    d.node,
    d.edgeClasses.map((c) => shorten(c, classPrefix)),
    d.action,
    d.reason,
    d.p,
    d.cSpecUsd,
    d.cFailUsd,
    d.deltaTSec,
    d.lUsd,
    d.evUsd,
    d.thresholdUsd,
    d.alpha,
    d.lambdaUsdPerSec,
    d.stage,
    d.posteriors,
    d.predictorUsd,
    d.atMs,
  ]);
}

/** The decision record stored as `text` in the run `ctx` (validated: an invalid entry is an error). */
export function decodeDecision(text: string, ctx: DecisionContext): DecisionRecord {
  const raw: unknown = JSON.parse(text);
  if (!Array.isArray(raw)) return DecisionRecordSchema.parse(raw);
  if (raw[0] !== V || raw.length !== 20) throw new Error(`run ${ctx.tenant}/${ctx.runId}: stored decision has an unknown encoding (version ${String(raw[0])}, ${raw.length} values)`);
  const classPrefix = `${ctx.tenant}/${ctx.workflow}/`;
  return DecisionRecordSchema.parse({
    decisionId: lengthen(String(raw[1]), `${ctx.runId}:`),
    phase: raw[2],
    tenant: ctx.tenant,
    workflow: ctx.workflow,
    runId: ctx.runId,
    node: raw[3],
    edgeClasses: Array.isArray(raw[4]) ? raw[4].map((c) => lengthen(String(c), classPrefix)) : raw[4],
    action: raw[5],
    reason: raw[6],
    p: raw[7],
    cSpecUsd: raw[8],
    cFailUsd: raw[9],
    deltaTSec: raw[10],
    lUsd: raw[11],
    evUsd: raw[12],
    thresholdUsd: raw[13],
    alpha: raw[14],
    lambdaUsdPerSec: raw[15],
    stage: raw[16],
    posteriors: raw[17],
    predictorUsd: raw[18],
    atMs: raw[19],
  });
}

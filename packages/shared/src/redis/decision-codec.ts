/**
 * How a decision record (M4) is stored in a run's `decisions` list (issue 13 item 3): a JSON array
 * of its values in a fixed order instead of an object with its field names, and without what the
 * run already says (tenant, workflow, run id; the `tenant/workflow/` prefix of each edge class).
 *
 * Version 3 (written now): `[3, node, phase, edgeClasses, action, reason, atMs - run createdAtMs,
 * alpha, lambdaUsdPerSec, stage, p, cSpecUsd, cFailUsd, deltaTSec, lUsd, evUsd, thresholdUsd,
 * posteriors, predictorUsd, decisionId]`, its trailing values left out while they are their
 * default (0, [] for posteriors, `<runId>:<node>:<phase>` for the decision id): a plan-phase WAIT
 * of a run without speculation is `[3,"b","plan",["~a->b"],"WAIT","disabled",0,0.5,0.01,"online"]`,
 * about 55 bytes. A decision id that is not the default is stored with its `<runId>:` prefix as `~`.
 * Version 2 (written before): `[2, decisionId, phase, node, edgeClasses, action, reason, p, cSpecUsd,
 * cFailUsd, deltaTSec, lUsd, evUsd, thresholdUsd, alpha, lambdaUsdPerSec, stage, posteriors,
 * predictorUsd, atMs]` (about 110 bytes); a stored object (before version 2) is read as it is.
 * `decodeDecision` restores the full record given the run (its creation time included); every
 * number is kept as JSON writes it, so a decoded record equals the encoded one field for field.
 * A process that knows only version 2 cannot read version 3 (docs/runtime.md, Memory per run).
 */
import { type DecisionRecord, DecisionRecordSchema } from '../schemas/records.js';

/** Version tag, the array's first element. */
const V = 3;
/** The version written before (still read). */
const V2 = 2;

export interface DecisionContext {
  readonly tenant: string;
  readonly workflow: string;
  readonly runId: string;
  /** The run's creation time (its header's `createdAtMs`): version 3 stores `atMs` after it. */
  readonly createdAtMs: number;
}

/** What the encoder needs of the run: its creation time. */
export interface DecisionRun {
  readonly createdAtMs: number;
}

function shorten(value: string, prefix: string): string {
  return value.startsWith(prefix) ? `~${value.slice(prefix.length)}` : value;
}

function lengthen(value: string, prefix: string): string {
  return value.startsWith('~') ? `${prefix}${value.slice(1)}` : value;
}

/** Version 3's positions from `p` on, with their defaults (trailing defaults are left out). */
const V3_TAIL = ['p', 'cSpecUsd', 'cFailUsd', 'deltaTSec', 'lUsd', 'evUsd', 'thresholdUsd', 'posteriors', 'predictorUsd'] as const;
/** Index of `p` in a version 3 array. */
const V3_P = 10;

const isDefault = (v: unknown): boolean => v === 0 || (Array.isArray(v) && v.length === 0);

/** The stored text of a decision record of the run created at `run.createdAtMs`. */
export function encodeDecision(d: DecisionRecord, run: DecisionRun): string {
  const classPrefix = `${d.tenant}/${d.workflow}/`;
  const out: unknown[] = [
    V,
    d.node,
    d.phase,
    d.edgeClasses.map((c) => shorten(c, classPrefix)),
    d.action,
    d.reason,
    d.atMs - run.createdAtMs,
    d.alpha,
    d.lambdaUsdPerSec,
    d.stage,
    ...V3_TAIL.map((k) => d[k]),
  ];
  const derivedId = `${d.runId}:${d.node}:${d.phase}`;
  if (d.decisionId !== derivedId) out.push(shorten(d.decisionId, `${d.runId}:`));
  else while (out.length > V3_P && isDefault(out[out.length - 1])) out.pop();
  return JSON.stringify(out);
}

/** The decision record stored as `text` in the run `ctx` (validated: an invalid entry is an error). */
export function decodeDecision(text: string, ctx: DecisionContext): DecisionRecord {
  const raw: unknown = JSON.parse(text);
  if (!Array.isArray(raw)) return DecisionRecordSchema.parse(raw);
  const classPrefix = `${ctx.tenant}/${ctx.workflow}/`;
  const classes = (v: unknown) => (Array.isArray(v) ? v.map((c) => lengthen(String(c), classPrefix)) : v);
  if (raw[0] === V && raw.length >= V3_P && raw.length <= V3_P + V3_TAIL.length + 1) {
    const tail: Record<string, unknown> = {};
    V3_TAIL.forEach((k, i) => {
      tail[k] = raw[V3_P + i] ?? (k === 'posteriors' ? [] : 0);
    });
    const node = raw[1];
    const phase = raw[2];
    const id = raw[V3_P + V3_TAIL.length];
    return DecisionRecordSchema.parse({
      decisionId: id === undefined ? `${ctx.runId}:${String(node)}:${String(phase)}` : lengthen(String(id), `${ctx.runId}:`),
      phase,
      tenant: ctx.tenant,
      workflow: ctx.workflow,
      runId: ctx.runId,
      node,
      edgeClasses: classes(raw[3]),
      action: raw[4],
      reason: raw[5],
      ...tail,
      alpha: raw[7],
      lambdaUsdPerSec: raw[8],
      stage: raw[9],
      atMs: typeof raw[6] === 'number' ? ctx.createdAtMs + raw[6] : raw[6],
    });
  }
  if (raw[0] !== V2 || raw.length !== 20) throw new Error(`run ${ctx.tenant}/${ctx.runId}: stored decision has an unknown encoding (version ${String(raw[0])}, ${raw.length} values)`);
  return DecisionRecordSchema.parse({
    decisionId: lengthen(String(raw[1]), `${ctx.runId}:`),
    phase: raw[2],
    tenant: ctx.tenant,
    workflow: ctx.workflow,
    runId: ctx.runId,
    node: raw[3],
    edgeClasses: classes(raw[4]),
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

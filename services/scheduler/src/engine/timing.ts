/**
 * M4 ΔT in the live scheduler: the run's timing analysis (core/timing.ts) built from a snapshot,
 * once per snapshot and reused for every node decided on it.
 *
 * - A finished node is done; a running one has run since its authoritative attempt started
 *   (its remaining time is conditional, never 0); a pending node with a speculation in flight
 *   counts as launched, hitting with the P of its still-unconfirmed edges.
 * - Joint decisions (M4): the nodes decidable on the same snapshot and not yet decided (a
 *   fan-out's siblings) are each judged with the others launched, hitting with their own P:
 *   one round of the fixed point from "all launched". Those decided later see the earlier
 *   ones' speculations in flight, so deciding them one by one agrees with deciding them together.
 */
import {
  admissibility,
  DEFAULT_DURATION_CV,
  type DependencyType,
  type DurationDistribution,
  edgeClassId,
  type JointCandidate,
  lognormalDuration,
  type PosteriorMode,
  type SuspicionParams,
  pointEstimate,
  classPosterior,
  resolvePrior,
  type TenantPriors,
  type TimingAnalysis,
  type TimingNode,
  timingAnalysis,
  type WorkflowNode,
} from '@gambit/shared';
import type { SpeculationControl } from './control.js';
import type { OperationEstimateCache } from './op-estimates.js';
import { expectedDurationMs } from './estimates.js';
import { parseClasses } from './outcomes.js';
import type { RunSnapshot } from './run-view.js';

/** Static-estimate distributions per node definition (a workflow's parse is shared by its runs). */
const staticDurations = new WeakMap<WorkflowNode, DurationDistribution>();

/**
 * M4: the duration distribution of a node, around its current estimate. Without `outputTokens`
 * the same object for the same node definition, so the timing analysis's quantile table of it
 * is computed once (core/timing.ts).
 */
export function durationOf(node: WorkflowNode, outputTokens?: number): DurationDistribution {
  if (outputTokens !== undefined) return lognormalDuration(expectedDurationMs(node, outputTokens), DEFAULT_DURATION_CV);
  let d = staticDurations.get(node);
  if (d === undefined) {
    d = lognormalDuration(expectedDurationMs(node), DEFAULT_DURATION_CV);
    staticDurations.set(node, d);
  }
  return d;
}

export interface TimingDeps {
  readonly control: SpeculationControl;
  /** M4: learned operation-class durations (op-estimates.ts); without it, static estimates only. */
  readonly opEstimates?: OperationEstimateCache;
}

export interface TimingCtx {
  readonly tenant: string;
  readonly posteriorMode: PosteriorMode;
  readonly priors: TenantPriors;
  readonly initialStage: 'shadow' | 'canary' | 'online';
  readonly allowDisclosure: boolean;
  readonly nowMs: number;
  /** Drift suspicion settings of the tenant (calibration/suspect.ts); defaults when absent. */
  readonly suspect?: SuspicionParams;
}

/** P that an edge class's guess is right, from its posterior (or prior). */
async function edgeP(deps: TimingDeps, ctx: TimingCtx, classId: string, type: string, k: number | undefined): Promise<number> {
  const rp = resolvePrior(ctx.priors, classId, type as DependencyType, k);
  const prior = rp.prior;
  const st = await deps.control.classState(classId, {
    depType: type as DependencyType,
    ...(k === undefined ? {} : { k }),
    prior,
    initialStage: ctx.initialStage,
    tenant: ctx.tenant,
  });
  return pointEstimate(classPosterior(prior, st, ctx.suspect), rp.mode ?? ctx.posteriorMode);
}

interface RunTiming {
  readonly analysis: TimingAnalysis;
  /** Decidable, undecided nodes with their P (the fan-out's siblings). */
  readonly candidates: readonly JointCandidate[];
}

const cache = new WeakMap<RunSnapshot, { nowMs: number; timing: Promise<RunTiming> }>();
/** A snapshot's analysis is reused within this window (decisions of one event on one snapshot). */
const REUSE_MS = 50;

/**
 * The timing analysis of the snapshot (cached per snapshot). `decidable` and `edgeClassId` come
 * from the decider so that this module stays below it.
 */
export function runTiming(
  deps: TimingDeps,
  s: RunSnapshot,
  ctx: TimingCtx,
  decidable: (s: RunSnapshot, nodeId: string) => boolean,
): Promise<RunTiming> {
  const hit = cache.get(s);
  if (hit !== undefined && Math.abs(hit.nowMs - ctx.nowMs) <= REUSE_MS) return hit.timing;
  const timing = buildTiming(deps, s, ctx, decidable);
  cache.set(s, { nowMs: ctx.nowMs, timing });
  return timing;
}

async function buildTiming(deps: TimingDeps, s: RunSnapshot, ctx: TimingCtx, decidable: (s: RunSnapshot, nodeId: string) => boolean): Promise<RunTiming> {
  const nodes: TimingNode[] = [];
  const candidates: JointCandidate[] = [];
  // M4: a node's duration is its operation class's learned distribution once the class has enough
  // observations (shared across the tenant's runs), else a lognormal around its static estimate.
  const learned = deps.opEstimates === undefined ? undefined : await deps.opEstimates.forNodes(ctx.tenant, s.workflow.nodes);
  for (const def of s.workflow.nodes) {
    const n = s.nodes.get(def.id);
    const duration = deps.opEstimates?.learnedDuration(learned?.get(def.id)) ?? durationOf(def);
    if (n === undefined || n.state === 'succeeded' || n.state === 'failed' || n.state === 'cancelled') {
      nodes.push({ id: def.id, state: 'done', duration });
      continue;
    }
    if (n.state === 'running') {
      const a = n.auth === undefined ? undefined : s.attempts.get(n.auth);
      const started = a?.startedAtMs ?? n.startedAtMs ?? ctx.nowMs;
      nodes.push({ id: def.id, state: 'running', duration, elapsedMs: Math.max(0, ctx.nowMs - started) });
      continue;
    }
    if (n.spec !== undefined) {
      const a = s.attempts.get(n.spec.a);
      let p = 1;
      const incoming = s.graph.incoming.get(def.id) ?? [];
      for (const { up, classId } of parseClasses(n.spec.cls)) {
        if (n.spec.ok[up] === 1) continue;
        const e = incoming.find((x) => x.from === up);
        if (e !== undefined) p *= await edgeP(deps, ctx, classId, e.type, e.k);
      }
      const started = a?.startedAtMs ?? n.spec.at;
      nodes.push({
        id: def.id,
        state: 'pending',
        duration,
        speculation: { p, elapsedMs: Math.max(0, ctx.nowMs - started), done: a?.status === 'succeeded' },
      });
      continue;
    }
    nodes.push({ id: def.id, state: 'pending', duration });
    if (n.claims.runtime === 1 || !s.header.speculation || !decidable(s, def.id)) continue;
    const pending = (s.graph.incoming.get(def.id) ?? []).filter((e) => s.nodes.get(e.from)?.state !== 'succeeded');
    if (!pending.every((e) => e.speculate)) continue;
    if (!admissibility({ effects: def.effects, discloses: def.discloses }, { allowDisclosure: ctx.allowDisclosure }).ok) continue;
    let p = 1;
    for (const e of pending) p *= await edgeP(deps, ctx, edgeClassId(s.header.tenant, s.workflow.name, e.from, e.to), e.type, e.k);
    candidates.push({ id: def.id, p });
  }
  return { analysis: timingAnalysis({ nodes, edges: s.workflow.edges }), candidates };
}

/** M4: ΔT of `nodeId` on this snapshot (seconds): jointly with its undecided siblings, or alone. */
export async function deltaTOf(
  deps: TimingDeps,
  s: RunSnapshot,
  nodeId: string,
  ctx: TimingCtx,
  decidable: (s: RunSnapshot, nodeId: string) => boolean,
): Promise<number> {
  const t = await runTiming(deps, s, ctx, decidable);
  // The candidate list as is: deltaTSecWith ignores nodeId's own entry (no copy per decision).
  return t.analysis.deltaTSecWith(nodeId, t.candidates);
}

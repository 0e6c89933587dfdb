/**
 * M5/M9 stage 1: posteriors learned online, in time order, from the recorded opportunities.
 * Runs are taken in start order and, within a run, downstream nodes in topological order; each
 * node's decision sees the posterior of its edge classes before its own outcome is counted.
 * Every opportunity with a guess is an outcome (a shadow outcome when the policy did not
 * speculate: M5, learning is never blocked), so the posteriors, and P, are the same for every
 * policy. Also the per-type counts that refit the priors (core refitPrior).
 *
 * M9.5: the live drift detector and kill logic run here too, so replay's counterfactuals include
 * the kill. After each outcome of an online class, `detectDrift` (calibration/detectors.ts, the
 * estimator's function) tests the class's window; an alarm kills the class for `cooldownMs`
 * (measured on the runs' start times): its decisions WAIT `killed`. Then the class re-enters
 * shadow with its posterior reset to the prior and its window emptied (as estimatorSetStage
 * does), WAITs `stage` while it learns again, and is promoted back to online after `nMin` shadow
 * outcomes (replay has no canary: a canary launches on a sample, which replay does not draw).
 * Before any kill, drift suspicion (`decisionPosterior`, as the live decider) decides a suspect
 * class from the outcomes since the estimated change point.
 */
import {
  type BetaParams,
  type CalibrationConfig,
  type ClassCounts,
  DEFAULT_CALIBRATION,
  decisionPosterior,
  detectDrift,
  PH_INITIAL,
  DEPENDENCY_TYPES,
  type DependencyType,
  edgeClassId,
  type PriorOverrides,
  priorFor,
  refitPrior,
  updatePosterior,
} from '@gambit/shared';
import { type Opportunity, opportunityClass, type Run } from '../trace.js';
import type { RunModel } from './model.js';

/** The stage of an edge class in replay (M9): online, killed by the detector, or re-learning in shadow. */
export type ReplayStage = 'online' | 'killed' | 'shadow';

/** The posterior an opportunity was decided with, and its class's stage at that moment. */
export interface EdgeBelief {
  readonly opportunity: Opportunity;
  readonly edgeClass: string;
  readonly posterior: BetaParams;
  readonly stage: ReplayStage;
}

/** A drift alarm raised during replay. */
export interface ReplayKill {
  readonly edgeClass: string;
  readonly runId: string;
  /** Outcomes of the class counted before the alarm (over the whole replay). */
  readonly outcomesBefore: number;
  readonly reason: string;
}

export function classKey(run: Run, o: Opportunity): string {
  const cls = opportunityClass(o);
  return o.edgeClass === undefined ? edgeClassId(run.tenant, run.workflow, o.from, o.to) : `${run.tenant}/${run.workflow}/${cls}`;
}

/**
 * The calibrated yardstick (issue 9: "what a perfect learner can reach"): a class's true hit
 * probability, when known (an archetype's designed rate, or a trace's whole-sample rate). Its
 * decisions use P exactly (a Beta with this weight) and run no detector.
 */
export type KnownP = (run: Run, o: Opportunity) => number | undefined;
const KNOWN_WEIGHT = 1e9;

/** Posterior snapshots per run and downstream node: `beliefs.get(runId).get(nodeId)`. */
export type Beliefs = Map<string, Map<string, EdgeBelief[]>>;

interface ClassState {
  hits: number;
  misses: number;
  /** Hit sequence since the class last (re)entered shadow, capped at windowCap ('1' hit). */
  window: string;
  stage: ReplayStage;
  killedUntilMs: number;
  stageN: number;
  total: number;
}

/** Learns posteriors online over runs sorted by start, with the drift kill (see header). */
export function learnOnline(
  models: readonly RunModel[],
  priors?: PriorOverrides,
  calibration: CalibrationConfig = DEFAULT_CALIBRATION,
  knownP?: KnownP,
): { beliefs: Beliefs; kills: ReplayKill[] } {
  const classes = new Map<string, ClassState>();
  const out: Beliefs = new Map();
  const kills: ReplayKill[] = [];
  for (const m of models) {
    const perNode = new Map<string, EdgeBelief[]>();
    const nowMs = m.run.startUnixMs;
    for (const node of m.ops) {
      const opps = m.oppsByTarget.get(node.op.id);
      if (opps === undefined) continue;
      const beliefs: EdgeBelief[] = [];
      for (const o of opps) {
        if (o.guess === null) continue;
        const cls = classKey(m.run, o);
        const c = classes.get(cls) ?? { hits: 0, misses: 0, window: '', stage: 'online', killedUntilMs: 0, stageN: 0, total: 0 };
        if (c.stage === 'killed' && nowMs >= c.killedUntilMs) Object.assign(c, { stage: 'shadow', hits: 0, misses: 0, window: '', stageN: 0 });
        classes.set(cls, c);
        const known = knownP?.(m.run, o);
        if (known !== undefined) {
          // The calibrated yardstick: P is known exactly, so there is nothing to learn or detect.
          beliefs.push({ opportunity: o, edgeClass: cls, posterior: { a: known * KNOWN_WEIGHT, b: (1 - known) * KNOWN_WEIGHT }, stage: 'online' });
          continue;
        }
        // M5 with drift suspicion (calibration/suspect.ts): the live decider's posterior.
        const prior = priorFor(o.type, o.k, priors);
        const { posterior } = decisionPosterior(updatePosterior(prior, c.hits, c.misses), c.window, calibration.suspect);
        beliefs.push({ opportunity: o, edgeClass: cls, posterior, stage: c.stage });
      }
      // Outcomes are counted after the node's decision: they are known only when its upstreams end.
      for (const b of beliefs) {
        if (knownP !== undefined && knownP(m.run, b.opportunity) !== undefined) continue;
        const c = classes.get(b.edgeClass)!;
        c.total++;
        if (b.opportunity.matched) c.hits++;
        else c.misses++;
        c.window = (c.window + (b.opportunity.matched ? '1' : '0')).slice(-calibration.windowCap);
        if (c.stage === 'shadow' && ++c.stageN >= calibration.nMin) Object.assign(c, { stage: 'online', stageN: 0 });
        else if (c.stage === 'online') {
          const v = detectDrift(c.window, PH_INITIAL, calibration);
          if (v.alarm) {
            kills.push({ edgeClass: b.edgeClass, runId: m.run.runId, outcomesBefore: c.total, reason: v.reason ?? 'drift' });
            Object.assign(c, { stage: 'killed', killedUntilMs: nowMs + calibration.cooldownMs });
          }
        }
      }
      if (beliefs.length > 0) perNode.set(node.op.id, beliefs);
    }
    out.set(m.run.runId, perNode);
  }
  return { beliefs: out, kills };
}

export interface RefitResult {
  readonly type: DependencyType;
  /** Number of edge classes and outcomes the refit saw. */
  readonly classes: number;
  readonly outcomes: number;
  readonly hitRate: number;
  readonly prior: BetaParams;
  /** The M5 default prior (router_k_way: with the most common k). */
  readonly defaultPrior: BetaParams;
}

/** M9: refit each dependency type's prior from its edge classes' hit counts (core refitPrior). */
export function refitPriors(runs: readonly Run[]): RefitResult[] {
  const perType = new Map<DependencyType, Map<string, ClassCounts & { k?: number }>>();
  for (const run of runs)
    for (const o of run.opportunities) {
      if (o.guess === null) continue;
      const byClass = perType.get(o.type) ?? new Map();
      const cls = classKey(run, o);
      const c = byClass.get(cls) ?? { hits: 0, misses: 0, k: o.k };
      byClass.set(cls, { hits: c.hits + (o.matched ? 1 : 0), misses: c.misses + (o.matched ? 0 : 1), k: o.k });
      perType.set(o.type, byClass);
    }
  const out: RefitResult[] = [];
  for (const type of DEPENDENCY_TYPES) {
    const byClass = perType.get(type);
    if (byClass === undefined) continue;
    const classes = [...byClass.values()];
    const ks = classes.map((c) => c.k).filter((k): k is number => k !== undefined);
    const defaultPrior = priorFor(type, type === 'router_k_way' ? (mode(ks) ?? 2) : undefined);
    const outcomes = classes.reduce((s, c) => s + c.hits + c.misses, 0);
    const hits = classes.reduce((s, c) => s + c.hits, 0);
    out.push({
      type,
      classes: classes.length,
      outcomes,
      hitRate: outcomes === 0 ? 0 : hits / outcomes,
      prior: refitPrior(classes, { fallback: defaultPrior }),
      defaultPrior,
    });
  }
  return out;
}

function mode(xs: readonly number[]): number | undefined {
  const c = new Map<number, number>();
  let best: number | undefined;
  let bc = 0;
  for (const x of xs) {
    const n = (c.get(x) ?? 0) + 1;
    c.set(x, n);
    if (n > bc) [best, bc] = [x, n];
  }
  return best;
}

/** Prior overrides from a refit (router_k_way is left to its per-k default). */
export function refitOverrides(refit: readonly RefitResult[]): PriorOverrides {
  const o: Partial<Record<DependencyType, BetaParams>> = {};
  for (const r of refit) if (r.type !== 'router_k_way') o[r.type] = r.prior;
  return o;
}

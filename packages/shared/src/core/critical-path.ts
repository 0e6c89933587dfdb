/**
 * M4 (ΔT): critical-path analysis of a DAG of duration estimates, and the expected reduction of
 * the workflow's completion time when a downstream starts early on a correct guess.
 *
 * Forward pass: ES(v) = max over predecessors u of EF(u) (0 for sources), EF = ES + duration.
 * Backward pass: LF(v) = min over successors w of LS(w) (makespan for sinks), LS = LF − duration.
 * Slack(v) = LS(v) − ES(v): how late v can start without delaying the workflow. O(V + E).
 */
import { ValidationError } from '../errors.js';

export interface CpNode {
  readonly id: string;
  readonly durationMs: number;
}

export interface CpEdge {
  readonly from: string;
  readonly to: string;
}

export interface NodeTiming {
  readonly earliestStartMs: number;
  readonly earliestFinishMs: number;
  readonly latestStartMs: number;
  readonly latestFinishMs: number;
  readonly slackMs: number;
}

export interface CriticalPathResult {
  readonly makespanMs: number;
  /** One longest path, source to sink. */
  readonly path: string[];
  readonly byNode: Map<string, NodeTiming>;
}

/** M4: critical path, makespan and per-node slack. Throws ValidationError on cycles or unknown ids. */
export function criticalPath(dag: { nodes: readonly CpNode[]; edges: readonly CpEdge[] }): CriticalPathResult {
  const n = dag.nodes.length;
  const idx = new Map<string, number>();
  const dur = new Float64Array(n);
  dag.nodes.forEach((node, i) => {
    if (idx.has(node.id)) throw new ValidationError([{ path: `nodes[${i}].id`, message: `duplicate node id "${node.id}"` }]);
    if (!(node.durationMs >= 0 && Number.isFinite(node.durationMs)))
      throw new ValidationError([{ path: `nodes[${i}].durationMs`, message: 'must be a finite number ≥ 0' }]);
    idx.set(node.id, i);
    dur[i] = node.durationMs;
  });
  const succ: number[][] = Array.from({ length: n }, () => []);
  const pred: number[][] = Array.from({ length: n }, () => []);
  const indeg = new Int32Array(n);
  dag.edges.forEach((e, j) => {
    const f = idx.get(e.from);
    const t = idx.get(e.to);
    if (f === undefined) throw new ValidationError([{ path: `edges[${j}].from`, message: `unknown node "${e.from}"` }]);
    if (t === undefined) throw new ValidationError([{ path: `edges[${j}].to`, message: `unknown node "${e.to}"` }]);
    succ[f]!.push(t);
    pred[t]!.push(f);
    indeg[t]! += 1;
  });
  // Kahn's algorithm: a topological order, or a cycle.
  const order: number[] = [];
  for (let i = 0; i < n; i++) if (indeg[i] === 0) order.push(i);
  for (let h = 0; h < order.length; h++) {
    for (const w of succ[order[h]!]!) {
      indeg[w]! -= 1;
      if (indeg[w] === 0) order.push(w);
    }
  }
  if (order.length !== n) throw new ValidationError([{ path: 'edges', message: 'the graph has a cycle' }]);

  const es = new Float64Array(n);
  const critPred = new Int32Array(n).fill(-1);
  for (const v of order) {
    let best = -1;
    let bestEf = 0;
    for (const u of pred[v]!) {
      const ef = es[u]! + dur[u]!;
      if (best === -1 || ef > bestEf) {
        best = u;
        bestEf = ef;
      }
    }
    es[v] = bestEf;
    critPred[v] = best;
  }
  let makespan = 0;
  let last = -1;
  for (let i = 0; i < n; i++) {
    const ef = es[i]! + dur[i]!;
    if (last === -1 || ef > makespan) {
      makespan = ef;
      last = i;
    }
  }
  const lf = new Float64Array(n).fill(makespan);
  for (let h = order.length - 1; h >= 0; h--) {
    const v = order[h]!;
    for (const w of succ[v]!) lf[v] = Math.min(lf[v]!, lf[w]! - dur[w]!);
  }
  const byNode = new Map<string, NodeTiming>();
  dag.nodes.forEach((node, i) => {
    const ls = lf[i]! - dur[i]!;
    byNode.set(node.id, {
      earliestStartMs: es[i]!,
      earliestFinishMs: es[i]! + dur[i]!,
      latestStartMs: ls,
      latestFinishMs: lf[i]!,
      // Float subtraction can leave −1e-13 on a critical node.
      slackMs: Math.max(0, ls - es[i]!),
    });
  });
  const path: string[] = [];
  for (let v = last; v !== -1; v = critPred[v]!) path.push(dag.nodes[v]!.id);
  path.reverse();
  return { makespanMs: makespan, path, byNode };
}

export interface DeltaTInput {
  /** Remaining time of the pending upstreams (the max over them), ms. */
  readonly upstreamRemainingMs: number;
  /** Expected duration of the downstream, ms. */
  readonly downstreamDurationMs: number;
  /** The downstream's slack from the critical-path analysis, ms (0 on a chain). */
  readonly downstreamSlackMs: number;
}

/** M4: ΔT in seconds = max(0, min(T_up_remaining, T_down) − slack(d)) / 1000. */
export function deltaTSec(input: DeltaTInput): number {
  const overlap = Math.min(input.upstreamRemainingMs, input.downstreamDurationMs);
  return Math.max(0, overlap - input.downstreamSlackMs) / 1000;
}

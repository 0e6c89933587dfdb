/**
 * Critical-path analysis of a DAG of fixed durations (makespan, one longest path, slack). ΔT
 * (M4) is not computed from slack: see timing.ts, which re-times the DAG over duration draws.
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

/** Adjacency in compressed form: the neighbours of v are `list[offset[v]] … list[offset[v+1]-1]`. */
function csr(n: number, src: Int32Array, dst: Int32Array): { offset: Int32Array; list: Int32Array } {
  const offset = new Int32Array(n + 1);
  for (let j = 0; j < src.length; j++) offset[src[j]! + 1]! += 1;
  for (let v = 0; v < n; v++) offset[v + 1]! += offset[v]!;
  const fill = offset.slice(0, n);
  const list = new Int32Array(src.length);
  for (let j = 0; j < src.length; j++) list[fill[src[j]!]!++] = dst[j]!;
  return { offset, list };
}

/** M4: critical path, makespan and per-node slack. Throws ValidationError on cycles or unknown ids. */
export function criticalPath(dag: { nodes: readonly CpNode[]; edges: readonly CpEdge[] }): CriticalPathResult {
  const n = dag.nodes.length;
  const m = dag.edges.length;
  const idx = new Map<string, number>();
  const dur = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const node = dag.nodes[i]!;
    if (idx.has(node.id)) throw new ValidationError([{ path: `nodes[${i}].id`, message: `duplicate node id "${node.id}"` }]);
    if (!(node.durationMs >= 0 && Number.isFinite(node.durationMs)))
      throw new ValidationError([{ path: `nodes[${i}].durationMs`, message: 'must be a finite number ≥ 0' }]);
    idx.set(node.id, i);
    dur[i] = node.durationMs;
  }
  const from = new Int32Array(m);
  const to = new Int32Array(m);
  for (let j = 0; j < m; j++) {
    const e = dag.edges[j]!;
    const f = idx.get(e.from);
    const t = idx.get(e.to);
    if (f === undefined) throw new ValidationError([{ path: `edges[${j}].from`, message: `unknown node "${e.from}"` }]);
    if (t === undefined) throw new ValidationError([{ path: `edges[${j}].to`, message: `unknown node "${e.to}"` }]);
    from[j] = f;
    to[j] = t;
  }
  const succ = csr(n, from, to);
  const pred = csr(n, to, from);
  // Kahn's algorithm: a topological order, or a cycle.
  const indeg = new Int32Array(n);
  for (let v = 0; v < n; v++) indeg[v] = pred.offset[v + 1]! - pred.offset[v]!;
  const order = new Int32Array(n);
  let tail = 0;
  for (let v = 0; v < n; v++) if (indeg[v] === 0) order[tail++] = v;
  for (let h = 0; h < tail; h++) {
    const u = order[h]!;
    for (let k = succ.offset[u]!; k < succ.offset[u + 1]!; k++) {
      const w = succ.list[k]!;
      if (--indeg[w]! === 0) order[tail++] = w;
    }
  }
  if (tail !== n) throw new ValidationError([{ path: 'edges', message: 'the graph has a cycle' }]);

  // Forward pass, remembering the predecessor that finishes last (to trace one critical path).
  const es = new Float64Array(n);
  const critPred = new Int32Array(n).fill(-1);
  for (let h = 0; h < n; h++) {
    const v = order[h]!;
    let best = -1;
    let bestEf = 0;
    for (let k = pred.offset[v]!; k < pred.offset[v + 1]!; k++) {
      const u = pred.list[k]!;
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
  // Backward pass.
  const lf = new Float64Array(n).fill(makespan);
  for (let h = n - 1; h >= 0; h--) {
    const v = order[h]!;
    for (let k = succ.offset[v]!; k < succ.offset[v + 1]!; k++) {
      const w = succ.list[k]!;
      const ls = lf[w]! - dur[w]!;
      if (ls < lf[v]!) lf[v] = ls;
    }
  }
  const byNode = new Map<string, NodeTiming>();
  for (let i = 0; i < n; i++) {
    const ls = lf[i]! - dur[i]!;
    byNode.set(dag.nodes[i]!.id, {
      earliestStartMs: es[i]!,
      earliestFinishMs: es[i]! + dur[i]!,
      latestStartMs: ls,
      latestFinishMs: lf[i]!,
      // Float subtraction can leave −1e-13 on a critical node.
      slackMs: Math.max(0, ls - es[i]!),
    });
  }
  const path: string[] = [];
  for (let v = last; v !== -1; v = critPred[v]!) path.push(dag.nodes[v]!.id);
  path.reverse();
  return { makespanMs: makespan, path, byNode };
}

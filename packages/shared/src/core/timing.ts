/**
 * M4 ΔT: the expected reduction of the workflow's makespan when a node starts now on a guess
 * that turns out right, from re-timing the whole DAG; not "overlap minus slack".
 *
 * A `TimingAnalysis` is built once per run state (which nodes are done, running since when,
 * pending) and answers ΔT for every candidate of that state:
 *
 * - Each node's duration is drawn at K quantile levels of its distribution (duration.ts), the
 *   levels shuffled per node by a seeded permutation (a Latin hypercube over the nodes): sample k
 *   is one joint draw of every duration. Done nodes take 0; a running node takes the conditional
 *   remaining time T − t given T > t, never 0. Deterministic for a given seed.
 * - Per sample, the forward pass gives each node's finish time measured from now when every node
 *   waits for its upstreams; the makespan is the largest finish. Computed once per state.
 * - A node d launched now on a guess that hits finishes at max(own duration, finish of its
 *   upstreams) (it commits only when the upstreams confirm the guess); a miss is the same as
 *   waiting. Re-running the forward pass from d's position gives the makespan with d launched.
 *   ΔT = mean over samples of (makespan waiting − makespan launched), ≥ 0 by construction.
 * - Siblings decided at the same instant (a fan-out) are judged together (`jointDeltaTSec`,
 *   `decideJointly`): each one's ΔT is computed with the others launched and hitting with their
 *   own P (a stratified hit draw per sample), from the fixed point that starts at "all launched".
 */
import { ValidationError } from '../errors.js';
import type { DurationDistribution } from './duration.js';
import { remainingQuantileMs } from './duration.js';
import { mulberry32 } from './prng.js';

export type TimingNodeState = 'done' | 'running' | 'pending';

export interface TimingNode {
  readonly id: string;
  readonly state: TimingNodeState;
  /** The node's (whole) duration distribution; ignored for done nodes. */
  readonly duration: DurationDistribution;
  /** For a running node, how long it has run, ms (0 when unknown). */
  readonly elapsedMs?: number;
}

export interface TimingEdge {
  readonly from: string;
  readonly to: string;
}

export interface TimingOptions {
  /** Joint duration draws (K); 16 by default. */
  readonly samples?: number;
  /** Seed of the per-node permutations; fixed default so that results are reproducible. */
  readonly seed?: number;
}

export interface JointCandidate {
  readonly id: string;
  /** Probability that this candidate's speculation hits (its joint P over pending upstreams). */
  readonly p: number;
}

const DEFAULT_SAMPLES = 16;
const DEFAULT_SEED = 0x6a4d;

/** FNV-1a of a node id, so a node's permutation does not depend on its position in the list. */
function hashId(id: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < id.length; i++) {
    h ^= id.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

export class TimingAnalysis {
  readonly samples: number;
  /** E[makespan] from now when every node waits for its upstreams, ms. */
  readonly expectedMakespanMs: number;
  private readonly n: number;
  private readonly idx: Map<string, number>;
  private readonly order: Int32Array;
  private readonly pos: Int32Array;
  private readonly predOffset: Int32Array;
  private readonly predList: Int32Array;
  /** dur[v*K + k]: sampled duration (remaining for running, 0 for done). */
  private readonly dur: Float64Array;
  /** efWait[v*K + k]: finish time from now, nobody launched. */
  private readonly efWait: Float64Array;
  private readonly mWait: Float64Array;
  private readonly scratch: Float64Array;
  private readonly phase: Float64Array;
  private readonly memo = new Map<string, number>();

  constructor(dag: { readonly nodes: readonly TimingNode[]; readonly edges: readonly TimingEdge[] }, opts: TimingOptions = {}) {
    const K = opts.samples ?? DEFAULT_SAMPLES;
    if (!(Number.isInteger(K) && K >= 1 && K <= 4096)) throw new ValidationError([{ path: 'samples', message: `must be an integer in [1, 4096], got ${K}` }]);
    const seed = opts.seed ?? DEFAULT_SEED;
    const n = dag.nodes.length;
    this.samples = K;
    this.n = n;
    this.idx = new Map();
    for (let i = 0; i < n; i++) {
      const id = dag.nodes[i]!.id;
      if (this.idx.has(id)) throw new ValidationError([{ path: `nodes[${i}].id`, message: `duplicate node id "${id}"` }]);
      this.idx.set(id, i);
    }
    const m = dag.edges.length;
    const from = new Int32Array(m);
    const to = new Int32Array(m);
    const indeg = new Int32Array(n);
    const outdeg = new Int32Array(n + 1);
    for (let j = 0; j < m; j++) {
      const e = dag.edges[j]!;
      const f = this.idx.get(e.from);
      const t = this.idx.get(e.to);
      if (f === undefined) throw new ValidationError([{ path: `edges[${j}].from`, message: `unknown node "${e.from}"` }]);
      if (t === undefined) throw new ValidationError([{ path: `edges[${j}].to`, message: `unknown node "${e.to}"` }]);
      from[j] = f;
      to[j] = t;
      indeg[t]! += 1;
      outdeg[f + 1]! += 1;
    }
    // Predecessors (CSR by target) and successors (CSR by source) for Kahn's order.
    this.predOffset = new Int32Array(n + 1);
    for (let v = 0; v < n; v++) this.predOffset[v + 1] = this.predOffset[v]! + indeg[v]!;
    this.predList = new Int32Array(m);
    const fillP = this.predOffset.slice(0, n);
    for (let j = 0; j < m; j++) this.predList[fillP[to[j]!]!++] = from[j]!;
    for (let v = 0; v < n; v++) outdeg[v + 1]! += outdeg[v]!;
    const succList = new Int32Array(m);
    const fillS = outdeg.slice(0, n);
    for (let j = 0; j < m; j++) succList[fillS[from[j]!]!++] = to[j]!;
    this.order = new Int32Array(n);
    let tail = 0;
    for (let v = 0; v < n; v++) if (indeg[v] === 0) this.order[tail++] = v;
    for (let h = 0; h < tail; h++) {
      const u = this.order[h]!;
      for (let k = outdeg[u]!; k < outdeg[u + 1]!; k++) {
        const w = succList[k]!;
        indeg[w]! -= 1;
        if (indeg[w] === 0) this.order[tail++] = w;
      }
    }
    if (tail !== n) throw new ValidationError([{ path: 'edges', message: 'the graph has a cycle' }]);
    this.pos = new Int32Array(n);
    for (let h = 0; h < n; h++) this.pos[this.order[h]!] = h;

    // Latin hypercube over the nodes: node v's sample k is at level perm_v(k).
    this.dur = new Float64Array(n * K);
    const perm = new Int32Array(K);
    for (let v = 0; v < n; v++) {
      const node = dag.nodes[v]!;
      if (node.state === 'done') continue;
      const rnd = mulberry32((seed ^ hashId(node.id)) >>> 0);
      for (let k = 0; k < K; k++) perm[k] = k;
      for (let k = K - 1; k > 0; k--) {
        const j = Math.floor(rnd() * (k + 1));
        const t = perm[k]!;
        perm[k] = perm[j]!;
        perm[j] = t;
      }
      const elapsed = node.state === 'running' ? (node.elapsedMs ?? 0) : 0;
      for (let k = 0; k < K; k++) {
        const q = (perm[k]! + 0.5) / K;
        const d = remainingQuantileMs(node.duration, elapsed, q);
        if (!(d >= 0 && Number.isFinite(d))) throw new ValidationError([{ path: `nodes[${v}].duration`, message: `gave a duration of ${d} ms at quantile ${q}` }]);
        this.dur[v * K + k] = d;
      }
    }
    // Per-candidate stratified hit draws in joint decisions: sample k hits iff frac((k+½)/K + phase) < p.
    this.phase = new Float64Array(n);
    for (let v = 0; v < n; v++) this.phase[v] = mulberry32((seed ^ hashId(dag.nodes[v]!.id) ^ 0x5bd1e995) >>> 0)();

    this.efWait = new Float64Array(n * K);
    this.scratch = new Float64Array(n * K);
    this.mWait = new Float64Array(K);
    this.forward(this.efWait, 0, null, null);
    let sum = 0;
    for (let k = 0; k < K; k++) {
      let mx = 0;
      for (let v = 0; v < n; v++) mx = Math.max(mx, this.efWait[v * K + k]!);
      this.mWait[k] = mx;
      sum += mx;
    }
    this.expectedMakespanMs = sum / K;
  }

  /**
   * Forward pass into `ef` over topological positions ≥ `from`. `launched[v]` (when set) marks a
   * node started now; `hit[v*K+k]` says whether its guess is right in sample k (all right when null).
   */
  private forward(ef: Float64Array, from: number, launched: Uint8Array | null, hit: Uint8Array | null): void {
    const K = this.samples;
    for (let h = from; h < this.n; h++) {
      const v = this.order[h]!;
      const base = v * K;
      const p0 = this.predOffset[v]!;
      const p1 = this.predOffset[v + 1]!;
      const isLaunched = launched !== null && launched[v] === 1;
      for (let k = 0; k < K; k++) {
        let es = 0;
        for (let j = p0; j < p1; j++) {
          const f = ef[this.predList[j]! * K + k]!;
          if (f > es) es = f;
        }
        const d = this.dur[base + k]!;
        if (isLaunched && (hit === null || hit[base + k] === 1)) ef[base + k] = Math.max(d, es);
        else ef[base + k] = es + d;
      }
    }
  }

  private index(id: string): number {
    const v = this.idx.get(id);
    if (v === undefined) throw new ValidationError([{ path: 'node', message: `unknown node "${id}"` }]);
    return v;
  }

  /** E[makespan waiting − makespan with `launched` started now], ms, with per-sample hits. */
  private savingMs(launched: Uint8Array, hit: Uint8Array | null, first: number, base: Float64Array | null): number {
    const K = this.samples;
    const ef = this.scratch;
    ef.set(this.efWait);
    this.forward(ef, first, launched, hit);
    let sum = 0;
    for (let k = 0; k < K; k++) {
      let mx = 0;
      for (let v = 0; v < this.n; v++) {
        const f = ef[v * K + k]!;
        if (f > mx) mx = f;
      }
      sum += (base === null ? this.mWait[k]! : base[k]!) - mx;
    }
    return Math.max(0, sum / K);
  }

  /** M4: ΔT of `nodeId` alone (every other node waits), seconds. Memoised per analysis. */
  deltaTSec(nodeId: string): number {
    const cached = this.memo.get(nodeId);
    if (cached !== undefined) return cached;
    const v = this.index(nodeId);
    const launched = new Uint8Array(this.n);
    launched[v] = 1;
    const dt = this.savingMs(launched, null, this.pos[v]!, null) / 1000;
    this.memo.set(nodeId, dt);
    return dt;
  }

  /**
   * M4 joint decisions: ΔT of each candidate (seconds) when the others in `launched` are started
   * now too and each of those hits with its own P. A candidate not in `launched` is still scored
   * against the launched others.
   */
  jointDeltaTSec(candidates: readonly JointCandidate[], launchedIds: ReadonlySet<string>): Map<string, number> {
    const K = this.samples;
    const vs = candidates.map((c) => this.index(c.id));
    const hit = new Uint8Array(this.n * K);
    const launched = new Uint8Array(this.n);
    let first = this.n;
    for (let i = 0; i < candidates.length; i++) {
      const c = candidates[i]!;
      if (!(c.p >= 0 && c.p <= 1)) throw new ValidationError([{ path: `candidates[${i}].p`, message: `must be in [0, 1], got ${c.p}` }]);
      const v = vs[i]!;
      first = Math.min(first, this.pos[v]!);
      if (launchedIds.has(c.id)) launched[v] = 1;
      const ph = this.phase[v]!;
      for (let k = 0; k < K; k++) {
        const u = ((k + 0.5) / K + ph) % 1;
        hit[v * K + k] = u < c.p ? 1 : 0;
      }
    }
    const out = new Map<string, number>();
    const baseOthers = new Float64Array(K);
    for (let i = 0; i < candidates.length; i++) {
      const v = vs[i]!;
      // Makespan with the others launched (their hits drawn), v waiting.
      const wasLaunched = launched[v]!;
      launched[v] = 0;
      const ef = this.scratch;
      ef.set(this.efWait);
      this.forward(ef, first, launched, hit);
      for (let k = 0; k < K; k++) {
        let mx = 0;
        for (let w = 0; w < this.n; w++) {
          const f = ef[w * K + k]!;
          if (f > mx) mx = f;
        }
        baseOthers[k] = mx;
      }
      // The same with v launched and hitting in every sample (ΔT is the saving on a hit).
      launched[v] = 1;
      const saved = new Uint8Array(K);
      for (let k = 0; k < K; k++) {
        saved[k] = hit[v * K + k]!;
        hit[v * K + k] = 1;
      }
      out.set(candidates[i]!.id, this.savingMs(launched, hit, first, baseOthers) / 1000);
      for (let k = 0; k < K; k++) hit[v * K + k] = saved[k]!;
      launched[v] = wasLaunched;
    }
    return out;
  }
}

/** M4: the timing analysis of one run state (build once per state change, reuse per candidate). */
export function timingAnalysis(dag: { readonly nodes: readonly TimingNode[]; readonly edges: readonly TimingEdge[] }, opts?: TimingOptions): TimingAnalysis {
  return new TimingAnalysis(dag, opts);
}

export interface JointDecisionCandidate extends JointCandidate {
  /** The rule's verdict for this candidate at a given ΔT (seconds): true = it would launch. */
  readonly launches: (deltaTSec: number) => boolean;
}

/**
 * M4 joint decisions of siblings decidable at the same instant: the fixed point that starts
 * from "all launched". Each round computes every candidate's ΔT against the others still in
 * the launched set (hitting with their P); the set becomes those the rule launches at that ΔT.
 * Stops when the set no longer changes (at most one round per candidate, then the last set is
 * kept). Returns each candidate's ΔT against the final set.
 */
export function decideJointly(analysis: TimingAnalysis, candidates: readonly JointDecisionCandidate[]): Map<string, number> {
  if (candidates.length === 1) {
    const c = candidates[0]!;
    return new Map([[c.id, analysis.deltaTSec(c.id)]]);
  }
  let launched = new Set(candidates.map((c) => c.id));
  let dts = analysis.jointDeltaTSec(candidates, launched);
  for (let round = 0; round < candidates.length; round++) {
    const next = new Set(candidates.filter((c) => c.launches(dts.get(c.id) ?? 0)).map((c) => c.id));
    if (next.size === launched.size && [...next].every((id) => launched.has(id))) break;
    launched = next;
    dts = analysis.jointDeltaTSec(candidates, launched);
  }
  return dts;
}

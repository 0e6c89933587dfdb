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
import { normalQuantile, remainingQuantileMs } from './duration.js';
import { mulberry32 } from './prng.js';

export type TimingNodeState = 'done' | 'running' | 'pending';

export interface TimingNode {
  readonly id: string;
  readonly state: TimingNodeState;
  /** The node's (whole) duration distribution; ignored for done nodes. */
  readonly duration: DurationDistribution;
  /** For a running node, how long it has run, ms (0 when unknown). */
  readonly elapsedMs?: number;
  /**
   * A pending node whose speculative attempt is already in flight: started `elapsedMs` ago (or
   * finished, `done`), right with probability `p`. It counts as launched in every re-timing,
   * the waiting baseline included, so later decisions see the speculations already made.
   */
  readonly speculation?: { readonly p: number; readonly elapsedMs: number; readonly done?: boolean };
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

/** Φ⁻¹((k + ½)/K) for k < K, per K (the lognormal fast path of a node not yet started). */
const zLevelsByK = new Map<number, Float64Array>();
function zLevels(K: number): Float64Array {
  let z = zLevelsByK.get(K);
  if (z === undefined) {
    z = new Float64Array(K);
    for (let k = 0; k < K; k++) z[k] = normalQuantile((k + 0.5) / K);
    zLevelsByK.set(K, z);
  }
  return z;
}

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
  /** E[makespan] from now when every node not already speculating waits for its upstreams, ms. */
  readonly expectedMakespanMs: number;
  private readonly n: number;
  private readonly idx: Map<string, number>;
  private readonly order: Int32Array;
  private readonly pos: Int32Array;
  private readonly predOffset: Int32Array;
  private readonly predList: Int32Array;
  /** durWait[v*K + k]: duration when v starts after its upstreams (remaining if running, 0 if done). */
  private readonly durWait: Float64Array;
  /** durRun[v*K + k]: duration of v's speculative attempt (remaining when already in flight). */
  private readonly durRun: Float64Array;
  /** Speculations already in flight (launched in the baseline) and their per-sample hits. */
  private readonly baseLaunched: Uint8Array;
  private readonly baseHit: Uint8Array;
  /** efBase/stBase[v*K + k]: finish and start times from now in the baseline. */
  private readonly efBase: Float64Array;
  private readonly stBase: Float64Array;
  private readonly mBase: Float64Array;
  private readonly ef: Float64Array;
  private readonly st: Float64Array;
  private readonly launched: Uint8Array;
  private readonly hit: Uint8Array;
  private readonly phase: Float64Array;
  /** Nodes without successors: the makespan is the latest of their finishes. */
  private readonly sinks: Int32Array;
  /** Per-query scratch: nodes to recompute, nodes to restore, per-sample makespans. */
  private readonly dirty: Uint8Array;
  private readonly touched: Uint8Array;
  private readonly mRef: Float64Array;
  private readonly mNew: Float64Array;
  private ws = new Int32Array(16);
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
    const sinks: number[] = [];
    for (let v = 0; v < n; v++) if (outdeg[v + 1] === outdeg[v]) sinks.push(v);
    this.sinks = Int32Array.from(sinks);
    this.dirty = new Uint8Array(n);
    this.touched = new Uint8Array(n);
    this.mRef = new Float64Array(K);
    this.mNew = new Float64Array(K);

    // Latin hypercube over the nodes: node v's sample k is at quantile level (perm_v(k) + ½)/K.
    this.durWait = new Float64Array(n * K);
    this.durRun = new Float64Array(n * K);
    this.baseLaunched = new Uint8Array(n);
    this.baseHit = new Uint8Array(n * K);
    this.phase = new Float64Array(n);
    const perm = new Int32Array(K);
    const z = zLevels(K);
    for (let v = 0; v < n; v++) {
      const node = dag.nodes[v]!;
      const h = hashId(node.id);
      this.phase[v] = mulberry32((seed ^ h ^ 0x5bd1e995) >>> 0)();
      if (node.state === 'done') continue;
      const rnd = mulberry32((seed ^ h) >>> 0);
      for (let k = 0; k < K; k++) perm[k] = k;
      for (let k = K - 1; k > 0; k--) {
        const j = Math.floor(rnd() * (k + 1));
        const t = perm[k]!;
        perm[k] = perm[j]!;
        perm[j] = t;
      }
      const elapsed = node.state === 'running' ? (node.elapsedMs ?? 0) : 0;
      const spec = node.state === 'pending' ? node.speculation : undefined;
      if (spec !== undefined) {
        if (!(spec.p >= 0 && spec.p <= 1)) throw new ValidationError([{ path: `nodes[${v}].speculation.p`, message: `must be in [0, 1], got ${spec.p}` }]);
        this.baseLaunched[v] = 1;
        this.drawHits(this.baseHit, v, spec.p);
      }
      const ln = elapsed > 0 ? undefined : node.duration.lognormal;
      for (let k = 0; k < K; k++) {
        const q = (perm[k]! + 0.5) / K;
        const d = ln !== undefined ? Math.exp(ln.mu + ln.sigma * z[perm[k]!]!) : remainingQuantileMs(node.duration, elapsed, q);
        if (!(d >= 0 && Number.isFinite(d))) throw new ValidationError([{ path: `nodes[${v}].duration`, message: `gave a duration of ${d} ms at quantile ${q}` }]);
        this.durWait[v * K + k] = d;
        this.durRun[v * K + k] = spec === undefined ? d : spec.done === true ? 0 : remainingQuantileMs(node.duration, spec.elapsedMs, q);
      }
    }
    this.efBase = new Float64Array(n * K);
    this.stBase = new Float64Array(n * K);
    this.ef = new Float64Array(n * K);
    this.st = new Float64Array(n * K);
    this.launched = new Uint8Array(n);
    this.hit = new Uint8Array(n * K);
    this.mBase = new Float64Array(K);
    this.dirty.fill(1);
    this.forward(this.efBase, this.stBase, 0, this.baseLaunched, this.baseHit);
    this.dirty.fill(0);
    this.makespans(this.efBase, this.mBase);
    this.ef.set(this.efBase);
    this.st.set(this.stBase);
    this.launched.set(this.baseLaunched);
    this.hit.set(this.baseHit);
    let sum = 0;
    for (let k = 0; k < K; k++) sum += this.mBase[k]!;
    this.expectedMakespanMs = sum / K;
  }

  /** Stratified hit draws of node v: sample k hits iff frac((k + ½)/K + phase_v) < p. */
  private drawHits(hit: Uint8Array, v: number, p: number): void {
    const K = this.samples;
    const ph = this.phase[v]!;
    for (let k = 0; k < K; k++) hit[v * K + k] = ((k + 0.5) / K + ph) % 1 < p ? 1 : 0;
  }

  /**
   * Forward pass over the `dirty` nodes at topological positions ≥ `from` (the others keep their
   * values in ef/st).
   * A node that waits starts at es = the latest finish of its upstreams. A launched node whose
   * guess hits starts when its latest upstream starts (now, for upstreams already running) and
   * commits when its upstreams have confirmed the guess: finish = max(start + duration, es).
   */
  private forward(ef: Float64Array, st: Float64Array, from: number, launched: Uint8Array, hit: Uint8Array): void {
    const K = this.samples;
    const predList = this.predList;
    const durWait = this.durWait;
    for (let h = from; h < this.n; h++) {
      const v = this.order[h]!;
      if (this.dirty[v] === 0) continue;
      const base = v * K;
      const p0 = this.predOffset[v]!;
      const p1 = this.predOffset[v + 1]!;
      if (launched[v] === 1) {
        for (let k = 0; k < K; k++) {
          let es = 0;
          let ss = 0;
          for (let j = p0; j < p1; j++) {
            const u = this.predList[j]! * K + k;
            if (ef[u]! > es) es = ef[u]!;
            if (st[u]! > ss) ss = st[u]!;
          }
          if (hit[base + k] === 1) {
            st[base + k] = ss;
            ef[base + k] = Math.max(ss + this.durRun[base + k]!, es);
          } else {
            st[base + k] = es;
            ef[base + k] = es + this.durWait[base + k]!;
          }
        }
      } else {
        // Pred-major so that the inner loop runs over contiguous samples; ef[v] accumulates es.
        for (let k = base; k < base + K; k++) ef[k] = 0;
        for (let j = p0; j < p1; j++) {
          const ub = predList[j]! * K;
          for (let k = 0; k < K; k++) {
            const f = ef[ub + k]!;
            if (f > ef[base + k]!) ef[base + k] = f;
          }
        }
        for (let k = base; k < base + K; k++) {
          const es = ef[k]!;
          st[k] = es;
          ef[k] = es + durWait[k]!;
        }
      }
    }
  }

  private makespans(ef: Float64Array, out: Float64Array): void {
    const K = this.samples;
    out.fill(0);
    for (let i = 0; i < this.sinks.length; i++) {
      const base = this.sinks[i]! * K;
      for (let k = 0; k < K; k++) if (ef[base + k]! > out[k]!) out[k] = ef[base + k]!;
    }
  }

  private index(id: string): number {
    const v = this.idx.get(id);
    if (v === undefined) throw new ValidationError([{ path: 'node', message: `unknown node "${id}"` }]);
    return v;
  }

  /**
   * Marks as dirty the nodes at positions ≥ `from` that `seed` marks or that have a dirty
   * upstream (the descendants whose timing can change), and as touched for the restore.
   */
  private markFrom(from: number, seed: Uint8Array): void {
    for (let h = from; h < this.n; h++) {
      const v = this.order[h]!;
      let d = seed[v]!;
      if (d === 0) {
        for (let j = this.predOffset[v]!; j < this.predOffset[v + 1]!; j++) {
          if (this.dirty[this.predList[j]!] === 1) {
            d = 1;
            break;
          }
        }
      }
      this.dirty[v] = d;
      if (d === 1) this.touched[v] = 1;
    }
  }

  /** Puts ef/st/launched/hit back to the baseline for every touched node. */
  private restore(): void {
    const K = this.samples;
    for (let v = 0; v < this.n; v++) {
      if (this.touched[v] === 0) continue;
      const b = v * K;
      for (let k = b; k < b + K; k++) {
        this.ef[k] = this.efBase[k]!;
        this.st[k] = this.stBase[k]!;
        this.hit[k] = this.baseHit[k]!;
      }
      this.launched[v] = this.baseLaunched[v]!;
      this.touched[v] = 0;
      this.dirty[v] = 0;
    }
  }

  /** The saving (ms) of launching v now, on top of the current ef/st (the reference `ref`). */
  private launchSavingMs(v: number, ref: Float64Array): number {
    const K = this.samples;
    this.launched[v] = 1;
    this.hit.fill(1, v * K, v * K + K);
    this.touched[v] = 1;
    const seed = this.mNew;
    // The descendants of v (and v) are recomputed; dirty is cleared first for positions ≥ pos(v).
    const from = this.pos[v]!;
    for (let h = from; h < this.n; h++) this.dirty[this.order[h]!] = 0;
    this.dirty[v] = 1;
    this.touched[v] = 1;
    for (let h = from + 1; h < this.n; h++) {
      const w = this.order[h]!;
      for (let j = this.predOffset[w]!; j < this.predOffset[w + 1]!; j++) {
        if (this.dirty[this.predList[j]!] === 1) {
          this.dirty[w] = 1;
          this.touched[w] = 1;
          break;
        }
      }
    }
    this.forward(this.ef, this.st, from, this.launched, this.hit);
    this.makespans(this.ef, seed);
    let sum = 0;
    for (let k = 0; k < K; k++) sum += ref[k]! - seed[k]!;
    this.restore();
    return Math.max(0, sum / K);
  }

  /** M4: ΔT of `nodeId` alone (seconds): only it and the speculations already in flight are launched. Memoised. */
  deltaTSec(nodeId: string): number {
    const cached = this.memo.get(nodeId);
    if (cached !== undefined) return cached;
    const dt = this.launchSavingMs(this.index(nodeId), this.mBase) / 1000;
    this.memo.set(nodeId, dt);
    return dt;
  }

  /**
   * M4 joint decisions: ΔT of `nodeId` (seconds) when `others` start now too, each hitting with
   * its own P (stratified draws), besides the speculations already in flight.
   */
  deltaTSecWith(nodeId: string, others: readonly JointCandidate[]): number {
    if (others.length === 0) return this.deltaTSec(nodeId);
    const v = this.index(nodeId);
    // Validate everything before touching the scratch state.
    if (this.ws.length < others.length) this.ws = new Int32Array(others.length * 2);
    const ws = this.ws;
    for (let i = 0; i < others.length; i++) {
      const c = others[i]!;
      if (!(c.p >= 0 && c.p <= 1)) throw new ValidationError([{ path: `others[${i}].p`, message: `must be in [0, 1], got ${c.p}` }]);
      ws[i] = this.index(c.id);
    }
    const seed = this.touched; // marks the others (cleared again by restore())
    let first = this.n;
    for (let i = 0; i < others.length; i++) {
      const w = ws[i]!;
      if (w === v) continue;
      first = Math.min(first, this.pos[w]!);
      this.launched[w] = 1;
      this.drawHits(this.hit, w, others[i]!.p);
      seed[w] = 1;
    }
    // The reference: the others launched (their hits drawn), v as it is.
    if (first < this.n) {
      this.markFrom(first, seed);
      this.forward(this.ef, this.st, first, this.launched, this.hit);
      this.makespans(this.ef, this.mRef);
    } else this.mRef.set(this.mBase);
    // Minus the same with v launched and hitting (ΔT is the saving on a hit).
    return this.launchSavingMs(v, this.mRef) / 1000;
  }

  /** M4 joint decisions: every candidate's ΔT against the others in `launchedIds` (see deltaTSecWith). */
  jointDeltaTSec(candidates: readonly JointCandidate[], launchedIds: ReadonlySet<string>): Map<string, number> {
    const out = new Map<string, number>();
    for (const c of candidates) out.set(c.id, this.deltaTSecWith(c.id, candidates.filter((o) => o.id !== c.id && launchedIds.has(o.id))));
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

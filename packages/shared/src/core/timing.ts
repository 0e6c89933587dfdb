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
 *
 * Speed (issue 9: decision p99 ≤ 20 µs on a 50-node DAG), compute once and reuse:
 * - Per workflow (`TimingModel`, cached by the edges array): the topological order, predecessor
 *   lists, each node's Latin-hypercube permutation and hit phase, each node's descendants, and
 *   the scratch buffers of the queries.
 * - Per distribution: its K quantiles, sorted, computed once (`quantileTable`); a node not yet
 *   started takes them through its permutation. Only running nodes and in-flight speculations
 *   (conditional remaining time) evaluate quantiles per state.
 * - Per run state (`TimingAnalysis`): the draws and the forward pass, in two typed arrays.
 * - Per candidate: only its descendants are re-timed, into an overlay over the reference pass,
 *   and the re-timing stops where a node's finish and start times come out unchanged. A joint
 *   query's reference (the siblings launched) is kept and extended in place from one sibling's
 *   query to the next.
 * The results are the same numbers as a full re-timing per query (timing.test.ts checks this
 * against a direct implementation on random DAGs).
 */
import { ValidationError } from '../errors.js';
import type { DurationDistribution } from './duration.js';
import { normalQuantile, remainingQuantileGivenCdfMs } from './duration.js';
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

export const DEFAULT_TIMING_SAMPLES = 16;
export const DEFAULT_TIMING_SEED = 0x6a4d;

/** Φ⁻¹((k + ½)/K) for k < K, per K (the lognormal quantile table). */
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

/**
 * The Latin-hypercube permutation of node `id`: its sample k is drawn at quantile level
 * (perm[k] + ½)/K. Written into `out` (length K).
 */
export function lhsPermutation(id: string, seed: number, K: number, out: Int32Array = new Int32Array(K)): Int32Array {
  const rnd = mulberry32((seed ^ hashId(id)) >>> 0);
  for (let k = 0; k < K; k++) out[k] = k;
  for (let k = K - 1; k > 0; k--) {
    const j = Math.floor(rnd() * (k + 1));
    const t = out[k]!;
    out[k] = out[j]!;
    out[j] = t;
  }
  return out;
}

/** The phase of node `id`'s stratified hit draws: sample k hits iff frac((k + ½)/K + phase) < p. */
export function hitPhase(id: string, seed: number): number {
  return mulberry32((seed ^ hashId(id) ^ 0x5bd1e995) >>> 0)();
}

/**
 * The K quantiles of a distribution at levels (j + ½)/K, j < K, increasing; computed once per
 * distribution object and K. A lognormal uses exp(μ + σ·Φ⁻¹(level)).
 */
const tables = new WeakMap<DurationDistribution, Float64Array>();
export function quantileTable(dist: DurationDistribution, K: number): Float64Array {
  let t = tables.get(dist);
  if (t !== undefined && t.length === K) return t;
  t = new Float64Array(K);
  const ln = dist.lognormal;
  if (ln !== undefined) {
    const z = zLevels(K);
    for (let j = 0; j < K; j++) t[j] = Math.exp(ln.mu + ln.sigma * z[j]!);
  } else for (let j = 0; j < K; j++) t[j] = dist.quantileMs((j + 0.5) / K);
  tables.set(dist, t);
  return t;
}

/**
 * Per workflow: topology, draws' permutations and phases, descendants, query scratch. Shared by
 * every analysis of the same DAG (cached by the edges array and checked against the node ids).
 */
class TimingModel {
  readonly samples: number;
  readonly seed: number;
  readonly n: number;
  readonly ids: readonly string[];
  readonly idx: Map<string, number>;
  readonly order: Int32Array;
  readonly pos: Int32Array;
  readonly predOffset: Int32Array;
  readonly predList: Int32Array;
  /** Nodes without successors: the makespan is the latest of their finishes. */
  readonly sinks: Int32Array;
  /** perm[v*K + k]: node v's quantile level index at sample k. */
  readonly perm: Int32Array;
  readonly phase: Float64Array;
  private readonly desc: (Int32Array | undefined)[];
  // Query scratch (used synchronously inside one query).
  readonly ovEf: Float64Array;
  readonly ovSt: Float64Array;
  readonly stamp: Int32Array;
  epoch = 0;
  readonly tEs: Float64Array;
  readonly tSs: Float64Array;
  readonly mA: Float64Array;
  readonly mB: Float64Array;
  readonly dirty: Uint8Array;
  readonly need: Int32Array;
  readonly needP: Float64Array;
  readonly needList: Int32Array;
  needEpoch = 0;
  /** The joint reference (some candidates launched) of `jOwner`, kept between queries. */
  jOwner: TimingAnalysis | undefined = undefined;
  readonly jEf: Float64Array;
  readonly jSt: Float64Array;
  readonly jLaunched: Uint8Array;
  readonly jHit: Uint8Array;
  readonly jM: Float64Array;
  readonly jMember: Uint8Array;
  readonly jP: Float64Array;
  readonly jList: Int32Array;
  jCount = 0;
  /** The joint reference's arrays as a state. */
  readonly joint: TimedState;
  /**
   * Buffers of the run states' analyses, reused round-robin (an analysis whose slot was taken
   * recomputes itself). One to start with; one more each time an analysis finds its slot taken
   * (analyses of the workflow used in interleaved order), up to SLOTS.
   */
  private readonly slots: StateSlot[] = [];
  private nextSlot = 0;
  private slotTarget = 1;

  constructor(nodes: readonly { readonly id: string }[], edges: readonly TimingEdge[], K: number, seed: number) {
    const n = nodes.length;
    this.samples = K;
    this.seed = seed;
    this.n = n;
    this.ids = nodes.map((x) => x.id);
    this.idx = new Map();
    for (let i = 0; i < n; i++) {
      const id = this.ids[i]!;
      if (this.idx.has(id)) throw new ValidationError([{ path: `nodes[${i}].id`, message: `duplicate node id "${id}"` }]);
      this.idx.set(id, i);
    }
    const m = edges.length;
    const from = new Int32Array(m);
    const to = new Int32Array(m);
    const indeg = new Int32Array(n);
    const outdeg = new Int32Array(n + 1);
    for (let j = 0; j < m; j++) {
      const e = edges[j]!;
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
    this.perm = new Int32Array(n * K);
    this.phase = new Float64Array(n);
    for (let v = 0; v < n; v++) {
      lhsPermutation(this.ids[v]!, seed, K, this.perm.subarray(v * K, v * K + K));
      this.phase[v] = hitPhase(this.ids[v]!, seed);
    }
    this.desc = new Array<Int32Array | undefined>(n).fill(undefined);
    this.ovEf = new Float64Array(n * K);
    this.ovSt = new Float64Array(n * K);
    this.stamp = new Int32Array(n);
    this.tEs = new Float64Array(K);
    this.tSs = new Float64Array(K);
    this.mA = new Float64Array(K);
    this.mB = new Float64Array(K);
    this.dirty = new Uint8Array(n);
    this.need = new Int32Array(n);
    this.needP = new Float64Array(n);
    this.needList = new Int32Array(n);
    this.jEf = new Float64Array(n * K);
    this.jSt = new Float64Array(n * K);
    this.jLaunched = new Uint8Array(n);
    this.jHit = new Uint8Array(n * K);
    this.jM = new Float64Array(K);
    this.jMember = new Uint8Array(n);
    this.jP = new Float64Array(n);
    this.jList = new Int32Array(n);
    this.joint = { ef: this.jEf, st: this.jSt, launched: this.jLaunched, hit: this.jHit, m: this.jM };
  }

  matches(nodes: readonly { readonly id: string }[], K: number, seed: number): boolean {
    if (nodes.length !== this.n || K !== this.samples || seed !== this.seed) return false;
    for (let i = 0; i < this.n; i++) if (nodes[i]!.id !== this.ids[i]) return false;
    return true;
  }

  /** v and its descendants, in topological order (v first). */
  descendants(v: number): Int32Array {
    let d = this.desc[v];
    if (d !== undefined) return d;
    const mark = this.dirty;
    mark.fill(0);
    mark[v] = 1;
    const list = [v];
    for (let h = this.pos[v]! + 1; h < this.n; h++) {
      const w = this.order[h]!;
      for (let j = this.predOffset[w]!; j < this.predOffset[w + 1]!; j++) {
        if (mark[this.predList[j]!] === 1) {
          mark[w] = 1;
          list.push(w);
          break;
        }
      }
    }
    mark.fill(0);
    d = Int32Array.from(list);
    this.desc[v] = d;
    return d;
  }

  /** A slot for `owner`'s state: a new one until SLOTS exist, then the least recently taken. */
  takeSlot(owner: TimingAnalysis): StateSlot {
    let slot: StateSlot;
    if (this.slots.length < this.slotTarget) {
      const nK = this.n * this.samples;
      const f = new Float64Array(4 * nK + this.samples);
      const b = new Uint8Array(this.n + nK);
      slot = {
        owner,
        f,
        b,
        durWait: f.subarray(0, nK),
        durRun: f.subarray(nK, 2 * nK),
        base: { ef: f.subarray(2 * nK, 3 * nK), st: f.subarray(3 * nK, 4 * nK), launched: b.subarray(0, this.n), hit: b.subarray(this.n), m: f.subarray(4 * nK) },
      };
      this.slots.push(slot);
    } else {
      slot = this.slots[this.nextSlot % this.slots.length]!;
      this.nextSlot = (this.nextSlot + 1) % this.slots.length;
      slot.owner = owner;
      slot.f.fill(0);
      slot.b.fill(0);
    }
    return slot;
  }

  /** An analysis found its slot taken by another: keep one more state's buffers from now on. */
  slotStolen(): void {
    if (this.slotTarget < SLOTS) this.slotTarget += 1;
  }

  /** A fresh stamp for an overlay pass. */
  nextEpoch(): number {
    if (this.epoch >= 0x3fffffff) {
      this.stamp.fill(0);
      this.epoch = 0;
    }
    return ++this.epoch;
  }

  nextNeedEpoch(): number {
    if (this.needEpoch >= 0x3fffffff) {
      this.need.fill(0);
      this.needEpoch = 0;
    }
    return ++this.needEpoch;
  }
}

/** Run-state buffers kept at most per workflow model (they grow only while analyses interleave). */
const SLOTS = 8;

interface StateSlot {
  owner: TimingAnalysis | undefined;
  /** durWait, durRun, ef, st (n·K each), then the K makespans. */
  readonly f: Float64Array;
  /** launched (n), then hits (n·K). */
  readonly b: Uint8Array;
  /** Views of f and b, made once per slot. */
  readonly durWait: Float64Array;
  readonly durRun: Float64Array;
  readonly base: TimedState;
}

/** Models per edges array (a workflow's definition is parsed once and shared by its runs). */
const models = new WeakMap<readonly TimingEdge[], TimingModel>();
function modelFor(nodes: readonly TimingNode[], edges: readonly TimingEdge[], K: number, seed: number): TimingModel {
  const hit = models.get(edges);
  if (hit?.matches(nodes, K, seed) === true) return hit;
  const m = new TimingModel(nodes, edges, K, seed);
  models.set(edges, m);
  return m;
}

/** A re-timed state: finish and start times per node and sample, launched nodes and their hits, makespans. */
interface TimedState {
  readonly ef: Float64Array;
  readonly st: Float64Array;
  readonly launched: Uint8Array;
  readonly hit: Uint8Array;
  readonly m: Float64Array;
}

export class TimingAnalysis {
  readonly samples: number;
  /** E[makespan] from now when every node not already speculating waits for its upstreams, ms. */
  readonly expectedMakespanMs: number;
  private readonly model: TimingModel;
  private readonly n: number;
  /** The run state (kept: the analysis recomputes itself if its buffers were handed to another). */
  private readonly nodes: readonly TimingNode[];
  private slot!: StateSlot;
  /** durWait[v*K + k]: duration when v starts after its upstreams (remaining if running, 0 if done). */
  private durWait!: Float64Array;
  /** durRun[v*K + k]: duration of v's speculative attempt (remaining when already in flight). */
  private durRun!: Float64Array;
  /** The baseline: speculations already in flight launched (with their per-sample hits), the rest waiting. */
  private base!: TimedState;
  private readonly joint: TimedState;
  private memo: Map<string, number> | undefined;

  constructor(dag: { readonly nodes: readonly TimingNode[]; readonly edges: readonly TimingEdge[] }, opts: TimingOptions = {}) {
    const K = opts.samples ?? DEFAULT_TIMING_SAMPLES;
    if (!(Number.isInteger(K) && K >= 1 && K <= 4096)) throw new ValidationError([{ path: 'samples', message: `must be an integer in [1, 4096], got ${K}` }]);
    const model = modelFor(dag.nodes, dag.edges, K, opts.seed ?? DEFAULT_TIMING_SEED);
    this.samples = K;
    this.model = model;
    this.n = model.n;
    this.nodes = dag.nodes;
    this.joint = model.joint;
    this.load();
    let sum = 0;
    for (let k = 0; k < K; k++) sum += this.base.m[k]!;
    this.expectedMakespanMs = sum / K;
  }

  /** Takes a buffer slot and computes the draws and the baseline forward pass into it. */
  private load(): void {
    const K = this.samples;
    const n = this.n;
    const model = this.model;
    const slot = model.takeSlot(this);
    this.slot = slot;
    this.durWait = slot.durWait;
    this.durRun = slot.durRun;
    this.base = slot.base;
    if (model.jOwner === this) model.jOwner = undefined;
    const perm = model.perm;
    const durWait = this.durWait;
    const durRun = this.durRun;
    for (let v = 0; v < n; v++) {
      const node = this.nodes[v]!;
      if (node.state === 'done') continue;
      const elapsed = node.state === 'running' ? (node.elapsedMs ?? 0) : 0;
      const spec = node.state === 'pending' ? node.speculation : undefined;
      if (spec !== undefined) {
        if (!(spec.p >= 0 && spec.p <= 1)) throw new ValidationError([{ path: `nodes[${v}].speculation.p`, message: `must be in [0, 1], got ${spec.p}` }]);
        this.base.launched[v] = 1;
        this.drawHits(this.base.hit, v, spec.p);
      }
      const pb = v * K;
      const dist = node.duration;
      if (elapsed > 0) {
        // Conditional remaining time T − t given T > t; F(t) once per node.
        const ft = dist.cdf(elapsed);
        for (let k = 0; k < K; k++) {
          const q = (perm[pb + k]! + 0.5) / K;
          const d = remainingQuantileGivenCdfMs(dist, elapsed, ft, q);
          if (!(d >= 0 && Number.isFinite(d))) throw new ValidationError([{ path: `nodes[${v}].duration`, message: `gave a duration of ${d} ms at quantile ${q}` }]);
          durWait[pb + k] = d;
        }
      } else {
        const t = quantileTable(dist, K);
        for (let k = 0; k < K; k++) {
          const d = t[perm[pb + k]!]!;
          if (!(d >= 0 && Number.isFinite(d))) throw new ValidationError([{ path: `nodes[${v}].duration`, message: `gave a duration of ${d} ms at quantile ${(perm[pb + k]! + 0.5) / K}` }]);
          durWait[pb + k] = d;
        }
      }
      if (spec === undefined) for (let k = pb; k < pb + K; k++) durRun[k] = durWait[k]!;
      else if (spec.done !== true) {
        const sElapsed = spec.elapsedMs;
        if (sElapsed > 0) {
          const fs = dist.cdf(sElapsed);
          for (let k = 0; k < K; k++) durRun[pb + k] = remainingQuantileGivenCdfMs(dist, sElapsed, fs, (perm[pb + k]! + 0.5) / K);
        } else for (let k = 0; k < K; k++) durRun[pb + k] = dist.quantileMs((perm[pb + k]! + 0.5) / K);
      }
    }
    // The baseline pass skips the done nodes whose upstreams are all such nodes: their finish and
    // start times are 0 in every sample (durations 0 after zero finishes), as the slot holds them.
    const { order, predOffset, predList, dirty } = model;
    for (let h = 0; h < n; h++) {
      const v = order[h]!;
      let compute = this.nodes[v]!.state !== 'done';
      for (let j = predOffset[v]!; j < predOffset[v + 1]! && !compute; j++) if (dirty[predList[j]!] === 1) compute = true;
      dirty[v] = compute ? 1 : 0;
    }
    this.forward(this.base, 0, true);
    dirty.fill(0);
    this.makespans(this.base);
  }

  /** Recomputes the state if another analysis of the same workflow has taken its buffers since. */
  private ensure(): void {
    if (this.slot.owner !== this) {
      this.model.slotStolen();
      this.load();
    }
  }

  /** Stratified hit draws of node v: sample k hits iff frac((k + ½)/K + phase_v) < p. */
  private drawHits(hit: Uint8Array, v: number, p: number): void {
    const K = this.samples;
    const ph = this.model.phase[v]!;
    for (let k = 0; k < K; k++) hit[v * K + k] = ((k + 0.5) / K + ph) % 1 < p ? 1 : 0;
  }

  /**
   * Forward pass in place over the nodes at topological positions ≥ `from` (only the `dirty`
   * ones when `onlyDirty`).
   * A node that waits starts at es = the latest finish of its upstreams. A launched node whose
   * guess hits starts when its latest upstream starts (now, for upstreams already running) and
   * commits when its upstreams have confirmed the guess: finish = max(start + duration, es).
   */
  private forward(s: TimedState, from: number, onlyDirty: boolean): void {
    const K = this.samples;
    const { order, predOffset, predList, dirty } = this.model;
    const { ef, st, launched, hit } = s;
    const durWait = this.durWait;
    const durRun = this.durRun;
    for (let h = from; h < this.n; h++) {
      const v = order[h]!;
      if (onlyDirty && dirty[v] === 0) continue;
      const base = v * K;
      const p0 = predOffset[v]!;
      const p1 = predOffset[v + 1]!;
      if (launched[v] === 1) {
        for (let k = 0; k < K; k++) {
          let es = 0;
          let ss = 0;
          for (let j = p0; j < p1; j++) {
            const u = predList[j]! * K + k;
            if (ef[u]! > es) es = ef[u]!;
            if (st[u]! > ss) ss = st[u]!;
          }
          if (hit[base + k] === 1) {
            st[base + k] = ss;
            ef[base + k] = Math.max(ss + durRun[base + k]!, es);
          } else {
            st[base + k] = es;
            ef[base + k] = es + durWait[base + k]!;
          }
        }
      } else {
        // Pred-major so that the inner loop runs over contiguous samples; ef[v] accumulates es.
        for (let k = base; k < base + K; k++) ef[k] = 0;
        for (let j = p0; j < p1; j++) {
          const ub = predList[j]! * K;
          for (let k = 0; k < K; k++) {
            const x = ef[ub + k]!;
            if (x > ef[base + k]!) ef[base + k] = x;
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

  private makespans(s: TimedState): void {
    const K = this.samples;
    const out = s.m;
    out.fill(0);
    const sinks = this.model.sinks;
    for (let i = 0; i < sinks.length; i++) {
      const base = sinks[i]! * K;
      for (let k = 0; k < K; k++) if (s.ef[base + k]! > out[k]!) out[k] = s.ef[base + k]!;
    }
  }

  /**
   * Re-times v's descendants over the reference `ref` into the model's overlay, with v launched
   * and hitting in every sample (`hitAll`) or in its baseline state; the makespans go to `out`.
   * A node is recomputed only if one of its upstreams changed (its finish or start times differ
   * from `ref`): the same numbers as a full forward pass.
   */
  private overlay(ref: TimedState, v: number, hitAll: boolean, out: Float64Array): void {
    const K = this.samples;
    const m = this.model;
    const { predOffset, predList, ovEf, ovSt, stamp, tEs, tSs } = m;
    const list = m.descendants(v);
    const epoch = m.nextEpoch();
    const refEf = ref.ef;
    const refSt = ref.st;
    const durWait = this.durWait;
    const durRun = this.durRun;
    for (let i = 0; i < list.length; i++) {
      const w = list[i]!;
      const p0 = predOffset[w]!;
      const p1 = predOffset[w + 1]!;
      let launchedW: number;
      let hitArr: Uint8Array | undefined;
      if (i === 0) {
        launchedW = hitAll ? 1 : this.base.launched[w]!;
        hitArr = hitAll ? undefined : this.base.hit;
      } else {
        let changed = false;
        for (let j = p0; j < p1; j++) {
          if (stamp[predList[j]!] === epoch) {
            changed = true;
            break;
          }
        }
        if (!changed) continue;
        launchedW = ref.launched[w]!;
        hitArr = ref.hit;
      }
      const b = w * K;
      if (launchedW === 1) {
        tEs.fill(0);
        tSs.fill(0);
        for (let j = p0; j < p1; j++) {
          const u = predList[j]!;
          const e = stamp[u] === epoch ? ovEf : refEf;
          const s = stamp[u] === epoch ? ovSt : refSt;
          const ub = u * K;
          for (let k = 0; k < K; k++) {
            if (e[ub + k]! > tEs[k]!) tEs[k] = e[ub + k]!;
            if (s[ub + k]! > tSs[k]!) tSs[k] = s[ub + k]!;
          }
        }
        for (let k = 0; k < K; k++) {
          const es = tEs[k]!;
          const ss = tSs[k]!;
          if (hitArr === undefined || hitArr[b + k] === 1) {
            ovSt[b + k] = ss;
            ovEf[b + k] = Math.max(ss + durRun[b + k]!, es);
          } else {
            ovSt[b + k] = es;
            ovEf[b + k] = es + durWait[b + k]!;
          }
        }
      } else {
        for (let k = b; k < b + K; k++) ovEf[k] = 0;
        for (let j = p0; j < p1; j++) {
          const u = predList[j]!;
          const e = stamp[u] === epoch ? ovEf : refEf;
          const ub = u * K;
          for (let k = 0; k < K; k++) {
            const x = e[ub + k]!;
            if (x > ovEf[b + k]!) ovEf[b + k] = x;
          }
        }
        for (let k = b; k < b + K; k++) {
          const es = ovEf[k]!;
          ovSt[k] = es;
          ovEf[k] = es + durWait[k]!;
        }
      }
      for (let k = b; k < b + K; k++) {
        if (ovEf[k] !== refEf[k] || ovSt[k] !== refSt[k]) {
          stamp[w] = epoch;
          break;
        }
      }
    }
    out.fill(0);
    const sinks = m.sinks;
    for (let i = 0; i < sinks.length; i++) {
      const s = sinks[i]!;
      const e = stamp[s] === epoch ? ovEf : refEf;
      const sb = s * K;
      for (let k = 0; k < K; k++) if (e[sb + k]! > out[k]!) out[k] = e[sb + k]!;
    }
  }

  /** Mean over samples of (ref − launched) makespans, ms, ≥ 0. */
  private saving(refM: Float64Array, newM: Float64Array): number {
    const K = this.samples;
    let sum = 0;
    for (let k = 0; k < K; k++) sum += refM[k]! - newM[k]!;
    return Math.max(0, sum / K);
  }

  private index(id: string): number {
    const v = this.model.idx.get(id);
    if (v === undefined) throw new ValidationError([{ path: 'node', message: `unknown node "${id}"` }]);
    return v;
  }

  /** M4: ΔT of `nodeId` alone (seconds): only it and the speculations already in flight are launched. Memoised. */
  deltaTSec(nodeId: string): number {
    const cached = this.memo?.get(nodeId);
    if (cached !== undefined) return cached;
    const v = this.index(nodeId);
    this.ensure();
    this.overlay(this.base, v, true, this.model.mB);
    const dt = this.saving(this.base.m, this.model.mB) / 1000;
    this.memo ??= new Map();
    this.memo.set(nodeId, dt);
    return dt;
  }

  /**
   * Makes the model's joint reference that of this analysis with exactly the needed nodes
   * launched (the `need` stamps, `needEpoch`, with their P), except that `v` may be there too
   * in any state: extended in place when it already holds a subset with the same P, else
   * rebuilt from the baseline. Returns whether v is launched in it.
   */
  private prepareJoint(v: number, needed: Int32Array, count: number): boolean {
    const m = this.model;
    const J = this.joint;
    const ne = m.needEpoch;
    let rebuild = m.jOwner !== this;
    if (!rebuild) {
      for (let i = 0; i < m.jCount; i++) {
        const w = m.jList[i]!;
        if (w === v) continue;
        if (m.need[w] !== ne || m.needP[w] !== m.jP[w]) {
          rebuild = true;
          break;
        }
      }
    }
    if (rebuild) {
      J.ef.set(this.base.ef);
      J.st.set(this.base.st);
      J.launched.set(this.base.launched);
      J.hit.set(this.base.hit);
      J.m.set(this.base.m);
      m.jMember.fill(0);
      m.jCount = 0;
      m.jOwner = this;
    }
    const dirty = m.dirty;
    let first = this.n;
    for (let i = 0; i < count; i++) {
      const w = needed[i]!;
      if (m.jMember[w] === 1) continue;
      m.jMember[w] = 1;
      m.jP[w] = m.needP[w]!;
      m.jList[m.jCount++] = w;
      J.launched[w] = 1;
      this.drawHits(J.hit, w, m.needP[w]!);
      dirty[w] = 1;
      first = Math.min(first, m.pos[w]!);
    }
    if (first < this.n) {
      // Dirty: the new members and everything downstream of them.
      const { order, predOffset, predList } = m;
      for (let h = first; h < this.n; h++) {
        const w = order[h]!;
        if (dirty[w] === 1) continue;
        for (let j = predOffset[w]!; j < predOffset[w + 1]!; j++) {
          if (dirty[predList[j]!] === 1) {
            dirty[w] = 1;
            break;
          }
        }
      }
      this.forward(J, first, true);
      for (let h = first; h < this.n; h++) dirty[order[h]!] = 0;
      this.makespans(J);
    }
    return m.jMember[v] === 1;
  }

  /**
   * M4 joint decisions: ΔT of `nodeId` (seconds) when `others` start now too, each hitting with
   * its own P (stratified draws), besides the speculations already in flight.
   */
  deltaTSecWith(nodeId: string, others: readonly JointCandidate[]): number {
    if (others.length === 0) return this.deltaTSec(nodeId);
    const v = this.index(nodeId);
    const m = this.model;
    this.ensure();
    // Validate everything before touching the scratch state.
    const ne = m.nextNeedEpoch();
    const needed = m.needList;
    let count = 0;
    for (let i = 0; i < others.length; i++) {
      const c = others[i]!;
      if (!(c.p >= 0 && c.p <= 1)) throw new ValidationError([{ path: `others[${i}].p`, message: `must be in [0, 1], got ${c.p}` }]);
      const w = this.index(c.id);
      if (w === v) continue;
      if (m.need[w] !== ne) needed[count++] = w;
      m.need[w] = ne;
      m.needP[w] = c.p;
    }
    if (count === 0) {
      this.overlay(this.base, v, true, m.mB);
      return this.saving(this.base.m, m.mB) / 1000;
    }
    const vIn = this.prepareJoint(v, needed, count);
    // The reference: the others launched, v in its baseline state; then v launched and hitting.
    let refM = this.joint.m;
    if (vIn) {
      this.overlay(this.joint, v, false, m.mA);
      refM = m.mA;
    }
    this.overlay(this.joint, v, true, m.mB);
    return this.saving(refM, m.mB) / 1000;
  }

  /** M4 joint decisions: every candidate's ΔT against the others in `launchedIds` (see deltaTSecWith). */
  jointDeltaTSec(candidates: readonly JointCandidate[], launchedIds: ReadonlySet<string>): Map<string, number> {
    const out = new Map<string, number>();
    for (const c of candidates) out.set(c.id, this.deltaTSecWith(c.id, candidates.filter((o) => o.id !== c.id && launchedIds.has(o.id))));
    return out;
  }
}
/**
 * M4: the timing analysis of one run state (build once per state change, reuse per candidate).
 * The edges array identifies the workflow's cached topology model: pass the same array for every
 * state of a workflow, and never mutate it (nor the nodes array, which the analysis keeps).
 */
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

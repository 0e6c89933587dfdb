/**
 * The per-workflow half of the M4 timing analysis (timing.ts): what every run state of one DAG
 * shares, computed once and reused (issue 9: decision p99 ≤ 20 µs on a 50-node DAG).
 *
 * - Topology: the topological order, predecessor and successor lists (CSR), each node's
 *   descendants (on first use).
 * - Draws: each node's Latin-hypercube permutation of the K quantile levels and its hit phase.
 * - Tails: for a node w of the *waiting region* of a state (pending, not speculating, every
 *   upstream pending too, every successor in the region), its tail row R[w][k] = d_w[k] + max over
 *   successors s of R[s][k], the longest remaining path from w's start to the end of the run in
 *   sample k. It depends only on the distributions of w and of its descendants (all waiting), so
 *   a row is kept between states and recomputed only when w's distribution object or a
 *   successor's row changed (`refreshTail`). The analysis re-times only the nodes above that
 *   region per state: the makespan is max over the exits b of the upper part (ef_b + the largest
 *   tail of b's successors in the region), which is the forward pass's max over sinks.
 * - Waiting regions: the region of a state is determined by which nodes are waiting (pending,
 *   not speculating, not pinned by a query); with it go the largest tail of its roots and, for
 *   each node that feeds it, the largest tail of its successors there. The last REGIONS regions
 *   of the workflow are kept and reused by a later state with the same waiting nodes, if these
 *   still have the same distribution objects: the region only changes when a node starts, not
 *   when one ends. The one replaced is refilled in place unless a state's buffers refer to it.
 * - Drawn rows: each not-started node's K draws from its distribution's quantile table.
 * - Buffers: the run states' typed arrays (slots, reused round-robin) and the query scratch.
 */
import { ValidationError } from '../errors.js';
import type { DurationDistribution } from './duration.js';
import { normalQuantile, type RemainingJobs, remainingJobs } from './duration.js';
import { mulberry32 } from './prng.js';

export interface TimingEdge {
  readonly from: string;
  readonly to: string;
}

/** A re-timed state: finish and start times per node and sample, launched nodes and their hits, makespans. */
export interface TimedState {
  readonly ef: Float64Array;
  readonly st: Float64Array;
  readonly launched: Uint8Array;
  readonly hit: Uint8Array;
  readonly m: Float64Array;
  /**
   * Per sample, the second largest makespan term (the waiting region's roots' included; −∞ when
   * none), valid while `top2Ready` (`ensureTop2`, for references that several overlays read).
   */
  readonly top2: Float64Array;
  top2Ready: boolean;
}

/** Node kinds of a state (`StateSlot.kind`). */
export const KIND_DONE = 0;
export const KIND_RUNNING = 1;
export const KIND_WAITING = 2;
export const KIND_SPECULATING = 3;

/** The buffers of one run state's analysis. */
export interface StateSlot {
  owner: object | undefined;
  /** durWait[v*K + k]: duration when v starts after its upstreams (remaining if running, 0 if done). */
  readonly durWait: Float64Array;
  /** durRun[v*K + k]: duration of v's speculative attempt (remaining when already in flight); speculating nodes only. */
  readonly durRun: Float64Array;
  /** The baseline: speculations already in flight launched, the rest waiting. */
  readonly base: TimedState;
  /** The state's waiting region (its node flags and tails are read through it). */
  region: WaitingRegion;
  readonly kind: Uint8Array;
  /** 1 for the nodes re-timed per state (the upper part: not in the region, not a done node under done nodes). */
  readonly isUpper: Uint8Array;
  /** 1 for an upper node without upstreams in the upper part (a waiting one starts at 0). */
  readonly upperRoot: Uint8Array;
  /** The distribution each durWait row was drawn from by table (undefined: drawn per state). */
  readonly rowDist: (DurationDistribution | undefined)[];
  /** The upper part in topological order, and the exits among it. */
  readonly upper: Int32Array;
  upperCount: number;
  /**
   * The upstreams of the upper part's nodes that are in the upper part (the others finish and
   * start at 0): those of upper[i] are upRow[upOffset[i]] to upRow[upOffset[i + 1]] (exclusive),
   * in the order of the workflow's predecessor list.
   */
  readonly upOffset: Int32Array;
  readonly upRow: Int32Array;
  readonly exits: Int32Array;
  exitCount: number;
}

/** Waiting regions kept per workflow model (least recently used replaced). */
const REGIONS = 16;

/** `WaitingRegion.key` codes: not waiting, waiting, waiting but pinned by a query (kept out of the region). */
export const WAIT_NOT = 0;
export const WAIT_FREE = 1;
export const WAIT_PINNED = 2;

/**
 * A waiting region (module header): the pending nodes with every upstream waiting and every
 * downstream in the region, below the upper part of the states that share it. Its arrays are
 * refilled only when no state's buffers refer to it (`region`), so a state reads a fixed region.
 */
export interface WaitingRegion {
  hash: number;
  used: number;
  /** Per node: WAIT_NOT, WAIT_FREE or WAIT_PINNED (what the region was computed from). */
  readonly key: Uint8Array;
  /** 1 for the region's nodes (never re-timed: their tails stand for them). */
  readonly inW: Uint8Array;
  /**
   * For a node outside the region that is a sink or has a successor in it (an exit if it is
   * re-timed), its row in exitTail (0, a row of zeros, for a sink); −1 for the others.
   */
  readonly feedRow: Int32Array;
  /** exitTail[feedRow[b]*K + k]: the largest tail row of b's successors in the region (0 for a sink). */
  exitTail: Float64Array;
  /** Per sample, the largest tail row of the region's roots (nodes without upstreams). */
  readonly rootTail: Float64Array;
  /** The region's nodes (the wCount first) and the distribution objects their tails were computed from. */
  readonly wList: Int32Array;
  wCount: number;
  readonly wDist: (DurationDistribution | undefined)[];
}

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

/** Run-state buffers kept at most per workflow model (they grow only while analyses interleave). */
const SLOTS = 8;

/**
 * Per workflow: topology, draws' permutations and phases, descendants, tails, buffers. Shared
 * by every analysis of the same DAG (cached by the edges array and checked against the node ids).
 */
export class TimingModel {
  readonly samples: number;
  readonly seed: number;
  readonly n: number;
  readonly ids: readonly string[];
  readonly idx: Map<string, number>;
  readonly order: Int32Array;
  readonly pos: Int32Array;
  readonly predOffset: Int32Array;
  readonly predList: Int32Array;
  readonly succOffset: Int32Array;
  readonly succList: Int32Array;
  /** perm[v*K + k]: node v's quantile level index at sample k; level[v*K + k] = (perm + ½)/K. */
  readonly perm: Int32Array;
  readonly level: Float64Array;
  readonly phase: Float64Array;
  /** hitLevel[v*K + k] = frac((k + ½)/K + phase_v): sample k of v hits iff hitLevel < p. */
  readonly hitLevel: Float64Array;
  private readonly desc: (Int32Array | undefined)[];
  /** Tail rows (module header), with the distribution and successor versions each was computed from. */
  readonly tail: Float64Array;
  private readonly tailDist: (DurationDistribution | undefined)[];
  private readonly tailVer: Int32Array;
  /** tailSeen[j]: the version of successor succList[j] when its predecessor's row was computed. */
  private readonly tailSeen: Int32Array;
  private tailClock = 0;
  /** drawn[v*K + k]: node v's duration at its level of sample k, from the distribution drawnDist[v] (`drawnRow`). */
  private readonly drawn: Float64Array;
  private readonly drawnDist: (DurationDistribution | undefined)[];
  // Query scratch (used synchronously inside one query).
  readonly ovEf: Float64Array;
  readonly ovSt: Float64Array;
  readonly stamp: Int32Array;
  epoch = 0;
  readonly tEs: Float64Array;
  readonly tSs: Float64Array;
  /** The running lognormal nodes of the state being loaded, drawn in one call (`lognormalRemainingRows`). */
  readonly runJobs: RemainingJobs;
  readonly mA: Float64Array;
  readonly mB: Float64Array;
  readonly dirty: Uint8Array;
  readonly need: Int32Array;
  readonly needP: Float64Array;
  readonly needList: Int32Array;
  needEpoch = 0;
  /** The last `others` list of a joint query, with its entries' objects, ids and node indices. */
  othersRef: readonly { readonly id: string }[] | undefined = undefined;
  othersObj: (object | undefined)[] = [];
  othersId: (string | undefined)[] = [];
  othersIdx = new Int32Array(0);
  /** The upstream rows of the node a pass computes: offsets u*K, and the arrays holding their finish and start times. */
  readonly upsK: Int32Array;
  readonly upsEf: Float64Array[];
  readonly upsSt: Float64Array[];
  /** The joint reference (some candidates launched) of `jOwner`, kept between queries. */
  jOwner: object | undefined = undefined;
  readonly jEf: Float64Array;
  readonly jSt: Float64Array;
  readonly jLaunched: Uint8Array;
  readonly jHit: Uint8Array;
  /** The P each node's row of jHit was drawn for (NaN: a speculation's hits, copied from a state). */
  readonly jHitP: Float64Array;
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
  /** Waiting regions (module header), and the key of the state being loaded (filled by the analysis). */
  private readonly regions: WaitingRegion[] = [];
  private regionClock = 0;
  readonly regionKey: Uint8Array;
  /** A slot's region until its first state is loaded (no node waits). */
  private readonly noRegion: WaitingRegion;

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
    // Predecessors (CSR by target) and successors (CSR by source).
    this.predOffset = new Int32Array(n + 1);
    for (let v = 0; v < n; v++) this.predOffset[v + 1] = this.predOffset[v]! + indeg[v]!;
    this.predList = new Int32Array(m);
    const fillP = this.predOffset.slice(0, n);
    for (let j = 0; j < m; j++) this.predList[fillP[to[j]!]!++] = from[j]!;
    for (let v = 0; v < n; v++) outdeg[v + 1]! += outdeg[v]!;
    this.succOffset = outdeg;
    this.succList = new Int32Array(m);
    const fillS = outdeg.slice(0, n);
    for (let j = 0; j < m; j++) this.succList[fillS[from[j]!]!++] = to[j]!;
    // Kahn's order.
    this.order = new Int32Array(n);
    let tail = 0;
    for (let v = 0; v < n; v++) if (indeg[v] === 0) this.order[tail++] = v;
    for (let h = 0; h < tail; h++) {
      const u = this.order[h]!;
      for (let k = this.succOffset[u]!; k < this.succOffset[u + 1]!; k++) {
        const w = this.succList[k]!;
        indeg[w]! -= 1;
        if (indeg[w] === 0) this.order[tail++] = w;
      }
    }
    if (tail !== n) throw new ValidationError([{ path: 'edges', message: 'the graph has a cycle' }]);
    this.pos = new Int32Array(n);
    for (let h = 0; h < n; h++) this.pos[this.order[h]!] = h;
    this.perm = new Int32Array(n * K);
    this.phase = new Float64Array(n);
    for (let v = 0; v < n; v++) {
      lhsPermutation(this.ids[v]!, seed, K, this.perm.subarray(v * K, v * K + K));
      this.phase[v] = hitPhase(this.ids[v]!, seed);
    }
    this.level = new Float64Array(n * K);
    for (let i = 0; i < n * K; i++) this.level[i] = (this.perm[i]! + 0.5) / K;
    this.hitLevel = new Float64Array(n * K);
    for (let v = 0; v < n; v++) for (let k = 0; k < K; k++) this.hitLevel[v * K + k] = ((k + 0.5) / K + this.phase[v]!) % 1;
    this.desc = new Array<Int32Array | undefined>(n).fill(undefined);
    this.tail = new Float64Array(n * K);
    this.tailDist = new Array<DurationDistribution | undefined>(n).fill(undefined);
    this.tailVer = new Int32Array(n);
    this.tailSeen = new Int32Array(m);
    this.drawn = new Float64Array(n * K);
    this.drawnDist = new Array<DurationDistribution | undefined>(n).fill(undefined);
    this.ovEf = new Float64Array(n * K);
    this.ovSt = new Float64Array(n * K);
    this.stamp = new Int32Array(n);
    this.tEs = new Float64Array(K);
    this.runJobs = remainingJobs(n);
    this.tSs = new Float64Array(K);
    this.mA = new Float64Array(K);
    this.mB = new Float64Array(K);
    this.dirty = new Uint8Array(n);
    this.need = new Int32Array(n);
    this.needP = new Float64Array(n);
    this.needList = new Int32Array(n);
    this.upsK = new Int32Array(n);
    this.upsEf = new Array<Float64Array>(n).fill(this.ovEf);
    this.upsSt = new Array<Float64Array>(n).fill(this.ovSt);
    this.jEf = new Float64Array(n * K);
    this.jSt = new Float64Array(n * K);
    this.jLaunched = new Uint8Array(n);
    this.jHit = new Uint8Array(n * K);
    this.jHitP = new Float64Array(n).fill(Number.NaN);
    this.jM = new Float64Array(K);
    this.jMember = new Uint8Array(n);
    this.jP = new Float64Array(n);
    this.jList = new Int32Array(n);
    this.regionKey = new Uint8Array(n);
    this.noRegion = this.newRegion();
    this.joint = { ef: this.jEf, st: this.jSt, launched: this.jLaunched, hit: this.jHit, m: this.jM, top2: new Float64Array(K), top2Ready: false };
  }

  /**
   * The waiting region of a state whose nodes' waiting codes are in `regionKey`: a kept one with
   * the same key whose nodes still have the same distribution objects in `nodes`, else computed
   * (its nodes' tail rows refreshed) and kept in place of the least recently used (or of the one
   * with the same key). Throws ValidationError (path `nodes[v].duration`) on a bad duration.
   */
  region(nodes: readonly { readonly duration: DurationDistribution }[]): WaitingRegion {
    const key = this.regionKey;
    const n = this.n;
    let h = 0x811c9dc5;
    for (let v = 0; v < n; v++) h = Math.imul(h ^ key[v]!, 0x01000193);
    h >>>= 0;
    let replace = -1;
    for (let x = 0; x < this.regions.length; x++) {
      const e = this.regions[x]!;
      if (e.hash !== h) continue;
      let same = true;
      for (let v = 0; v < n && same; v++) if (e.key[v] !== key[v]) same = false;
      if (!same) continue;
      // The same waiting nodes (one entry per key): current if their distributions are.
      for (let i = 0; i < e.wCount && same; i++) if (nodes[e.wList[i]!]!.duration !== e.wDist[i]) same = false;
      if (same) {
        e.used = ++this.regionClock;
        return e;
      }
      replace = x;
      break;
    }
    if (replace < 0 && this.regions.length >= REGIONS) {
      replace = 0;
      for (let x = 1; x < this.regions.length; x++) if (this.regions[x]!.used < this.regions[replace]!.used) replace = x;
    }
    // The entry replaced is refilled in place unless a state's buffers still refer to it.
    let r: WaitingRegion | undefined = replace < 0 ? undefined : this.regions[replace];
    for (let i = 0; i < this.slots.length && r !== undefined; i++) if (this.slots[i]!.region === r) r = undefined;
    r ??= this.newRegion();
    this.computeRegion(nodes, h, r);
    if (replace < 0) this.regions.push(r);
    else this.regions[replace] = r;
    return r;
  }

  private newRegion(): WaitingRegion {
    const n = this.n;
    return {
      hash: 0,
      used: 0,
      key: new Uint8Array(n),
      inW: new Uint8Array(n),
      feedRow: new Int32Array(n).fill(-1),
      exitTail: new Float64Array(this.samples),
      rootTail: new Float64Array(this.samples),
      wList: new Int32Array(n),
      wCount: 0,
      wDist: new Array<DurationDistribution | undefined>(n).fill(undefined),
    };
  }

  /** Computes into `r` the waiting region of the key in `regionKey` (its nodes' tail rows refreshed). */
  private computeRegion(nodes: readonly { readonly duration: DurationDistribution }[], hash: number, r: WaitingRegion): void {
    const n = this.n;
    const K = this.samples;
    const key = this.regionKey;
    const { order, predOffset, predList, succOffset, succList, tail } = this;
    const { inW, rootTail, wList, wDist, feedRow } = r;
    r.hash = hash;
    r.used = ++this.regionClock;
    r.key.set(key);
    inW.fill(0);
    rootTail.fill(0);
    wDist.fill(undefined);
    r.wCount = 0;
    // Bottom up, with the region's tail rows; the roots' largest tail per sample.
    this.beginTails();
    let wCount = 0;
    for (let h = n - 1; h >= 0; h--) {
      const v = order[h]!;
      let w = key[v] === WAIT_FREE;
      const p0 = predOffset[v]!;
      const p1 = predOffset[v + 1]!;
      for (let j = p0; j < p1 && w; j++) if (key[predList[j]!] === WAIT_NOT) w = false;
      for (let j = succOffset[v]!; j < succOffset[v + 1]! && w; j++) if (inW[succList[j]!] === 0) w = false;
      if (!w) continue;
      inW[v] = 1;
      const dist = nodes[v]!.duration;
      if (!this.tailIsCurrent(v, dist)) this.refreshTail(v, dist);
      wList[wCount] = v;
      wDist[wCount] = dist;
      wCount++;
      if (p0 === p1) {
        const b = v * K;
        for (let k = 0; k < K; k++) if (tail[b + k]! > rootTail[k]!) rootTail[k] = tail[b + k]!;
      }
    }
    r.wCount = wCount;
    // The nodes that feed it: sinks (the zero row) and the upstreams of its nodes outside it.
    let rows = 1;
    for (let v = 0; v < n; v++) {
      feedRow[v] = -1;
      if (inW[v] === 1) continue;
      const s0 = succOffset[v]!;
      const s1 = succOffset[v + 1]!;
      if (s0 === s1) feedRow[v] = 0;
      for (let j = s0; j < s1; j++) {
        if (inW[succList[j]!] === 1) {
          feedRow[v] = rows++;
          break;
        }
      }
    }
    if (r.exitTail.length < rows * K) r.exitTail = new Float64Array(Math.min(n + 1, 2 * rows) * K);
    const exitTail = r.exitTail;
    for (let k = 0; k < K; k++) exitTail[k] = 0;
    for (let v = 0; v < n; v++) {
      if (feedRow[v]! <= 0) continue;
      const b = feedRow[v]! * K;
      let first = true;
      for (let j = succOffset[v]!; j < succOffset[v + 1]!; j++) {
        const s = succList[j]!;
        if (inW[s] === 0) continue;
        const sb = s * K;
        if (first) {
          for (let k = 0; k < K; k++) exitTail[b + k] = tail[sb + k]!;
          first = false;
        } else for (let k = 0; k < K; k++) if (tail[sb + k]! > exitTail[b + k]!) exitTail[b + k] = tail[sb + k]!;
      }
    }
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

  /** Before the tail rows of a state are refreshed: keeps the version clock in range. */
  beginTails(): void {
    if (this.tailClock >= 0x3fffffff) {
      this.tailDist.fill(undefined);
      this.tailClock = 0;
    }
  }

  /** Whether node v's tail row is current for `dist` (its successors' rows already are). */
  tailIsCurrent(v: number, dist: DurationDistribution): boolean {
    if (this.tailDist[v] !== dist) return false;
    const ver = this.tailVer;
    const seen = this.tailSeen;
    const succ = this.succList;
    for (let j = this.succOffset[v]!; j < this.succOffset[v + 1]!; j++) if (seen[j] !== ver[succ[j]!]) return false;
    return true;
  }

  /**
   * Recomputes node v's tail row for distribution `dist` (its successors' rows are current:
   * called in reverse topological order). Throws ValidationError (path `nodes[v].duration`) on a
   * duration that is not finite and ≥ 0.
   */
  refreshTail(v: number, dist: DurationDistribution): void {
    const K = this.samples;
    const s0 = this.succOffset[v]!;
    const s1 = this.succOffset[v + 1]!;
    const ver = this.tailVer;
    const seen = this.tailSeen;
    const succ = this.succList;
    const t = quantileTable(dist, K);
    const row = this.tail;
    const perm = this.perm;
    const b = v * K;
    for (let k = 0; k < K; k++) {
      let mx = 0;
      for (let j = s0; j < s1; j++) {
        const x = row[succ[j]! * K + k]!;
        if (x > mx) mx = x;
      }
      const d = t[perm[b + k]!]!;
      if (!(d >= 0 && Number.isFinite(d))) {
        this.tailDist[v] = undefined;
        ver[v] = ++this.tailClock;
        throw new ValidationError([{ path: `nodes[${v}].duration`, message: `gave a duration of ${d} ms at quantile ${(perm[b + k]! + 0.5) / K}` }]);
      }
      row[b + k] = d + mx;
    }
    for (let j = s0; j < s1; j++) seen[j] = ver[succ[j]!]!;
    this.tailDist[v] = dist;
    ver[v] = ++this.tailClock;
  }

  /**
   * Node v's durations at its K levels (sample k at level (perm[k] + ½)/K) from `dist`'s quantile
   * table, as the row of `drawn` at v*K: computed once per node and distribution object, then
   * shared by every state in which v has not started. Throws ValidationError (path
   * `nodes[v].duration`) on a duration that is not finite and ≥ 0.
   */
  drawnRow(v: number, dist: DurationDistribution): Float64Array {
    if (this.drawnDist[v] === dist) return this.drawn;
    const K = this.samples;
    const t = quantileTable(dist, K);
    const perm = this.perm;
    const row = this.drawn;
    this.drawnDist[v] = undefined;
    for (let k = v * K; k < v * K + K; k++) {
      const d = t[perm[k]!]!;
      if (!(d >= 0 && Number.isFinite(d))) throw new ValidationError([{ path: `nodes[${v}].duration`, message: `gave a duration of ${d} ms at quantile ${(perm[k]! + 0.5) / K}` }]);
      row[k] = d;
    }
    this.drawnDist[v] = dist;
    return row;
  }

  /** A slot for `owner`'s state: a new one until SLOTS exist, then the least recently taken. */
  takeSlot(owner: object): StateSlot {
    let slot: StateSlot;
    if (this.slots.length < this.slotTarget) {
      const n = this.n;
      const K = this.samples;
      const nK = n * K;
      const f = new Float64Array(4 * nK + 2 * K);
      const b = new Uint8Array(4 * n + nK);
      slot = {
        owner,
        durWait: f.subarray(0, nK),
        durRun: f.subarray(nK, 2 * nK),
        base: { ef: f.subarray(2 * nK, 3 * nK), st: f.subarray(3 * nK, 4 * nK), launched: b.subarray(0, n), hit: b.subarray(4 * n), m: f.subarray(4 * nK, 4 * nK + K), top2: f.subarray(4 * nK + K), top2Ready: false },
        region: this.noRegion,
        kind: b.subarray(n, 2 * n),
        isUpper: b.subarray(2 * n, 3 * n),
        upperRoot: b.subarray(3 * n, 4 * n),
        rowDist: new Array<DurationDistribution | undefined>(n).fill(undefined),
        upper: new Int32Array(n),
        upperCount: 0,
        upOffset: new Int32Array(n + 1),
        upRow: new Int32Array(this.predList.length),
        exits: new Int32Array(n),
        exitCount: 0,
      };
      this.slots.push(slot);
    } else {
      slot = this.slots[this.nextSlot % this.slots.length]!;
      this.nextSlot = (this.nextSlot + 1) % this.slots.length;
      slot.owner = owner;
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

/** Models per edges array (a workflow's definition is parsed once and shared by its runs). */
const models = new WeakMap<readonly TimingEdge[], TimingModel>();
export function modelFor(nodes: readonly { readonly id: string }[], edges: readonly TimingEdge[], K: number, seed: number): TimingModel {
  const hit = models.get(edges);
  if (hit?.matches(nodes, K, seed) === true) return hit;
  const m = new TimingModel(nodes, edges, K, seed);
  models.set(edges, m);
  return m;
}

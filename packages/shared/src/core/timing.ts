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
 * - Per workflow (timing-model.ts, cached by the edges array): the topological order, edge
 *   lists, each node's Latin-hypercube permutation and hit phase, its descendants, the tail rows
 *   of the waiting region, and the buffers.
 * - Per distribution: its K quantiles, sorted, computed once (`quantileTable`); per node and
 *   distribution, the row of its K draws (`drawnRow`), copied into a state where it has not started.
 * - Per waiting region (which nodes wait, below): the region, its roots' largest tail and the
 *   largest tail below each node that feeds it, kept per workflow (timing-model.ts, `region`)
 *   and reused by a later state with the same waiting nodes, while their distribution objects
 *   stay the same: the region changes when a node starts, not when one ends, and another run of
 *   the workflow at the same point has the same one. Per state, only the upper part (a pass over
 *   the node kinds) and the draws of running nodes and in-flight speculations are new.
 * - Running nodes' conditional draws: F(t) once per node, then every lognormal running node of
 *   the state in one call (`lognormalRemainingRows`: the quantile levels' Φ⁻¹ in one loop over
 *   all their levels, the exponentials in another), e^y as `expDraw` computes it (within 4·2^-52
 *   of Math.exp: the one difference from the closures' numbers, below 1e-12 s of ΔT).
 * - The waiting region of a state (pending nodes with every upstream pending and every
 *   downstream in the region: the part of the DAG below the frontier) is never re-timed: a node
 *   there cannot be a candidate's upstream, and its tail row (the longest path from its start to
 *   the end, per sample) is kept between states while its and its descendants' distributions
 *   stay the same. Per state, only the upper part is drawn and re-timed (done nodes under done
 *   nodes are skipped: their times are 0): running nodes (conditional remaining time), the
 *   frontier (pending nodes with an upstream done, running or speculating, where candidates are)
 *   and in-flight speculations. The makespan is the largest of ef_b + exitTail_b over the upper
 *   part's exits b. A query on a node of the region (or with one among its `others`) takes it
 *   out of the region first (`pin`, once per node and analysis).
 * - Per candidate: only its upper descendants are re-timed, into an overlay over the reference
 *   pass, and the re-timing stops where a node's finish and start times come out unchanged. A
 *   joint query's reference (the siblings launched) is kept and extended in place from one
 *   sibling's query to the next; a sibling's hit row is redrawn only when its P changed. When an
 *   overlay changes one exit, a sample's makespan is the reference's unless that exit's term was
 *   it; there the others' largest is the reference's second largest term, kept for references
 *   that several overlays read, or (the first query of a state) the other terms read again.
 * - A node's latest upstream finish and start per sample: sample-major over up to three
 *   upstreams (`maxRowsOf` over the state's list of upper upstreams, `maxRows` in overlays), no
 *   data-dependent branch per sample.
 * The results are those of a full re-timing per query up to the rounding of sums taken in another
 * order (a path's durations are added from its end in a tail row) and expDraw's last bits:
 * timing.test.ts checks them against a direct implementation on random DAGs and on every state
 * of layered workflows (|difference| < 1e-9 s, the rule's decision the same).
 */
import { ValidationError } from '../errors.js';
import type { DurationDistribution } from './duration.js';
import { cdfAt, fixedDuration, lognormalRemainingRows, OUTRUN_TAIL, remainingQuantilesInto } from './duration.js';
import {
  KIND_DONE,
  KIND_RUNNING,
  KIND_SPECULATING,
  KIND_WAITING,
  modelFor,
  type StateSlot,
  type TimedState,
  type TimingEdge,
  type TimingModel,
  WAIT_FREE,
  WAIT_NOT,
  WAIT_PINNED,
} from './timing-model.js';

export { hitPhase, lhsPermutation, quantileTable, type TimingEdge } from './timing-model.js';

export type TimingNodeState = 'done' | 'running' | 'pending';

export interface TimingNode {
  readonly id: string;
  readonly state: TimingNodeState;
  /** The node's (whole) duration distribution; ignored for done nodes. Treated as immutable. */
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

/** `StateSlot.rowDist` of a done node's row (zeros). */
const DONE_ROW = fixedDuration(0);

function badDuration(v: number, d: number, q: number): ValidationError {
  return new ValidationError([{ path: `nodes[${v}].duration`, message: `gave a duration of ${d} ms at quantile ${q}` }]);
}

/**
 * out[o + k] = the largest srcs[j][rows[j] + k] over the np upstream rows j, or 0 when np = 0:
 * a node's latest upstream finish (or start) per sample. Sample-major for up to three upstreams
 * (issue 9: the upstreams' order changes from sample to sample, so a compare-and-store per
 * upstream and sample mispredicted half of its branches), pred-major beyond. Times are ≥ 0, so
 * the 0 of np = 0 is also the floor of the others.
 */
function maxRows(np: number, rows: Int32Array, srcs: readonly Float64Array[], out: Float64Array, o: number, K: number): void {
  if (np === 0) {
    for (let k = 0; k < K; k++) out[o + k] = 0;
    return;
  }
  const s0 = srcs[0]!;
  const r0 = rows[0]!;
  if (np === 1) {
    for (let k = 0; k < K; k++) out[o + k] = s0[r0 + k]!;
    return;
  }
  const s1 = srcs[1]!;
  const r1 = rows[1]!;
  if (np === 2) {
    for (let k = 0; k < K; k++) out[o + k] = Math.max(s0[r0 + k]!, s1[r1 + k]!);
    return;
  }
  const s2 = srcs[2]!;
  const r2 = rows[2]!;
  for (let k = 0; k < K; k++) out[o + k] = Math.max(s0[r0 + k]!, s1[r1 + k]!, s2[r2 + k]!);
  for (let j = 3; j < np; j++) {
    const sj = srcs[j]!;
    const rj = rows[j]!;
    for (let k = 0; k < K; k++) out[o + k] = Math.max(out[o + k]!, sj[rj + k]!);
  }
}

/**
 * maxRows with every upstream row in one array: out[o + k] = the largest src[rows[j] + k] over
 * p0 ≤ j < p1 (0 when none), sample-major for up to three rows.
 */
function maxRowsOf(src: Float64Array, rows: Int32Array, p0: number, p1: number, out: Float64Array, o: number, K: number): void {
  const np = p1 - p0;
  if (np === 0) {
    for (let k = 0; k < K; k++) out[o + k] = 0;
    return;
  }
  const r0 = rows[p0]! * K;
  if (np === 1) {
    for (let k = 0; k < K; k++) out[o + k] = src[r0 + k]!;
    return;
  }
  const r1 = rows[p0 + 1]! * K;
  if (np === 2) {
    for (let k = 0; k < K; k++) out[o + k] = Math.max(src[r0 + k]!, src[r1 + k]!);
    return;
  }
  const r2 = rows[p0 + 2]! * K;
  for (let k = 0; k < K; k++) out[o + k] = Math.max(src[r0 + k]!, src[r1 + k]!, src[r2 + k]!);
  for (let j = p0 + 3; j < p1; j++) {
    const rj = rows[j]! * K;
    for (let k = 0; k < K; k++) out[o + k] = Math.max(out[o + k]!, src[rj + k]!);
  }
}

export class TimingAnalysis {
  readonly samples: number;
  private makespanMs: number | undefined;
  private readonly model: TimingModel;
  private readonly n: number;
  /** The run state (kept: the analysis recomputes itself if its buffers were handed to another). */
  private readonly nodes: readonly TimingNode[];
  private slot: StateSlot | undefined = undefined;
  private durWait!: Float64Array;
  private durRun!: Float64Array;
  private base!: TimedState;
  private readonly joint: TimedState;
  private memo: Map<string, number> | undefined;
  private baseReady = false;
  /** Nodes taken out of the waiting region because a query named them (allocated on first use). */
  private pinned: Uint8Array | undefined;

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
  }

  /** E[makespan] from now when every node not already speculating waits for its upstreams, ms. */
  get expectedMakespanMs(): number {
    if (this.makespanMs === undefined) {
      this.ensure();
      this.ensureBase();
      let sum = 0;
      for (let k = 0; k < this.samples; k++) sum += this.base.m[k]!;
      this.makespanMs = sum / this.samples;
    }
    return this.makespanMs;
  }

  /**
   * The baseline forward pass, on first need: a joint query builds its reference from the
   * draws directly, so the first decision of a state does not pay for a pass it does not read.
   */
  private ensureBase(): void {
    if (this.baseReady) return;
    this.forward(this.base, 0, false);
    // Its makespans with their second largest terms: every single query's overlay reads it.
    this.base.top2Ready = false;
    this.ensureTop2(this.base);
    this.baseReady = true;
  }

  /**
   * Takes a buffer slot (keeps its own when it still holds it) and computes the state into it:
   * node kinds, the waiting region and its tails, the upper part's draws, its baseline forward
   * pass and makespans.
   */
  private load(): void {
    const K = this.samples;
    const n = this.n;
    const model = this.model;
    const slot = this.slot !== undefined && this.slot.owner === this ? this.slot : model.takeSlot(this);
    this.slot = slot;
    this.durWait = slot.durWait;
    this.durRun = slot.durRun;
    this.base = slot.base;
    if (model.jOwner === this) model.jOwner = undefined;
    const { kind, isUpper, upperRoot, upper, exits } = slot;
    const { order, predOffset, predList, level, regionKey } = model;
    const base = slot.base;
    const nodes = this.nodes;
    const pinned = this.pinned;
    base.launched.fill(0);
    for (let v = 0; v < n; v++) {
      const node = nodes[v]!;
      if (node.state === 'done') kind[v] = KIND_DONE;
      else if (node.state === 'running') kind[v] = KIND_RUNNING;
      else if (node.speculation === undefined) kind[v] = KIND_WAITING;
      else {
        const p = node.speculation.p;
        if (!(p >= 0 && p <= 1)) throw new ValidationError([{ path: `nodes[${v}].speculation.p`, message: `must be in [0, 1], got ${p}` }]);
        kind[v] = KIND_SPECULATING;
        base.launched[v] = 1;
        this.drawHits(base.hit, v, p);
      }
      regionKey[v] = kind[v] !== KIND_WAITING ? WAIT_NOT : pinned !== undefined && pinned[v] === 1 ? WAIT_PINNED : WAIT_FREE;
    }
    // The waiting region with its tails, kept per workflow for the same waiting nodes.
    const region = model.region(nodes);
    slot.region = region;
    const { inW, feedRow } = region;
    // The upper part, top down: every node outside the region but the done ones under done nodes
    // (their finish and start times are 0 in every sample: passes skip them as upstreams). Its
    // exits: the nodes that feed the region or are sinks.
    let count = 0;
    let ex = 0;
    const { upOffset, upRow } = slot;
    let e = 0;
    // A prefix of done nodes in topological order are done nodes under done nodes: not upper.
    let h0 = 0;
    for (; h0 < n && kind[order[h0]!] === KIND_DONE; h0++) isUpper[order[h0]!] = 0;
    for (let h = h0; h < n; h++) {
      const v = order[h]!;
      if (inW[v] === 1) {
        isUpper[v] = 0;
        continue;
      }
      const e0 = e;
      for (let j = predOffset[v]!; j < predOffset[v + 1]!; j++) {
        const u = predList[j]!;
        if (isUpper[u] === 1) upRow[e++] = u;
      }
      const root = e === e0 ? 1 : 0;
      const compute = kind[v] !== KIND_DONE || root === 0;
      isUpper[v] = compute ? 1 : 0;
      upperRoot[v] = root;
      if (!compute) {
        e = e0;
        continue;
      }
      upOffset[count] = e0;
      upper[count++] = v;
      if (feedRow[v]! >= 0) exits[ex++] = v;
    }
    upOffset[count] = e;
    slot.upperCount = count;
    slot.exitCount = ex;
    // Draws of the upper part. A row drawn from a distribution's table (a node not yet started)
    // is kept in the slot while the node's distribution object stays the same; durRun is read
    // only for in-flight speculations (for the others, the attempt is the node's own draw).
    const durWait = this.durWait;
    const durRun = this.durRun;
    const rowDist = slot.rowDist;
    const jobs = model.runJobs;
    let jobCount = 0;
    for (let i = 0; i < count; i++) {
      const v = upper[i]!;
      const pb = v * K;
      if (kind[v] === KIND_DONE) {
        if (rowDist[v] !== DONE_ROW) durWait.fill(0, pb, pb + K);
        rowDist[v] = DONE_ROW;
        continue;
      }
      const node = nodes[v]!;
      const dist = node.duration;
      const elapsed = kind[v] === KIND_RUNNING ? (node.elapsedMs ?? 0) : 0;
      if (elapsed > 0) {
        // Conditional remaining time T − t given T > t; F(t) once per node. A lognormal's levels
        // are drawn below with those of the state's other running lognormals, in one call.
        rowDist[v] = undefined;
        const ln = dist.lognormal;
        const f = ln === undefined ? 0 : cdfAt(dist, elapsed);
        if (ln !== undefined && 1 - f > OUTRUN_TAIL) {
          jobs.row[jobCount] = pb;
          jobs.f[jobCount] = f;
          jobs.mu[jobCount] = ln.mu;
          jobs.sigma[jobCount] = ln.sigma;
          jobs.elapsed[jobCount] = elapsed;
          jobs.halfMean[jobCount] = Math.max(1, dist.meanMs / 2);
          jobCount++;
        } else {
          remainingQuantilesInto(dist, elapsed, level, pb, K, durWait);
          for (let k = pb; k < pb + K; k++) {
            const d = durWait[k]!;
            if (!(d >= 0 && Number.isFinite(d))) throw badDuration(v, d, level[k]!);
          }
        }
      } else if (rowDist[v] !== dist) {
        // Not started: the node's row of table draws, kept per workflow and distribution.
        const row = model.drawnRow(v, dist);
        for (let k = pb; k < pb + K; k++) durWait[k] = row[k]!;
        rowDist[v] = dist;
      }
      if (kind[v] !== KIND_SPECULATING) continue;
      const spec = node.speculation!;
      if (spec.done === true) durRun.fill(0, pb, pb + K);
      else if (spec.elapsedMs > 0) remainingQuantilesInto(dist, spec.elapsedMs, level, pb, K, durRun);
      else for (let k = pb; k < pb + K; k++) durRun[k] = dist.quantileMs(level[k]!);
    }
    if (jobCount > 0) {
      const bad = lognormalRemainingRows(jobs, jobCount, level, K, durWait);
      if (bad >= 0) throw badDuration(Math.floor(bad / K), durWait[bad]!, level[bad]!);
    }
    this.baseReady = false;
  }

  /** Recomputes the state if another analysis of the same workflow has taken its buffers since. */
  private ensure(): void {
    if (this.slot!.owner !== this) {
      this.model.slotStolen();
      this.load();
    }
  }

  /** Takes nodes of the waiting region named by a query out of it (the `count` first of `list`, and v). */
  private pinIfWaiting(v: number, list: Int32Array, count: number): void {
    const inW = this.slot!.region.inW;
    let any = inW[v] === 1;
    for (let i = 0; i < count && !any; i++) if (inW[list[i]!] === 1) any = true;
    if (!any) return;
    this.pinned ??= new Uint8Array(this.n);
    this.pinned[v] = 1;
    for (let i = 0; i < count; i++) this.pinned[list[i]!] = 1;
    this.load();
  }

  /** Stratified hit draws of node v: sample k hits iff frac((k + ½)/K + phase) < p. */
  private drawHits(hit: Uint8Array, v: number, p: number): void {
    const K = this.samples;
    const u = this.model.hitLevel;
    for (let k = v * K; k < v * K + K; k++) hit[k] = u[k]! < p ? 1 : 0;
  }

  /**
   * Forward pass in place over the upper part's nodes at topological positions ≥ `from` (only
   * the `dirty` ones when `onlyDirty`).
   * A node that waits starts at es = the latest finish of its upstreams. A launched node whose
   * guess hits starts when its latest upstream starts (now, for upstreams already running) and
   * commits when its upstreams have confirmed the guess: finish = max(start + duration, es).
   */
  private forward(s: TimedState, from: number, onlyDirty: boolean): void {
    const K = this.samples;
    const { pos, dirty, tEs, tSs } = this.model;
    const slot = this.slot!;
    const { upper, kind, upperRoot, upOffset, upRow } = slot;
    const count = slot.upperCount;
    const { ef, st, launched, hit } = s;
    const durWait = this.durWait;
    for (let i = 0; i < count; i++) {
      const v = upper[i]!;
      if (pos[v]! < from || (onlyDirty && dirty[v] === 0)) continue;
      const base = v * K;
      // Upstreams outside the upper part (done under done nodes) finish and start at 0: not listed.
      const p0 = upOffset[i]!;
      const p1 = upOffset[i + 1]!;
      if (launched[v] === 1) {
        const durRun = kind[v] === KIND_SPECULATING ? this.durRun : durWait;
        // Whether every upstream starts now in every sample (waiting, with no upstream in the
        // upper part: start 0), as a candidate's running upstreams do; then ss = 0 without reading.
        let startsNow = true;
        for (let j = p0; j < p1; j++) {
          const u = upRow[j]!;
          if (launched[u] === 1 || upperRoot[u] === 0) startsNow = false;
        }
        // The latest upstream finish (es) and start (ss) per sample.
        maxRowsOf(ef, upRow, p0, p1, tEs, 0, K);
        if (startsNow) {
          for (let k = 0; k < K; k++) {
            const es = tEs[k]!;
            if (hit[base + k] === 1) {
              st[base + k] = 0;
              ef[base + k] = Math.max(0 + durRun[base + k]!, es);
            } else {
              st[base + k] = es;
              ef[base + k] = es + durWait[base + k]!;
            }
          }
          continue;
        }
        maxRowsOf(st, upRow, p0, p1, tSs, 0, K);
        for (let k = 0; k < K; k++) {
          const es = tEs[k]!;
          const ss = tSs[k]!;
          if (hit[base + k] === 1) {
            st[base + k] = ss;
            ef[base + k] = Math.max(ss + durRun[base + k]!, es);
          } else {
            st[base + k] = es;
            ef[base + k] = es + durWait[base + k]!;
          }
        }
      } else if (p0 === p1) {
        for (let k = base; k < base + K; k++) {
          st[k] = 0;
          ef[k] = 0 + durWait[k]!;
        }
      } else {
        // Waiting: it starts at es (written straight into its start row).
        maxRowsOf(ef, upRow, p0, p1, st, base, K);
        for (let k = base; k < base + K; k++) ef[k] = st[k]! + durWait[k]!;
      }
    }
  }

  /** Makespans of a reference state into s.m: per sample, the largest of the exits' ef + tail and the region's roots' tails. */
  private refMakespans(s: TimedState): void {
    const K = this.samples;
    const slot = this.slot!;
    const { exits } = slot;
    const { exitTail, rootTail, feedRow } = slot.region;
    const { ef, m } = s;
    for (let k = 0; k < K; k++) m[k] = rootTail[k]!;
    for (let i = 0; i < slot.exitCount; i++) {
      const bb = exits[i]! * K;
      const tb = feedRow[exits[i]!]! * K;
      for (let k = 0; k < K; k++) m[k] = Math.max(m[k]!, ef[bb + k]! + exitTail[tb + k]!);
    }
    s.top2Ready = false;
  }

  /**
   * s.m again with the second largest of all the terms (s.top2), for a reference that several
   * overlays changing one exit read: they then get their makespans in O(K) (the others' largest
   * is s.top2 where that exit's own term is the makespan, else s.m). Max and min per term.
   */
  private ensureTop2(s: TimedState): void {
    if (s.top2Ready) return;
    const K = this.samples;
    const slot = this.slot!;
    const { exits } = slot;
    const { exitTail, rootTail, feedRow } = slot.region;
    const { ef, m, top2 } = s;
    for (let k = 0; k < K; k++) {
      m[k] = rootTail[k]!;
      top2[k] = Number.NEGATIVE_INFINITY;
    }
    for (let i = 0; i < slot.exitCount; i++) {
      const b = exits[i]!;
      const bb = b * K;
      const tb = feedRow[b]! * K;
      for (let k = 0; k < K; k++) {
        const x = ef[bb + k]! + exitTail[tb + k]!;
        const mk = m[k]!;
        top2[k] = Math.max(top2[k]!, Math.min(x, mk));
        m[k] = Math.max(mk, x);
      }
    }
    s.top2Ready = true;
  }

  /** Makespans of a state whose upper rows are `ef` (or the overlay's, for nodes stamped `epoch`): the exits' largest ef + tail. */
  private makespans(s: TimedState, out: Float64Array, epoch = -1): void {
    const K = this.samples;
    const slot = this.slot!;
    const { exits } = slot;
    const { exitTail, rootTail, feedRow } = slot.region;
    const { stamp, ovEf } = this.model;
    out.set(rootTail);
    for (let i = 0; i < slot.exitCount; i++) {
      const b = exits[i]!;
      const e = stamp[b] === epoch ? ovEf : s.ef;
      const bb = b * K;
      const tb = feedRow[b]! * K;
      for (let k = 0; k < K; k++) out[k] = Math.max(out[k]!, e[bb + k]! + exitTail[tb + k]!);
    }
  }
  /**
   * Re-times v's upper descendants over the reference `ref` into the model's overlay, with v
   * launched and hitting in every sample (`hitAll`) or in its baseline state; the makespans go to
   * `out`. A node is recomputed only if one of its upstreams changed (its finish or start times
   * differ from `ref`): the same numbers as a full forward pass.
   */
  private overlay(ref: TimedState, v: number, hitAll: boolean, out: Float64Array): void {
    const K = this.samples;
    const m = this.model;
    const { predOffset, predList, ovEf, ovSt, stamp, tEs, tSs, upsK, upsEf, upsSt } = m;
    const { isUpper } = this.slot!;
    const { inW } = this.slot!.region;
    const list = m.descendants(v);
    const epoch = m.nextEpoch();
    const refEf = ref.ef;
    const refSt = ref.st;
    const durWait = this.durWait;
    const kind = this.slot!.kind;
    for (let i = 0; i < list.length; i++) {
      const w = list[i]!;
      // The waiting region is below the upper part: nothing there is re-timed.
      if (inW[w] === 1) continue;
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
      // Upstream rows: the overlay's for those it changed, the reference's for the others.
      let np = 0;
      for (let j = p0; j < p1; j++) {
        const u = predList[j]!;
        if (isUpper[u] === 0) continue;
        const changedU = stamp[u] === epoch;
        upsK[np] = u * K;
        upsEf[np] = changedU ? ovEf : refEf;
        upsSt[np] = changedU ? ovSt : refSt;
        np++;
      }
      if (launchedW === 1) {
        const durRun = kind[w] === KIND_SPECULATING ? this.durRun : durWait;
        maxRows(np, upsK, upsEf, tEs, 0, K);
        maxRows(np, upsK, upsSt, tSs, 0, K);
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
        maxRows(np, upsK, upsEf, ovSt, b, K);
        for (let k = b; k < b + K; k++) ovEf[k] = ovSt[k]! + durWait[k]!;
      }
      for (let k = b; k < b + K; k++) {
        if (ovEf[k] !== refEf[k] || ovSt[k] !== refSt[k]) {
          stamp[w] = epoch;
          break;
        }
      }
    }
    // Makespans: the reference's, with the exits the overlay changed re-read.
    const { exits } = this.slot!;
    const { exitTail, feedRow } = this.slot!.region;
    let changed = -1;
    let nChanged = 0;
    for (let i = 0; i < this.slot!.exitCount; i++) {
      if (stamp[exits[i]!] === epoch) {
        changed = exits[i]!;
        nChanged++;
      }
    }
    if (nChanged === 0) for (let k = 0; k < K; k++) out[k] = ref.m[k]!;
    else if (nChanged === 1) {
      // The other terms' largest is the reference makespan, except in the samples where the
      // changed exit's own reference term is it (the same sum as refMakespans took): there it is
      // the reference's second largest term when kept (ensureTop2), else the others read again.
      const cb = changed * K;
      const tb = feedRow[changed]! * K;
      const { rootTail } = this.slot!.region;
      const exitCount = this.slot!.exitCount;
      const top2 = ref.top2Ready ? ref.top2 : undefined;
      for (let k = 0; k < K; k++) {
        const mk = ref.m[k]!;
        const tk = exitTail[tb + k]!;
        let other = mk;
        if (refEf[cb + k]! + tk === mk) {
          if (top2 !== undefined) other = top2[k]!;
          else {
            other = rootTail[k]!;
            for (let i = 0; i < exitCount; i++) {
              const b = exits[i]!;
              if (b !== changed) other = Math.max(other, refEf[b * K + k]! + exitTail[feedRow[b]! * K + k]!);
            }
          }
        }
        out[k] = Math.max(ovEf[cb + k]! + tk, other);
      }
    } else this.makespans(ref, out, epoch);
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
    this.pinIfWaiting(v, this.model.needList, 0);
    // A done node under done nodes finishes at 0 launched or not: it saves nothing.
    let dt = 0;
    if (this.slot!.isUpper[v] === 1) {
      this.ensureBase();
      this.overlay(this.base, v, true, this.model.mB);
      dt = this.saving(this.base.m, this.model.mB) / 1000;
    }
    this.memo ??= new Map();
    this.memo.set(nodeId, dt);
    return dt;
  }

  /**
   * Makes the model's joint reference that of this analysis with exactly the needed nodes
   * launched (the `need` stamps, `needEpoch`, with their P), except that `v` may be there too
   * in any state: extended in place when it already holds a subset with the same P, else
   * recomputed by a full pass over the upper part. Nodes outside the upper part (done under done nodes) are left
   * out: launched or not, their times are 0. Returns whether v is launched in it.
   */
  private prepareJoint(v: number, needed: Int32Array, count: number): boolean {
    const m = this.model;
    const J = this.joint;
    const K = this.samples;
    const slot = this.slot!;
    const { isUpper, upper, upperCount, kind } = slot;
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
      // The baseline's launched nodes (speculations in flight) with their hits; the rows are
      // computed below by a full pass over the upper part.
      J.launched.set(this.base.launched);
      const hit = this.base.hit;
      for (let i = 0; i < upperCount; i++) {
        const w = upper[i]!;
        if (kind[w] !== KIND_SPECULATING) continue;
        for (let k = w * K; k < w * K + K; k++) J.hit[k] = hit[k]!;
        m.jHitP[w] = Number.NaN;
      }
      m.jMember.fill(0);
      m.jCount = 0;
      m.jOwner = this;
    }
    const dirty = m.dirty;
    let first = this.n;
    for (let i = 0; i < count; i++) {
      const w = needed[i]!;
      if (m.jMember[w] === 1 || isUpper[w] === 0) continue;
      m.jMember[w] = 1;
      m.jP[w] = m.needP[w]!;
      m.jList[m.jCount++] = w;
      J.launched[w] = 1;
      // The row is redrawn only if it was drawn for another P (P is a candidate's class's, so it
      // stays from one state to the next while no outcome arrives).
      if (m.jHitP[w] !== m.needP[w]) {
        this.drawHits(J.hit, w, m.needP[w]!);
        m.jHitP[w] = m.needP[w]!;
      }
      dirty[w] = 1;
      first = Math.min(first, m.pos[w]!);
    }
    if (rebuild) {
      for (let i = 0; i < count; i++) dirty[needed[i]!] = 0;
      this.forward(J, 0, false);
      this.refMakespans(J);
    } else if (first < this.n) {
      // Dirty: the new members and everything of the upper part downstream of them.
      const { pos, predOffset, predList } = m;
      for (let i = 0; i < upperCount; i++) {
        const w = upper[i]!;
        if (pos[w]! < first || dirty[w] === 1) continue;
        for (let j = predOffset[w]!; j < predOffset[w + 1]!; j++) {
          if (dirty[predList[j]!] === 1) {
            dirty[w] = 1;
            break;
          }
        }
      }
      this.forward(J, first, true);
      for (let i = 0; i < upperCount; i++) dirty[upper[i]!] = 0;
      this.refMakespans(J);
    }
    return m.jMember[v] === 1;
  }

  /**
   * M4 joint decisions: ΔT of `nodeId` (seconds) when `others` start now too, each hitting with
   * its own P (stratified draws), besides the speculations already in flight. An entry of
   * `others` for `nodeId` itself is ignored, so a state's whole candidate list can be passed.
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
    // The indices of `others` resolved by an earlier query with the same list are reused (the
    // scheduler and the bench pass one list per state): an entry counts as the same if it is the
    // same object with the same id.
    let known = m.othersRef === others;
    if (m.othersIdx.length < others.length) {
      m.othersIdx = new Int32Array(others.length);
      m.othersObj = new Array<object | undefined>(others.length).fill(undefined);
      m.othersId = new Array<string | undefined>(others.length).fill(undefined);
      known = false;
    }
    m.othersRef = others;
    const { othersIdx, othersObj, othersId } = m;
    for (let i = 0; i < others.length; i++) {
      const c = others[i]!;
      if (!(c.p >= 0 && c.p <= 1)) throw new ValidationError([{ path: `others[${i}].p`, message: `must be in [0, 1], got ${c.p}` }]);
      let w: number;
      if (known && othersObj[i] === c && othersId[i] === c.id) w = othersIdx[i]!;
      else {
        othersObj[i] = undefined;
        w = this.index(c.id);
        othersIdx[i] = w;
        othersObj[i] = c;
        othersId[i] = c.id;
      }
      if (w === v) continue;
      if (m.need[w] !== ne) needed[count++] = w;
      m.need[w] = ne;
      m.needP[w] = c.p;
    }
    this.pinIfWaiting(v, needed, count);
    // A done node under done nodes finishes at 0 launched or not: it saves nothing.
    if (this.slot!.isUpper[v] === 0) return 0;
    if (count === 0) {
      this.ensureBase();
      this.overlay(this.base, v, true, m.mB);
      return this.saving(this.base.m, m.mB) / 1000;
    }
    const vIn = this.prepareJoint(v, needed, count);
    // The reference: the others launched, v in its baseline state; then v launched and hitting.
    let refM = this.joint.m;
    if (vIn) {
      // Two overlays read this reference: its second largest terms pay for themselves.
      this.ensureTop2(this.joint);
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

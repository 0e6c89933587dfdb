import { describe, expect, it } from 'vitest';
import { ValidationError } from '../errors.js';
import { histogramOf } from './distribution.js';
import { empiricalDuration, expectedRemainingMs, fixedDuration, histogramDuration, lognormalDuration, remainingQuantileMs } from './duration.js';
import { mulberry32 } from './prng.js';
import { decide } from './rule.js';
import { DEFAULT_TIMING_SEED, decideJointly, hitPhase, lhsPermutation, type TimingNode, timingAnalysis } from './timing.js';

const fixed = (id: string, ms: number, state: TimingNode['state'] = 'pending', elapsedMs = 0): TimingNode => ({
  id,
  state,
  duration: fixedDuration(ms),
  elapsedMs,
});

describe('M4 ΔT from re-timing the DAG (issue 9 item 1)', () => {
  it('a chain saves min(T_up remaining, T_down)', () => {
    // u (running, 4 s left) → d (3 s) → w (1 s).
    const a = timingAnalysis({
      nodes: [fixed('u', 5000, 'running', 1000), fixed('d', 3000), fixed('w', 1000)],
      edges: [
        { from: 'u', to: 'd' },
        { from: 'd', to: 'w' },
      ],
    });
    expect(a.expectedMakespanMs).toBe(8000);
    expect(a.deltaTSec('d')).toBe(3);
  });

  it('a node with 2 s of slack that saves nothing gets ΔT = 0 (overlap minus slack gave 3 s)', () => {
    // A (5 s left) → D (5 s) → J;  B (12 s left) → J. The B path stays critical whatever D does.
    const a = timingAnalysis({
      nodes: [fixed('A', 5000, 'running'), fixed('B', 12000, 'running'), fixed('D', 5000), fixed('J', 0)],
      edges: [
        { from: 'A', to: 'D' },
        { from: 'D', to: 'J' },
        { from: 'B', to: 'J' },
      ],
    });
    expect(a.expectedMakespanMs).toBe(12000);
    expect(a.deltaTSec('D')).toBe(0);
  });

  it('saves only until a sibling path becomes critical: 1 s, not 5 s', () => {
    // A (5 s left) → D (5 s) → J;  B (9 s left) → J. Waiting: 10 s; D now: max(5, 9) = 9 s.
    const a = timingAnalysis({
      nodes: [fixed('A', 5000, 'running'), fixed('B', 9000, 'running'), fixed('D', 5000), fixed('J', 0)],
      edges: [
        { from: 'A', to: 'D' },
        { from: 'D', to: 'J' },
        { from: 'B', to: 'J' },
      ],
    });
    expect(a.deltaTSec('D')).toBe(1);
  });

  it('is an expectation over durations: less than the saving at mean durations, and close to Monte Carlo', () => {
    // u (mean 4 s, cv 0.6) → d (mean 4 s, cv 0.6): at means ΔT = min(4, 4) = 4 s; E[min(U, D)] is less.
    const du = lognormalDuration(4000, 0.6);
    const dd = lognormalDuration(4000, 0.6);
    const a = timingAnalysis(
      {
        nodes: [
          { id: 'u', state: 'running', duration: du, elapsedMs: 0 },
          { id: 'd', state: 'pending', duration: dd },
        ],
        edges: [{ from: 'u', to: 'd' }],
      },
      { samples: 64 },
    );
    const rnd = mulberry32(7);
    let mc = 0;
    const N = 20000;
    for (let i = 0; i < N; i++) mc += Math.min(du.quantileMs(rnd()), dd.quantileMs(rnd()));
    mc /= N;
    const dt = a.deltaTSec('d') * 1000;
    expect(dt).toBeLessThan(4000 * 0.9);
    expect(Math.abs(dt - mc) / mc).toBeLessThan(0.05);
  });

  it('the max of uncertain paths: a sibling path with the same mean eats most of the saving', () => {
    // A (2 s left) → D (4 s) → J;  B (mean 4 s, cv 0.5) → J. At means: wait 6, now max(4, 4) → 2 s;
    // in expectation E[max(6, B)] − E[max(4, B)] < 2 s.
    const a = timingAnalysis(
      {
        nodes: [fixed('A', 2000, 'running'), { id: 'B', state: 'running', duration: lognormalDuration(4000, 0.5) }, fixed('D', 4000), fixed('J', 0)],
        edges: [
          { from: 'A', to: 'D' },
          { from: 'D', to: 'J' },
          { from: 'B', to: 'J' },
        ],
      },
      { samples: 64 },
    );
    const dt = a.deltaTSec('D');
    expect(dt).toBeGreaterThan(0.5);
    expect(dt).toBeLessThan(1.9);
  });

  it('is deterministic for a seed, and ΔT is never negative', () => {
    const build = () =>
      timingAnalysis({
        nodes: [
          { id: 'u', state: 'running', duration: lognormalDuration(3000, 0.4), elapsedMs: 500 },
          { id: 'v', state: 'running', duration: lognormalDuration(6000, 0.8), elapsedMs: 100 },
          { id: 'd', state: 'pending', duration: lognormalDuration(2000, 0.3) },
        ],
        edges: [
          { from: 'u', to: 'd' },
          { from: 'v', to: 'd' },
        ],
      });
    expect(build().deltaTSec('d')).toBe(build().deltaTSec('d'));
    expect(build().deltaTSec('d')).toBeGreaterThanOrEqual(0);
  });

  it('rejects cycles, unknown ids and bad sample counts with the field named', () => {
    const path = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        expect(e).toBeInstanceOf(ValidationError);
        return (e as ValidationError).issues[0]?.path;
      }
      return undefined;
    };
    const two = [fixed('a', 1), fixed('b', 1)];
    expect(
      path(() =>
        timingAnalysis({
          nodes: two,
          edges: [
            { from: 'a', to: 'b' },
            { from: 'b', to: 'a' },
          ],
        }),
      ),
    ).toBe('edges');
    expect(path(() => timingAnalysis({ nodes: two, edges: [{ from: 'a', to: 'zz' }] }))).toBe('edges[0].to');
    expect(path(() => timingAnalysis({ nodes: two, edges: [] }, { samples: 0 }))).toBe('samples');
    expect(path(() => timingAnalysis({ nodes: two, edges: [] }).deltaTSec('zz'))).toBe('node');
  });
});

describe('M4 conditional remaining time (never 0)', () => {
  it('an upstream that outran its mean is expected to run E[T − t | T > t] more', () => {
    const dist = lognormalDuration(4000, 0.8);
    const r = expectedRemainingMs(dist, 6000);
    expect(r).toBeGreaterThan(1000);
    // Monte Carlo of T − t over draws with T > t.
    const rnd = mulberry32(3);
    let sum = 0;
    let n = 0;
    while (n < 4000) {
      const t = dist.quantileMs(rnd());
      if (t > 6000) {
        sum += t - 6000;
        n++;
      }
    }
    expect(Math.abs(r - sum / n) / (sum / n)).toBeLessThan(0.1);
  });

  it('a point mass or an empirical distribution outrun still leaves a positive remainder', () => {
    expect(remainingQuantileMs(fixedDuration(1000), 1500, 0.5)).toBeGreaterThan(0);
    expect(remainingQuantileMs(fixedDuration(1000), 400, 0.5)).toBe(600);
    const emp = empiricalDuration([100, 200, 300, 400]);
    expect(remainingQuantileMs(emp, 250, 0.1)).toBe(50);
    expect(remainingQuantileMs(emp, 500, 0.5)).toBeGreaterThan(0);
    expect(expectedRemainingMs(emp, 0)).toBe(250);
  });

  it('a learned operation-class histogram serves as a duration distribution', () => {
    const values = Array.from({ length: 400 }, (_, i) => 1000 + 10 * i);
    const h = histogramDuration(histogramOf(values));
    expect(h.meanMs).toBeCloseTo(2995, 6);
    expect(Math.abs(h.quantileMs(0.5) - 3000) / 3000).toBeLessThan(0.1);
    expect(Math.abs(h.cdf(h.quantileMs(0.3)) - 0.3)).toBeLessThan(0.05);
    expect(expectedRemainingMs(h, 4500)).toBeGreaterThan(0);
  });
});

describe('M4 joint decisions of a fan-out (issue 9 item 1)', () => {
  // u (running, 5 s) → d1 (4 s), d2 (4 s) → J (join). One at a time, each sees the other waiting.
  const fan = () =>
    timingAnalysis({
      nodes: [fixed('u', 5000, 'running'), fixed('d1', 4000), fixed('d2', 4000), fixed('J', 0)],
      edges: [
        { from: 'u', to: 'd1' },
        { from: 'u', to: 'd2' },
        { from: 'd1', to: 'J' },
        { from: 'd2', to: 'J' },
      ],
    });

  it('alone each sibling gets ΔT = 0; together each is worth the saving weighted by the other’s P', () => {
    const a = fan();
    expect(a.deltaTSec('d1')).toBe(0);
    const all = new Set(['d1', 'd2']);
    const sure = a.jointDeltaTSec(
      [
        { id: 'd1', p: 1 },
        { id: 'd2', p: 1 },
      ],
      all,
    );
    expect(sure.get('d1')).toBe(4);
    const likely = a.jointDeltaTSec(
      [
        { id: 'd1', p: 0.75 },
        { id: 'd2', p: 0.75 },
      ],
      all,
    );
    // 4 s × P(other hits) = 3 s, exactly on the stratified draws (16 samples).
    expect(likely.get('d1')).toBeCloseTo(3, 6);
    expect(likely.get('d2')).toBeCloseTo(3, 6);
  });

  it('a sibling whose speculation is already in flight counts as launched (live decisions one at a time)', () => {
    const a = timingAnalysis({
      nodes: [
        fixed('u', 5000, 'running'),
        { ...fixed('d1', 4000), speculation: { p: 1, elapsedMs: 1000 } },
        fixed('d2', 4000),
        fixed('J', 0),
      ],
      edges: [
        { from: 'u', to: 'd1' },
        { from: 'u', to: 'd2' },
        { from: 'd1', to: 'J' },
        { from: 'd2', to: 'J' },
      ],
    });
    // Baseline: d1 commits at 5 s, d2 waits: 9 s. d2 launched now: both done by 5 s.
    expect(a.expectedMakespanMs).toBe(9000);
    expect(a.deltaTSec('d2')).toBe(4);
  });

  it('at plan time (nothing started) a launch starts when its upstream starts', () => {
    // a (3 s) → b (2 s) → c (1 s), all pending: b launched with a saves min(3, 2) = 2 s.
    const a = timingAnalysis({
      nodes: [fixed('a', 3000), fixed('b', 2000), fixed('c', 1000)],
      edges: [
        { from: 'a', to: 'b' },
        { from: 'b', to: 'c' },
      ],
    });
    expect(a.deltaTSec('b')).toBe(2);
    expect(a.deltaTSec('c')).toBe(1);
  });

  it('the fixed point from "all launched" drops a sibling the rule refuses, and the other then saves nothing', () => {
    const a = fan();
    const dts = decideJointly(a, [
      { id: 'd1', p: 0.9, launches: (dt) => dt > 0 },
      { id: 'd2', p: 0.9, launches: () => false },
    ]);
    expect(dts.get('d1')).toBe(0);
    const both = decideJointly(a, [
      { id: 'd1', p: 0.9, launches: (dt) => dt > 0 },
      { id: 'd2', p: 0.9, launches: (dt) => dt > 0 },
    ]);
    expect(both.get('d1')).toBeGreaterThan(3);
    expect(both.get('d2')).toBeGreaterThan(3);
  });
});

/**
 * The reference for the fast path (issue 9 item 1): a direct re-timing of the whole DAG per query
 * and per sample, with the same draws (Latin-hypercube permutations, stratified hits) computed
 * here from the distributions, without the analysis's tables, overlays or reuse.
 */
function referenceDeltaTSec(
  dag: { readonly nodes: readonly TimingNode[]; readonly edges: readonly { from: string; to: string }[] },
  nodeId: string,
  others: readonly { id: string; p: number }[],
  K: number,
  seed: number,
): { deltaTSec: number; baselineMs: number } {
  const ids = dag.nodes.map((n) => n.id);
  const preds = new Map(ids.map((id) => [id, [] as string[]]));
  for (const e of dag.edges) preds.get(e.to)!.push(e.from);
  // Topological order by repeated scans (small DAGs).
  const order: string[] = [];
  const placed = new Set<string>();
  while (order.length < ids.length) {
    for (const id of ids) {
      if (placed.has(id) || !preds.get(id)!.every((u) => placed.has(u))) continue;
      order.push(id);
      placed.add(id);
    }
  }
  const wait = new Map<string, number[]>();
  const run = new Map<string, number[]>();
  const baseHits = new Map<string, boolean[]>();
  const hitsFor = (id: string, p: number) => {
    const ph = hitPhase(id, seed);
    return Array.from({ length: K }, (_, k) => ((k + 0.5) / K + ph) % 1 < p);
  };
  for (const n of dag.nodes) {
    const perm = lhsPermutation(n.id, seed, K);
    const q = (k: number) => (perm[k]! + 0.5) / K;
    if (n.state === 'done') {
      wait.set(n.id, new Array(K).fill(0));
      run.set(n.id, new Array(K).fill(0));
      continue;
    }
    const elapsed = n.state === 'running' ? (n.elapsedMs ?? 0) : 0;
    const w = Array.from({ length: K }, (_, k) => remainingQuantileMs(n.duration, elapsed, q(k)));
    wait.set(n.id, w);
    const s = n.state === 'pending' ? n.speculation : undefined;
    run.set(n.id, s === undefined ? w : Array.from({ length: K }, (_, k) => (s.done === true ? 0 : remainingQuantileMs(n.duration, s.elapsedMs, q(k)))));
    if (s !== undefined) baseHits.set(n.id, hitsFor(n.id, s.p));
  }
  const makespans = (launched: ReadonlyMap<string, boolean[]>): number[] =>
    Array.from({ length: K }, (_, k) => {
      const ef = new Map<string, number>();
      const st = new Map<string, number>();
      let m = 0;
      for (const id of order) {
        const es = Math.max(0, ...preds.get(id)!.map((u) => ef.get(u)!));
        const ss = Math.max(0, ...preds.get(id)!.map((u) => st.get(u)!));
        const h = launched.get(id);
        if (h !== undefined && h[k] === true) {
          st.set(id, ss);
          ef.set(id, Math.max(ss + run.get(id)![k]!, es));
        } else {
          st.set(id, es);
          ef.set(id, es + wait.get(id)![k]!);
        }
        m = Math.max(m, ef.get(id)!);
      }
      return m;
    });
  const ref = new Map(baseHits);
  for (const o of others) if (o.id !== nodeId) ref.set(o.id, hitsFor(o.id, o.p));
  const launched = new Map(ref);
  launched.set(nodeId, new Array(K).fill(true));
  const a = makespans(ref);
  const b = makespans(launched);
  let sum = 0;
  for (let k = 0; k < K; k++) sum += a[k]! - b[k]!;
  const base = makespans(baseHits);
  return { deltaTSec: Math.max(0, sum / K) / 1000, baselineMs: base.reduce((x, y) => x + y, 0) / K };
}

/** A seeded random DAG state: done, running (with elapsed), pending, in-flight speculations; three distribution families. */
function randomDag(seed: number): { nodes: TimingNode[]; edges: { from: string; to: string }[] } {
  const r = mulberry32(seed);
  const n = 2 + Math.floor(r() * 30);
  const ids = Array.from({ length: n }, (_, i) => `n${i}`);
  const edges: { from: string; to: string }[] = [];
  for (let j = 1; j < n; j++) {
    const parents = new Set(Array.from({ length: Math.floor(r() * 4) }, () => Math.floor(r() * j)));
    for (const i of parents) edges.push({ from: ids[i]!, to: ids[j]! });
  }
  const nodes = ids.map((id): TimingNode => {
    const mean = 100 + r() * 5000;
    const u = r();
    const duration = u < 0.15 ? empiricalDuration([mean / 2, mean, 2 * mean]) : u < 0.3 ? histogramDuration(histogramOf([mean / 3, mean, mean * 1.5, mean * 3])) : lognormalDuration(mean, u < 0.4 ? 0 : r());
    const s = r();
    if (s < 0.25) return { id, state: 'done', duration };
    if (s < 0.5) return { id, state: 'running', duration, elapsedMs: r() < 0.3 ? 0 : r() * 2 * mean };
    if (s < 0.6) return { id, state: 'pending', duration, speculation: { p: r(), elapsedMs: r() * mean, done: r() < 0.3 } };
    return { id, state: 'pending', duration };
  });
  return { nodes, edges };
}

describe('M4 fast ΔT equals a direct re-timing per query (issue 9 item 1: compute once per state, reuse)', () => {
  it('on 120 seeded random DAGs: baseline, single, sibling-by-sibling and joint queries, K = 16 and K = 7', () => {
    let compared = 0;
    let positive = 0;
    for (let t = 0; t < 120; t++) {
      const dag = randomDag(100 + t);
      const K = t % 3 === 0 ? 7 : 16;
      const seed = t % 2 === 0 ? DEFAULT_TIMING_SEED : 12345;
      const a = timingAnalysis(dag, { samples: K, seed });
      const r = mulberry32(t);
      const ids = dag.nodes.map((n) => n.id);
      expect(Math.abs(a.expectedMakespanMs - referenceDeltaTSec(dag, ids[0]!, [], K, seed).baselineMs)).toBeLessThan(1e-6);
      const check = (got: number, nodeId: string, others: readonly { id: string; p: number }[]) => {
        const want = referenceDeltaTSec(dag, nodeId, others, K, seed).deltaTSec;
        expect(Math.abs(got - want), `DAG ${t}, ${nodeId} with ${JSON.stringify(others)}`).toBeLessThan(1e-9);
        compared++;
        if (want > 0) positive++;
      };
      for (let q = 0; q < 4; q++) {
        const v = ids[Math.floor(r() * ids.length)]!;
        check(a.deltaTSec(v), v, []);
        // Siblings one by one, as the scheduler asks (the joint reference is extended in place).
        const cands = ids.filter(() => r() < 0.3).map((id) => ({ id, p: Math.round(r() * 8) / 8 }));
        for (const c of cands) {
          const others = cands.filter((o) => o.id !== c.id);
          check(a.deltaTSecWith(c.id, others), c.id, others);
        }
        // An arbitrary set (rebuilt), then the joint form over a launched subset.
        const others = ids.filter(() => r() < 0.3).map((id) => ({ id, p: r() }));
        check(a.deltaTSecWith(v, others), v, others);
        const launchedIds = new Set(cands.filter(() => r() < 0.6).map((c) => c.id));
        const joint = a.jointDeltaTSec(cands, launchedIds);
        for (const c of cands) check(joint.get(c.id)!, c.id, cands.filter((o) => o.id !== c.id && launchedIds.has(o.id)));
      }
    }
    expect(compared).toBeGreaterThan(2000);
    // The comparison is not vacuous: many of the savings are positive.
    expect(positive).toBeGreaterThan(compared / 5);
  });

  it('analyses of one workflow interleaved beyond the reused buffers still answer for their own state', () => {
    // A layered 12-node DAG: 0 → 1..3 → 4..7 → 8..10 → 11, each node fed by up to two of the layer above.
    const layers = [[0], [1, 2, 3], [4, 5, 6, 7], [8, 9, 10], [11]];
    const dag = {
      nodes: Array.from({ length: 12 }, (_, i) => ({ id: `m${i}`, duration: lognormalDuration(500 + 300 * i, 0.5) })),
      edges: layers.slice(1).flatMap((layer, l) => layer.flatMap((d, j) => [...new Set([layers[l]![j % layers[l]!.length]!, layers[l]![(j + 1) % layers[l]!.length]!])].map((u) => ({ from: `m${u}`, to: `m${d}` })))),
    };
    // 20 states of the same workflow (one edges array, as a workflow's runs share it): each node's
    // state redrawn per state, so that the states' timings differ.
    const states = Array.from({ length: 20 }, (_, i) => {
      const r = mulberry32(500 + i);
      return {
        edges: dag.edges,
        nodes: dag.nodes.map((n): TimingNode => {
          const s = r();
          if (s < 0.3) return { id: n.id, state: 'done', duration: n.duration };
          if (s < 0.6) return { id: n.id, state: 'running', duration: n.duration, elapsedMs: r() * 3000 };
          return { id: n.id, state: 'pending', duration: n.duration };
        }),
      };
    });
    const analyses = states.map((s) => timingAnalysis(s));
    const ids = dag.nodes.map((n) => n.id);
    const query = (id: string) => ({ id, others: ids.filter((o) => o !== id).map((o) => ({ id: o, p: 0.5 })) });
    const wants = states.map((s) => ids.map((id) => referenceDeltaTSec(s, id, query(id).others, 16, DEFAULT_TIMING_SEED).deltaTSec));
    expect(new Set(wants.map((w) => w.join())).size).toBeGreaterThan(10);
    for (let round = 0; round < 2; round++) {
      analyses.forEach((a, i) => {
        ids.forEach((id, j) => {
          expect(Math.abs(a.deltaTSecWith(id, query(id).others) - wants[i]![j]!)).toBeLessThan(1e-9);
        });
      });
    }
  });
});

/**
 * A layered DAG (fan-out, joins, skip edges) and its run states with the frontier at each layer,
 * as bench/decision runs them: the layer above running, earlier layers done, later ones pending.
 */
function layeredWorkflow(seed: number) {
  const r = mulberry32(seed);
  const sizes = [1, 2 + Math.floor(r() * 3), 3 + Math.floor(r() * 4), 3 + Math.floor(r() * 4), 2 + Math.floor(r() * 3), 1];
  const layers: string[][] = [];
  let id = 0;
  for (const size of sizes) layers.push(Array.from({ length: size }, () => `L${id++}`));
  const edges: { from: string; to: string }[] = [];
  const seen = new Set<string>();
  const add = (from: string, to: string) => {
    if (seen.has(`${from}>${to}`)) return;
    seen.add(`${from}>${to}`);
    edges.push({ from, to });
  };
  for (let l = 1; l < layers.length; l++) {
    layers[l - 1]!.forEach((u, i) => {
      add(u, layers[l]![i % layers[l]!.length]!);
    });
    for (const d of layers[l]!) {
      for (let j = 0; j < 1 + Math.floor(r() * 3); j++) add(layers[l - 1]![Math.floor(r() * layers[l - 1]!.length)]!, d);
      if (l >= 2 && r() < 0.3) add(layers[l - 2]![Math.floor(r() * layers[l - 2]!.length)]!, d);
    }
  }
  const means = new Map(layers.flat().map((n) => [n, 200 + r() * 4000]));
  const dists = new Map([...means].map(([n, ms]) => [n, lognormalDuration(ms, 0.1 + r() * 0.6)]));
  return { layers, edges, means, dists };
}

describe('M4 fast ΔT reuse across states of one workflow (issue 9 item 1)', () => {
  // u (running) → d → w1 → w2, u → x → w2: d and x are candidates, w1 and w2 wait below them.
  const edges = [
    { from: 'u', to: 'd' },
    { from: 'd', to: 'w1' },
    { from: 'w1', to: 'w2' },
    { from: 'u', to: 'x' },
    { from: 'x', to: 'w2' },
  ];
  const state = (w1: ReturnType<typeof lognormalDuration>, elapsedMs: number): TimingNode[] => [
    { id: 'u', state: 'running', duration: lognormalDuration(3000, 0.4), elapsedMs },
    { id: 'd', state: 'pending', duration: lognormalDuration(2000, 0.4) },
    { id: 'x', state: 'pending', duration: lognormalDuration(2500, 0.4) },
    { id: 'w1', state: 'pending', duration: w1 },
    { id: 'w2', state: 'pending', duration: lognormalDuration(500, 0.4) },
  ];
  const cands = [
    { id: 'd', p: 0.8 },
    { id: 'x', p: 0.6 },
  ];

  it('a state with the same waiting nodes, one of them with a new distribution, is re-timed with it', () => {
    const short = lognormalDuration(100, 0.4);
    const long = lognormalDuration(9000, 0.4);
    for (const [i, w1] of [short, long, short, long].entries()) {
      const nodes = state(w1, 500 + 100 * i);
      const got = timingAnalysis({ nodes, edges }).deltaTSecWith('x', cands);
      expect(Math.abs(got - referenceDeltaTSec({ nodes, edges }, 'x', cands, 16, DEFAULT_TIMING_SEED).deltaTSec)).toBeLessThan(1e-9);
    }
    // Not vacuous: behind a long w1, x is off the critical path and saves nothing.
    const a = timingAnalysis({ nodes: state(short, 500), edges }).deltaTSecWith('x', cands);
    const b = timingAnalysis({ nodes: state(long, 500), edges }).deltaTSecWith('x', cands);
    expect(a).toBeGreaterThan(0);
    expect(b).toBe(0);
  });

  it('analyses of the same waiting nodes with different distributions, queried in turns, each answer for their own', () => {
    // Two runs at the same point with different estimates for w1: the region kept for one must
    // not be refilled for the other while the first one's buffers still read it.
    const short = state(lognormalDuration(100, 0.4), 600);
    const long = state(lognormalDuration(9000, 0.4), 600);
    const a = timingAnalysis({ nodes: short, edges });
    const b = timingAnalysis({ nodes: long, edges });
    const wantA = referenceDeltaTSec({ nodes: short, edges }, 'x', cands, 16, DEFAULT_TIMING_SEED).deltaTSec;
    const wantB = referenceDeltaTSec({ nodes: long, edges }, 'x', cands, 16, DEFAULT_TIMING_SEED).deltaTSec;
    expect(wantA).toBeGreaterThan(wantB);
    for (let turn = 0; turn < 4; turn++) {
      expect(Math.abs(a.deltaTSecWith('x', cands) - wantA), `turn ${turn}, a`).toBeLessThan(1e-9);
      expect(Math.abs(b.deltaTSecWith('x', cands) - wantB), `turn ${turn}, b`).toBeLessThan(1e-9);
    }
  });

  it('a candidate list passed again after an entry was replaced is read anew', () => {
    const nodes = state(lognormalDuration(100, 0.4), 700);
    const a = timingAnalysis({ nodes, edges });
    const list: { id: string; p: number }[] = [...cands];
    const first = a.deltaTSecWith('d', list);
    expect(Math.abs(first - referenceDeltaTSec({ nodes, edges }, 'd', list, 16, DEFAULT_TIMING_SEED).deltaTSec)).toBeLessThan(1e-9);
    // The same array, its entry for x replaced by one for w1 (now launched too): a new answer.
    list[1] = { id: 'w1', p: 0.9 };
    const second = a.deltaTSecWith('d', list);
    expect(Math.abs(second - referenceDeltaTSec({ nodes, edges }, 'd', list, 16, DEFAULT_TIMING_SEED).deltaTSec)).toBeLessThan(1e-9);
    expect(second).not.toBe(first);
  });
});

describe('M4 fast ΔT below the frontier (issue 9 item 1: tails of the waiting region kept between states)', () => {
  it('every state of layered workflows, sibling by sibling, equals a direct re-timing; the rule decides the same', () => {
    let compared = 0;
    let positive = 0;
    let launches = 0;
    for (let t = 0; t < 12; t++) {
      const wf = layeredWorkflow(900 + t);
      const r = mulberry32(t);
      // Rounds over every state of the workflow with one edges array (the per-workflow model and
      // its tail rows are reused), a node's distribution object replaced now and then (its tail
      // row and those above it must be recomputed).
      for (let round = 0; round < 3; round++) {
        for (const id of wf.dists.keys()) if (r() < 0.15) wf.dists.set(id, lognormalDuration(wf.means.get(id)! * (0.5 + r()), 0.1 + r() * 0.6));
        for (let L = 1; L < wf.layers.length; L++) {
          const layerOf = (id: string) => wf.layers.findIndex((l) => l.includes(id));
          const nodes = wf.layers.flat().map((id): TimingNode => {
            const l = layerOf(id);
            const duration = wf.dists.get(id)!;
            if (l < L - 1) return { id, state: 'done', duration };
            if (l === L - 1) return { id, state: 'running', duration, elapsedMs: r() * 1.5 * wf.means.get(id)! };
            return { id, state: 'pending', duration };
          });
          const dag = { nodes, edges: wf.edges };
          const a = timingAnalysis(dag);
          const cands = wf.layers[L]!.map((id) => ({ id, p: 0.3 + 0.7 * r() }));
          for (const c of cands) {
            const got = a.deltaTSecWith(c.id, cands);
            const want = referenceDeltaTSec(dag, c.id, cands, 16, DEFAULT_TIMING_SEED).deltaTSec;
            expect(Math.abs(got - want), `workflow ${t} round ${round} state ${L} ${c.id}`).toBeLessThan(1e-9);
            // The rule on either ΔT: the same action and reason (M4: zero_value, below_threshold, ev).
            const rule = (deltaTSec: number) =>
              decide({
                edges: [{ posterior: { a: 1 + 20 * c.p, b: 1 + 20 * (1 - c.p) } }],
                cSpecUsd: 0.004,
                cFailUsd: 0.002,
                deltaTSec,
                dial: { alpha: 0.5, lambdaUsdPerSec: 0.01 },
                stage: 'online',
                flags: { admissible: true, killed: false, hasPrediction: true, budgetOk: true, speculationEnabled: true },
              });
            const fast = rule(got);
            const slow = rule(want);
            expect([fast.action, fast.reason]).toEqual([slow.action, slow.reason]);
            compared++;
            if (want > 0) positive++;
            if (fast.action === 'SPECULATE') launches++;
          }
          // A query on a node below the frontier (it leaves the waiting region) and one alone.
          const deep = wf.layers[wf.layers.length - 1]![0]!;
          expect(Math.abs(a.deltaTSecWith(deep, cands) - referenceDeltaTSec(dag, deep, cands, 16, DEFAULT_TIMING_SEED).deltaTSec)).toBeLessThan(1e-9);
          expect(Math.abs(a.deltaTSec(cands[0]!.id) - referenceDeltaTSec(dag, cands[0]!.id, [], 16, DEFAULT_TIMING_SEED).deltaTSec)).toBeLessThan(1e-9);
          expect(Math.abs(a.expectedMakespanMs - referenceDeltaTSec(dag, deep, [], 16, DEFAULT_TIMING_SEED).baselineMs)).toBeLessThan(1e-6);
        }
      }
    }
    expect(compared).toBeGreaterThan(400);
    // Not vacuous: savings and launches both occur, and so do zero savings.
    expect(positive).toBeGreaterThan(compared / 4);
    expect(positive).toBeLessThan(compared);
    expect(launches).toBeGreaterThan(0);
  });
});

/** M11: the eight workload archetypes are seeded, hit at their designed rates, and export valid live workflows. */
import { loadSnapshotPriceTable, priorFor } from '@gambit/shared';
import { describe, expect, it } from 'vitest';
import { toJsonLines } from '../trace.js';
import { ARCHETYPES, hitProbability, parallelQaBranches, sampleTokens, tokenQuantiles } from './index.js';
import { mulberry32 } from '../stats.js';

const prices = loadSnapshotPriceTable();

describe('workload archetypes (M11)', () => {
  it('there are eight, with distinct names', () => {
    expect(ARCHETYPES).toHaveLength(8);
    expect(new Set(ARCHETYPES.map((a) => a.name)).size).toBe(8);
  });

  it('are deterministic for a seed and differ across seeds', () => {
    for (const a of ARCHETYPES) {
      const one = toJsonLines(a.generate({ seed: 11, runs: 25 }));
      expect(toJsonLines(a.generate({ seed: 11, runs: 25 })), a.name).toBe(one);
      expect(toJsonLines(a.generate({ seed: 12, runs: 25 })), a.name).not.toBe(one);
      // A longer run list starts with the same runs (each run has its own seeded stream).
      if (a.name !== 'agent-loop') expect(toJsonLines(a.generate({ seed: 11, runs: 30 })).startsWith(one), a.name).toBe(true);
    }
  });

  it('hit at their designed per-edge probabilities (within 4 standard errors over 1,500 runs)', () => {
    for (const a of ARCHETYPES) {
      const runs = a.generate({ seed: 1, runs: 1500 });
      const counts = new Map<string, { n: number; h: number }>();
      for (const r of runs)
        for (const o of r.opportunities) {
          const key = o.edgeClass ?? `${o.from}->${o.to}`;
          const c = counts.get(key) ?? { n: 0, h: 0 };
          c.n++;
          if (o.matched) c.h++;
          counts.set(key, c);
        }
      for (const [edge, p] of Object.entries(a.designedHitRates)) {
        const c = counts.get(edge);
        expect(c, `${a.name} ${edge}`).toBeDefined();
        const se = Math.sqrt((p * (1 - p)) / c!.n);
        expect(Math.abs(c!.h / c!.n - p), `${a.name} ${edge}: ${c!.h}/${c!.n} vs ${p}`).toBeLessThan(4 * se + 0.01);
      }
    }
  });

  it('export live workflows that parseWorkflow accepts, whose simulate outcomes reproduce the hit probabilities', () => {
    for (const a of ARCHETYPES) {
      const wf = a.workflow(prices);
      expect(wf.name).toBe(a.name);
      const speculated = wf.edges.filter((e) => e.speculate);
      expect(speculated.length, a.name).toBeGreaterThan(0);
      for (const e of speculated) {
        const up = wf.nodes.find((n) => n.id === e.from)!;
        expect(up.kind, `${a.name} ${e.from}`).toBe('llm');
        const outcomes = up.kind === 'llm' ? up.simulate?.outcomes : undefined;
        expect(outcomes, `${a.name} ${e.from}`).toBeDefined();
        const guess = e.predictor?.kind === 'fixed' ? e.predictor.value : e.predictor?.fallback;
        const heaviest = outcomes!.reduce((b, o) => (o.weight > b.weight ? o : b));
        expect(guess).toBe(heaviest.value);
        const designed = a.designedHitRates[`${e.from}->${e.to}`] ?? a.designedHitRates['agent->tool'];
        expect(hitProbability(outcomes!), `${a.name} ${e.from}->${e.to}`).toBeCloseTo(designed!, 9);
        if (e.type === 'router_k_way') expect(priorFor('router_k_way', e.k)).toBeDefined();
      }
    }
  });

  it('planner-join draws its branch counts from ParallelQA (2..5) and joins on every search', () => {
    const b = parallelQaBranches();
    expect(b).toHaveLength(113);
    const runs = ARCHETYPES.find((a) => a.name === 'planner-join')!.generate({ seed: 2, runs: 400 });
    const sizes = new Set(runs.map((r) => r.operations.filter((o) => o.kind === 'tool').length));
    expect([...sizes].sort()).toEqual([2, 3, 4, 5]);
    for (const r of runs) {
      const join = r.operations.find((o) => o.id === 'join')!;
      expect(join.dependencies).toHaveLength(r.operations.length - 2);
    }
  });

  it('samples token sizes from the Azure and Mooncake percentiles', () => {
    const q = tokenQuantiles();
    expect(q.azure_conv.input[50]).toBe(1020);
    expect(q.azure_code.output[50]).toBe(13);
    const rng = mulberry32(9);
    const xs = Array.from({ length: 4000 }, () => sampleTokens(rng, { from: 'azure_conv', side: 'output' })).sort((x, y) => x - y);
    const median = xs[2000]!;
    expect(median).toBeGreaterThan(100);
    expect(median).toBeLessThan(160);
  });
});

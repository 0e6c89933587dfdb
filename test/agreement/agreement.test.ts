/**
 * M9 stage 1 against the live system: offline replay of the live runs predicts what the real
 * scheduler, worker and estimator processes measure (GitHub issue 6 item 5, issue 9; small
 * version of bench/agreement/run.mjs). Two archetypes, 8 paired runs each (speculation on and
 * off with the same seeds, so the same outcomes and tokens), time scale 0.2, 2 runs in flight.
 * Wall-clock jitter inside an attempt (a loaded 2-core machine's event-loop lag) is multiplied by
 * 1/timeScale when re-timed at scale 1: at 0.05 a 25 ms lag made a 0.5 s call 1 s long, and
 * replay's ΔT (from the recorded durations) left live's by more than a factor 2 in 1 of 2 runs at
 * load average 24; more runs in flight only add more lag.
 *
 * Tolerances (docs/benchmarks.md, "agreement"; bench/agreement/compare.mjs), set before
 * measuring: per class (the downstream node of a guessed edge) launches, hits and misses within
 * max(1, 10% of runs) of replay, waste within a quarter of an attempt's price per miss, mean P of
 * the rule's decisions within 0.10 and mean ΔT within a factor 2; dollars per run with
 * speculation off within 2% of replay, on within 15%; the latency ratio on/off within 0.10.
 */
import { uniquePrefix } from '@gambit/testkit';
import { describe, expect, inject, it } from 'vitest';
import { ARCHETYPES } from '../../packages/replay/dist/index.js';
// @ts-expect-error: plain ES module of the benchmark (no type declarations).
import { TOLERANCE } from '../../bench/agreement/compare.mjs';
// @ts-expect-error: plain ES module of the benchmark (no type declarations).
import { runAgreement } from '../../bench/agreement/run.mjs';

interface ClassRow {
  live: { launches: number; hits: number; misses: number; wastedUsd: number; p: number | null; deltaTSec: number | null };
  replay: { launches: number; hits: number; misses: number; wastedUsd: number; p: number | null; deltaTSec: number | null };
  checks: Record<string, boolean>;
}
interface Row {
  archetype: string;
  measured: { latencyRatio: number; speculations: number };
  predicted: { latencyRatio: number; speculations: number };
  comparison: { ratioDiff: number; usdOnRel: number; usdOffRel: number; classes: Record<string, ClassRow> };
}

describe('M9 replay agrees with the live services (issue 6 item 5, issue 9)', () => {
  it('auto-reply and code-agent: per class launches, hits, misses, waste, P and ΔT; $/run and the latency ratio', async () => {
    const archetypes = ['auto-reply', 'code-agent'].map((n) => ARCHETYPES.find((a: { name: string }) => a.name === n));
    const rows: Row[] = await runAgreement({
      redisUrl: inject('redisUrl'),
      prefix: uniquePrefix('agr'),
      archetypes,
      runs: 8,
      timeScale: 0.2,
      concurrency: 2,
      alpha: 0.5,
      lambdaUsdPerSec: 0.05,
      archetypeRuns: 0,
      workers: 1,
    });
    expect(rows.map((r) => r.archetype)).toEqual(['auto-reply', 'code-agent']);
    for (const r of rows) {
      const where = `${r.archetype}: ${JSON.stringify(r)}`;
      // The classes with a guessable edge: auto-reply `draft`, code-agent `fix`; both launch.
      expect(Object.keys(r.comparison.classes), where).toEqual([r.archetype === 'auto-reply' ? 'draft' : 'fix']);
      expect(r.measured.speculations, where).toBeGreaterThan(0);
      for (const [id, c] of Object.entries(r.comparison.classes)) expect(c.checks, `${r.archetype}/${id}: ${JSON.stringify(c)}`).toEqual({ launches: true, hits: true, misses: true, waste: true, p: true, deltaT: true });
      expect(Math.abs(r.comparison.usdOffRel), where).toBeLessThanOrEqual(TOLERANCE.usdOffRel);
      expect(Math.abs(r.comparison.usdOnRel), where).toBeLessThanOrEqual(TOLERANCE.usdOnRel);
      expect(Math.abs(r.comparison.ratioDiff), where).toBeLessThanOrEqual(TOLERANCE.latencyRatioAbs);
    }
  }, 180_000);
});

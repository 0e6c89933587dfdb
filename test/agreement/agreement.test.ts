/**
 * M9 stage 1 against the live system: offline replay of the live runs predicts what the real
 * scheduler, worker and estimator processes measure (GitHub issue 6 item 5, small version of
 * bench/agreement/run.mjs). Two archetypes, 8 paired runs each (speculation on and off with the
 * same seeds, so the same outcomes and tokens), time scale 0.05.
 *
 * Tolerances (docs/benchmarks.md, "agreement"): dollars per run with speculation on within 15%
 * of replay, off within 2%; the latency ratio on/off within 0.10 of replay; and where replay
 * predicts a saving of more than 3%, speculation on must be measured faster than off.
 */
import { uniquePrefix } from '@gambit/testkit';
import { describe, expect, inject, it } from 'vitest';
import { ARCHETYPES } from '../../packages/replay/dist/index.js';
// @ts-expect-error: plain ES module of the benchmark (no type declarations).
import { TOLERANCE } from '../../bench/agreement/compare.mjs';
// @ts-expect-error: plain ES module of the benchmark (no type declarations).
import { runAgreement } from '../../bench/agreement/run.mjs';

interface Row {
  archetype: string;
  measured: { meanOnSec: number; meanOffSec: number; latencyRatio: number; usdPerRunOn: number; usdPerRunOff: number; speculations: number; hits: number };
  predicted: { latencyRatio: number; usdPerRunOn: number; usdPerRunOff: number; speculations: number };
  comparison: { ratioDiff: number; usdOnRel: number; usdOffRel: number };
}

describe('M9 replay agrees with the live services (issue 6 item 5)', () => {
  it('auto-reply and code-agent: $/run and latency ratio within tolerance, speculation faster where replay predicts a saving', async () => {
    const archetypes = ['auto-reply', 'code-agent'].map((n) => ARCHETYPES.find((a: { name: string }) => a.name === n));
    const rows: Row[] = await runAgreement({
      redisUrl: inject('redisUrl'),
      prefix: uniquePrefix('agr'),
      archetypes,
      runs: 8,
      timeScale: 0.05,
      concurrency: 8,
      alpha: 0.5,
      lambdaUsdPerSec: 0.05,
      archetypeRuns: 0,
      workers: 1,
    });
    expect(rows.map((r) => r.archetype)).toEqual(['auto-reply', 'code-agent']);
    for (const r of rows) {
      const where = `${r.archetype}: ${JSON.stringify(r)}`;
      expect(r.measured.speculations, where).toBeGreaterThan(0);
      expect(Math.abs(r.comparison.usdOffRel), where).toBeLessThanOrEqual(TOLERANCE.usdOffRel);
      expect(Math.abs(r.comparison.usdOnRel), where).toBeLessThanOrEqual(TOLERANCE.usdOnRel);
      expect(Math.abs(r.comparison.ratioDiff), where).toBeLessThanOrEqual(TOLERANCE.latencyRatioAbs);
      if (r.predicted.latencyRatio < 0.97) expect(r.measured.meanOnSec, where).toBeLessThan(r.measured.meanOffSec);
    }
  }, 120_000);
});

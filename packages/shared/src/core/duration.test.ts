import { describe, expect, it } from 'vitest';
import {
  cdfAt,
  empiricalDuration,
  expDraw,
  fixedDuration,
  lognormalDuration,
  lognormalRemainingRows,
  remainingJobs,
  remainingQuantileMs,
  remainingQuantilesInto,
} from './duration.js';
import { mulberry32 } from './prng.js';

describe('running nodes’ draws without the quantile closure (issue 9 item 1)', () => {
  it('expDraw is within 4·2^-52 of Math.exp, table range and fallback alike', () => {
    const rnd = mulberry32(11);
    let worst = 0;
    for (let i = 0; i < 200_000; i++) {
      // Durations of 1e-22 to 1e22 ms in log space, past the tables (|y| ≥ 44) on both sides.
      const y = -50 + 100 * rnd();
      const want = Math.exp(y);
      worst = Math.max(worst, Math.abs(expDraw(y) - want) / want);
    }
    for (const y of [0, 1, -1, 43.999, -43.999, 44, -44, 700, -700]) {
      const want = Math.exp(y);
      worst = Math.max(worst, Math.abs(expDraw(y) - want) / want);
    }
    expect(worst).toBeLessThanOrEqual(4 * Number.EPSILON);
    expect(expDraw(800)).toBe(Number.POSITIVE_INFINITY);
    expect(expDraw(-800)).toBe(0);
    expect(Number.isNaN(expDraw(Number.NaN))).toBe(true);
  });

  it('remainingQuantilesInto equals remainingQuantileMs level by level (lognormal: within expDraw’s error on T, the others exactly)', () => {
    const K = 16;
    const levels = Float64Array.from({ length: 2 * K }, (_, i) => ((i * 7) % K + 0.5) / K);
    const cases = [
      // Central and tail levels, a node far past its mean (its tail levels), an outrun support.
      { dist: lognormalDuration(4000, 0.3), elapsed: [1, 1200, 4000, 9000, 20000] },
      { dist: lognormalDuration(250, 1.5), elapsed: [10, 250, 2500] },
      { dist: fixedDuration(1000), elapsed: [400, 1500] },
      { dist: empiricalDuration([100, 200, 300, 400]), elapsed: [250, 500] },
    ];
    let compared = 0;
    for (const { dist, elapsed } of cases) {
      for (const t of elapsed) {
        const out = new Float64Array(2 * K);
        remainingQuantilesInto(dist, t, levels, K, K, out);
        for (let k = K; k < 2 * K; k++) {
          const want = remainingQuantileMs(dist, t, levels[k]!);
          expect(want).toBeGreaterThan(0);
          if (dist.lognormal === undefined) expect(out[k]).toBe(want);
          // T − t: expDraw's error is relative to T = t + the remainder (4·2^-52), not to the remainder.
          else expect(Math.abs(out[k]! - want), `${t} ms at level ${levels[k]}`).toBeLessThanOrEqual(4 * Number.EPSILON * (t + want));
          compared++;
        }
        // Only the K levels asked for are written.
        expect(out.subarray(0, K).every((x) => x === 0)).toBe(true);
      }
    }
    expect(compared).toBe(12 * K);
  });

  it('lognormalRemainingRows draws many running nodes in one call, each row as remainingQuantilesInto does, and names an overflow', () => {
    const K = 16;
    const rnd = mulberry32(5);
    const nodes = Array.from({ length: 12 }, (_, v) => {
      const dist = lognormalDuration(200 + 20_000 * rnd(), 0.1 + 1.4 * rnd());
      // From just started to far past the mean (tail levels and the fallback past the support).
      return { dist, elapsed: dist.meanMs * 4 * rnd() ** 2 + 1, row: ((v * 5) % 12) * K };
    });
    const levels = Float64Array.from({ length: 12 * K }, (_, i) => (((i * 11) % K) + 0.5) / K);
    const jobs = remainingJobs(nodes.length);
    nodes.forEach(({ dist, elapsed, row }, j) => {
      jobs.row[j] = row;
      jobs.f[j] = cdfAt(dist, elapsed);
      jobs.mu[j] = dist.lognormal!.mu;
      jobs.sigma[j] = dist.lognormal!.sigma;
      jobs.elapsed[j] = elapsed;
      jobs.halfMean[j] = Math.max(1, dist.meanMs / 2);
    });
    const out = new Float64Array(12 * K);
    expect(lognormalRemainingRows(jobs, nodes.length, levels, K, out)).toBe(-1);
    for (const { dist, elapsed, row } of nodes) {
      const one = new Float64Array(12 * K);
      remainingQuantilesInto(dist, elapsed, levels, row, K, one);
      for (let k = row; k < row + K; k++) {
        expect(out[k]).toBe(one[k]);
        expect(Math.abs(out[k]! - remainingQuantileMs(dist, elapsed, levels[k]!))).toBeLessThanOrEqual(4 * Number.EPSILON * (elapsed + out[k]!));
      }
    }
    // A lognormal whose draws overflow (e^y past the largest double) is named by its first draw.
    jobs.mu[3] = 800;
    expect(lognormalRemainingRows(jobs, nodes.length, levels, K, out)).toBe(nodes[3]!.row);
  });
});

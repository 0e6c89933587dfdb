/**
 * Drift suspicion (M5, M9; suspect.ts): the CUSUM finds the change point of a drop, the decision
 * posterior follows the segment after it only while the class is suspect and only downwards, and
 * on a stationary class it is rarely suspect (measured here at three rates; bench/drift/launches
 * measures the launches it saves after a drop).
 */
import { describe, expect, it } from 'vitest';
import { mulberry32 } from '../core/prng.js';
import { DEFAULT_CALIBRATION, resolveCalibration } from './config.js';
import { changePointPosterior, classPosterior, decisionPosterior, driftSuspicion, suspectParams } from './suspect.js';

const D = DEFAULT_CALIBRATION.suspect;
/** The CUSUM's mechanics at a level of 2 nats (the defaults' level is checked on its own below). */
const P = { ...D, threshold: 2 };
const seqAt = (rnd: () => number, p: number, n: number) => {
  let s = '';
  for (let i = 0; i < n; i++) s += rnd() < p ? '1' : '0';
  return s;
};

describe('drift suspicion (suspect.ts)', () => {
  it('a run of misses after hits is suspect, and the segment is the misses', () => {
    const s = driftSuspicion(`${'1'.repeat(40)}00000`, 0.9, P);
    expect(s.suspect).toBe(true);
    expect(s.since).toBe(5);
    expect(s.hits).toBe(0);
    // ln(0.3 / 0.1) per miss: 5 misses pass the threshold of 2 nats, 1 does not.
    expect(s.stat).toBeCloseTo(5 * Math.log(0.3 / 0.1), 10);
    expect(driftSuspicion(`${'1'.repeat(40)}0`, 0.9, P).suspect).toBe(false);
  });

  it('hits after a suspicion bring the statistic back: not suspect', () => {
    // Each hit takes ln(0.9 / 0.7) off: two misses pass the threshold, one hit clears it.
    expect(driftSuspicion(`${'1'.repeat(40)}00`, 0.9, P).suspect).toBe(true);
    expect(driftSuspicion(`${'1'.repeat(40)}001`, 0.9, P).suspect).toBe(false);
    expect(driftSuspicion(`${'1'.repeat(40)}00000${'1'.repeat(10)}`, 0.9, P)).toMatchObject({ suspect: true, since: 15, hits: 10 });
    expect(driftSuspicion(`${'1'.repeat(40)}00000${'1'.repeat(22)}`, 0.9, P)).toMatchObject({ suspect: false, stat: 0, since: 0 });
  });

  it('only the last `window` outcomes count', () => {
    const seq = `${'0'.repeat(30)}${'1'.repeat(64)}`;
    expect(driftSuspicion(seq, 0.9, P).suspect).toBe(false);
    expect(driftSuspicion(seq, 0.9, { ...P, window: 200 }).suspect).toBe(true);
    expect(driftSuspicion(`${'1'.repeat(64)}${'0'.repeat(30)}`, 0.9, { ...P, window: 10 }).since).toBe(10);
  });

  it('is off where a drop of `drop` is impossible, when drop is 0, and on an empty sequence', () => {
    expect(driftSuspicion('0000000000', 0.15, P).suspect).toBe(false);
    expect(driftSuspicion('0000000000', 0.9, { ...P, drop: 0 }).suspect).toBe(false);
    expect(driftSuspicion('', 0.9, P).suspect).toBe(false);
  });

  it('a suspect class decides from the segment with the whole-history mean as its prior (weight 4); otherwise the whole history', () => {
    const whole = { a: 1 + 45, b: 3 + 10 };
    const m = 46 / 59;
    const down = decisionPosterior(whole, `${'1'.repeat(40)}000000`, P);
    expect(down.suspicion).toMatchObject({ suspect: true, since: 6, hits: 0 });
    expect(down.posterior.a).toBeCloseTo(4 * m, 12);
    expect(down.posterior.b).toBeCloseTo(4 * (1 - m) + 6, 12);
    expect(decisionPosterior(whole, '1'.repeat(50), P)).toEqual({ posterior: whole });
    expect(decisionPosterior(whole, undefined, P)).toEqual({ posterior: whole });
    // Two misses on a class at 0.9 are suspect, but its segment posterior stays near 0.6: a
    // class that pays by a wide margin keeps speculating.
    const brief = decisionPosterior({ a: 90, b: 10 }, `${'1'.repeat(40)}00`, P);
    expect(brief.suspicion?.suspect).toBe(true);
    expect(brief.posterior.a / (brief.posterior.a + brief.posterior.b)).toBeCloseTo(0.6, 12);
  });

  it('classPosterior: the learned evidence under the prior in force, then suspicion on its recent sequence', () => {
    const learned = { a: 41, b: 9, a0: 1, b0: 3, recent: `${'1'.repeat(40)}000000` };
    expect(classPosterior({ a: 1, b: 3 }, { ...learned, recent: undefined })).toEqual({ a: 41, b: 9 });
    const seg = classPosterior({ a: 1, b: 3 }, learned);
    expect(seg.a).toBeCloseTo(4 * 0.82, 12);
    expect(seg.b).toBeCloseTo(4 * 0.18 + 6, 12);
    expect(classPosterior({ a: 1, b: 3 }, learned, { ...P, drop: 0 })).toEqual({ a: 41, b: 9 });
    expect(classPosterior({ a: 2, b: 2 }, undefined)).toEqual({ a: 2, b: 2 });
  });

  it('tenant overrides: merged over the defaults, and resolveCalibration validates them', () => {
    expect(suspectParams({ suspect: { threshold: 3 } }, 0.5)).toEqual({ ...D, threshold: 3 });
    expect(suspectParams({}, 0)).toEqual(D);
    expect(resolveCalibration({ suspect: { drop: 0 } }).suspect).toEqual({ ...D, drop: 0 });
    expect(() => resolveCalibration({ suspect: { threshold: -1 } })).toThrow();
  });

  it('M3: the level rises from `threshold` at α ≤ 0.5 to `thresholdAtAlpha1` at α = 1 (2.25 and 3 nats by default)', () => {
    expect(suspectParams(undefined, 0).threshold).toBe(2.25);
    expect(suspectParams(undefined, 0.5).threshold).toBe(2.25);
    expect(suspectParams(undefined, 0.75).threshold).toBeCloseTo(2.625, 12);
    expect(suspectParams(undefined, 1).threshold).toBe(3);
    // Flat when asked: the level at α = 1 is the tenant's.
    expect(suspectParams({ suspect: { thresholdAtAlpha1: 2.25 } }, 1).threshold).toBe(2.25);
    // A class at 0.7 (p1 = 0.5, ln(0.5 / 0.3) = 0.51 nats a miss): five misses after hits (2.55
    // nats) are suspect at α = 0.5, not at α = 1 until a sixth (3.06).
    const seq = `${'1'.repeat(40)}00000`;
    expect(driftSuspicion(seq, 0.7, suspectParams(undefined, 0.5)).suspect).toBe(true);
    expect(driftSuspicion(seq, 0.7, suspectParams(undefined, 1)).suspect).toBe(false);
    expect(driftSuspicion(`${seq}0`, 0.7, suspectParams(undefined, 1)).suspect).toBe(true);
    // At 2 nats four misses would do (2.04): the default level asks for one more.
    expect(driftSuspicion(`${'1'.repeat(40)}0000`, 0.7, P).suspect).toBe(true);
    expect(driftSuspicion(`${'1'.repeat(40)}0000`, 0.7, suspectParams(undefined, 0.5)).suspect).toBe(false);
  });

  it('on stationary classes the fraction of decisions taken as suspect stays small', () => {
    // Measured with the defaults (20 classes × 1,000 outcomes each): about 4-8%, the price of
    // stopping within a few outcomes of a drop (docs/method.md); the bound here leaves sampling room.
    for (const p of [0.9, 0.7, 0.5]) {
      const rnd = mulberry32(Math.round(p * 1000));
      let suspect = 0;
      let n = 0;
      for (let c = 0; c < 20; c++) {
        const seq = seqAt(rnd, p, 1000);
        let hits = 0;
        for (let t = 0; t < seq.length; t++) {
          if (t >= 100) {
            n++;
            if (driftSuspicion(seq.slice(0, t), (1 + hits) / (4 + t), suspectParams(undefined, 0.5)).suspect) suspect++;
          }
          if (seq[t] === '1') hits++;
        }
      }
      expect(suspect / n).toBeLessThan(0.12);
      expect(suspect / n).toBeGreaterThan(0);
    }
  });

  describe('method changepoint (changePointPosterior)', () => {
    const CP = { ...P, method: 'changepoint' as const };
    const meanOf = (b: { a: number; b: number }) => b.a / (b.a + b.b);

    /** The same model enumerated directly: each hypothesis's joint likelihood from sequential predictives, O(n²). */
    function bruteForce(post: { a: number; b: number }, seq: string, p: typeof CP): { mean: number; variance: number } {
      const win = seq.slice(-p.window);
      const n = win.length;
      const m = post.a / (post.a + post.b);
      const m1 = p.segmentPrior === 'drop' ? m - p.drop : m;
      let H = 0;
      for (const c of win) if (c === '1') H++;
      const hyp: Array<{ w: number; a: number; b: number }> = [];
      for (let r = 0; r <= n; r++) {
        // r = n: no change within the window; r < n: the last r outcomes are a new segment.
        const none = r === n;
        let ca = post.a - H;
        let cb = post.b - (n - H);
        let sa = p.weight * m1;
        let sb = p.weight * (1 - m1);
        let like = 1;
        for (let i = 0; i < n; i++) {
          const hit = win[i] === '1';
          const inSeg = !none && i >= n - r;
          const [x, y] = inSeg ? [sa, sb] : [ca, cb];
          like *= hit ? x / (x + y) : y / (x + y);
          if (inSeg) {
            if (hit) sa++;
            else sb++;
          } else if (hit) ca++;
          else cb++;
        }
        const prior = none ? (1 - p.hazard) ** n : p.hazard * (1 - p.hazard) ** r;
        hyp.push(none ? { w: prior * like, a: post.a, b: post.b } : { w: prior * like, a: sa, b: sb });
      }
      const W = hyp.reduce((t, x) => t + x.w, 0);
      const mean = hyp.reduce((t, x) => t + (x.w * x.a) / (x.a + x.b), 0) / W;
      const second = hyp.reduce((t, x) => t + x.w * ((x.a * (x.a + 1)) / ((x.a + x.b) * (x.a + x.b + 1))), 0) / W;
      return { mean, variance: second - mean * mean };
    }

    it('is the Bayes predictive of the model, enumerated directly (mean and variance of the moment-matched Beta)', () => {
      const rnd = mulberry32(99);
      let checked = 0;
      for (const segmentPrior of ['whole', 'drop'] as const)
        for (const hazard of [0.002, 0.03, 0.2])
          for (let k = 0; k < 20; k++) {
            const p = { ...CP, hazard, segmentPrior, window: 1 + Math.floor(rnd() * 40) };
            const seq = seqAt(rnd, 0.3 + 0.6 * rnd(), 10 + Math.floor(rnd() * 60));
            let hits = 0;
            for (const c of seq) if (c === '1') hits++;
            const post = { a: 2 + hits, b: 2 + seq.length - hits };
            const got = changePointPosterior(post, seq, p);
            const want = bruteForce(post, seq, p);
            if (want.mean >= meanOf(post) - 1e-12) {
              // No fall (within rounding: a window of 1 leaves the mean at m exactly).
              expect(meanOf(got)).toBeCloseTo(meanOf(post), 10);
              continue;
            }
            checked++;
            expect(meanOf(got)).toBeCloseTo(want.mean, 10);
            expect((got.a * got.b) / ((got.a + got.b) ** 2 * (got.a + got.b + 1))).toBeCloseTo(want.variance, 10);
          }
      expect(checked).toBeGreaterThan(40);
    });

    it('only lowers P, and is off with drop 0, on an empty sequence, and where the drop is impossible', () => {
      const post = { a: 46, b: 6 };
      expect(changePointPosterior(post, '1'.repeat(50), CP)).toEqual(post);
      expect(changePointPosterior(post, '', CP)).toEqual(post);
      expect(changePointPosterior(post, `${'1'.repeat(40)}000000`, { ...CP, drop: 0 })).toEqual(post);
      expect(changePointPosterior({ a: 1, b: 9 }, '0000000000', { ...CP, segmentPrior: 'drop' })).toEqual({ a: 1, b: 9 });
      // Three misses after forty hits: P falls, by more at a larger hazard (a change is more probable).
      const low = meanOf(changePointPosterior(post, `${'1'.repeat(40)}000`, { ...CP, hazard: 0.002 }));
      const high = meanOf(changePointPosterior(post, `${'1'.repeat(40)}000`, { ...CP, hazard: 0.03 }));
      expect(low).toBeLessThan(meanOf(post) - 0.02);
      expect(high).toBeLessThan(low - 0.05);
      // decisionPosterior and classPosterior dispatch on the method.
      expect(decisionPosterior(post, `${'1'.repeat(40)}000000`, CP).posterior).toEqual(changePointPosterior(post, `${'1'.repeat(40)}000000`, CP));
      const learned = { a: 46, b: 6, a0: 1, b0: 1, recent: `${'1'.repeat(40)}000000` };
      expect(classPosterior({ a: 1, b: 1 }, learned, CP)).toEqual(changePointPosterior(post, learned.recent, CP));
    });

    it('on a stationary class P stays near the whole-history mean (hazard 0.03)', () => {
      // Measured (50 classes × 1,000 outcomes at 0.75): mean dip 0.026, a dip over 0.1 at 7.6% of decisions.
      const rnd = mulberry32(75);
      let n = 0;
      let dip = 0;
      let deep = 0;
      for (let c = 0; c < 20; c++) {
        const seq = seqAt(rnd, 0.75, 1100);
        let hits = 0;
        for (let t = 0; t < seq.length; t++) {
          if (t >= 100) {
            const post = { a: 1 + hits, b: 1 + t - hits };
            const d = meanOf(post) - meanOf(changePointPosterior(post, seq.slice(Math.max(0, t - 64), t), CP));
            expect(d).toBeGreaterThanOrEqual(0);
            n++;
            dip += d;
            if (d > 0.1) deep++;
          }
          if (seq[t] === '1') hits++;
        }
      }
      expect(dip / n).toBeLessThan(0.035);
      expect(dip / n).toBeGreaterThan(0.01);
      expect(deep / n).toBeLessThan(0.12);
    });

    it('after a drop of 0.3 P falls below the midpoint within a few outcomes (hazard 0.03)', () => {
      // Measured (200 trials each, 300 outcomes of history): median 7, p90 18 outcomes for 0.9 → 0.6, 0.7 → 0.4, 0.5 → 0.2.
      for (const [pre, post] of [
        [0.9, 0.6],
        [0.7, 0.4],
        [0.5, 0.2],
      ] as const) {
        const delays: number[] = [];
        for (let s = 0; s < 200; s++) {
          const rnd = mulberry32(17 + 1000 * s + Math.round(pre * 100));
          let seq = '';
          let hits = 0;
          let d = Number.POSITIVE_INFINITY;
          for (let t = 0; t < 500 && !Number.isFinite(d); t++) {
            if (t >= 300 && meanOf(changePointPosterior({ a: 1 + hits, b: 1 + t - hits }, seq, CP)) < (pre + post) / 2) d = t - 300;
            const x = rnd() < (t < 300 ? pre : post);
            if (x) hits++;
            seq = (seq + (x ? '1' : '0')).slice(-64);
          }
          delays.push(d);
        }
        delays.sort((x, y) => x - y);
        expect(delays[100]).toBeLessThanOrEqual(10);
        expect(delays[180]).toBeLessThanOrEqual(25);
        expect(delays[100]).toBeGreaterThanOrEqual(3);
      }
    });

    it('tenant overrides: method, hazard and segment prior validated', () => {
      expect(resolveCalibration({ suspect: { method: 'changepoint', hazard: 0.01 } }).suspect).toEqual({ ...D, method: 'changepoint', hazard: 0.01 });
      expect(() => resolveCalibration({ suspect: { hazard: 0 } })).toThrow();
      expect(() => resolveCalibration({ suspect: { hazard: 1 } })).toThrow();
      expect(() => resolveCalibration({ suspect: { method: 'bocpd' as 'cusum' } })).toThrow();
      expect(() => resolveCalibration({ suspect: { segmentPrior: 'prior' as 'whole' } })).toThrow();
    });
  });
});

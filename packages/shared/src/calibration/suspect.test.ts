/**
 * Drift suspicion (M5, M9; suspect.ts): the CUSUM finds the change point of a drop, the decision
 * posterior follows the segment after it only while the class is suspect and only downwards, and
 * on a stationary class it is rarely suspect (measured here at three rates; bench/drift/launches
 * measures the launches it saves after a drop).
 */
import { describe, expect, it } from 'vitest';
import { mulberry32 } from '../core/prng.js';
import { DEFAULT_CALIBRATION, resolveCalibration } from './config.js';
import { classPosterior, decisionPosterior, driftSuspicion, suspectParams } from './suspect.js';

const P = DEFAULT_CALIBRATION.suspect;
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
    expect(suspectParams({ suspect: { threshold: 3 } }, 0.5)).toEqual({ ...P, threshold: 3 });
    expect(suspectParams({}, 0)).toEqual(P);
    expect(resolveCalibration({ suspect: { drop: 0 } }).suspect).toEqual({ ...P, drop: 0 });
    expect(() => resolveCalibration({ suspect: { threshold: -1 } })).toThrow();
  });

  it('M3: the level rises from `threshold` at α ≤ 0.5 to `thresholdAtAlpha1` at α = 1 (flat by default)', () => {
    expect(suspectParams(undefined, 1).threshold).toBe(2);
    const o = { suspect: { thresholdAtAlpha1: 3.5 } };
    expect(suspectParams(o, 0).threshold).toBe(2);
    expect(suspectParams(o, 0.5).threshold).toBe(2);
    expect(suspectParams(o, 0.75).threshold).toBeCloseTo(2.75, 12);
    expect(suspectParams(o, 1).threshold).toBe(3.5);
    // Three misses after hits on a class at 0.9 (3.3 nats): suspect at α = 0.5, not at α = 1 until a fourth.
    const seq = `${'1'.repeat(40)}000`;
    expect(driftSuspicion(seq, 0.9, suspectParams(o, 0.5)).suspect).toBe(true);
    expect(driftSuspicion(seq, 0.9, suspectParams(o, 1)).suspect).toBe(false);
    expect(driftSuspicion(`${seq}0`, 0.9, suspectParams(o, 1)).suspect).toBe(true);
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
            if (driftSuspicion(seq.slice(0, t), (1 + hits) / (4 + t), P).suspect) suspect++;
          }
          if (seq[t] === '1') hits++;
        }
      }
      expect(suspect / n).toBeLessThan(0.12);
      expect(suspect / n).toBeGreaterThan(0);
    }
  });
});

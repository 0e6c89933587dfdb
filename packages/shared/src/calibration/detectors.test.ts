/**
 * M9.5 drift detector: the multi-window tail test is deterministic, tests a window only against
 * enough reference, is not fooled by a prior far from the truth, alarms within the derived bound
 * (DETECTION_BOUND_OUTCOMES) after a 0.9 → 0.2 drop for 99% of seeds, and keeps its false-alarm
 * rate ≤ 1e-5 per outcome at low, middle and high hit rates (bench/drift measures 10^6 outcomes
 * at each of seven rates; this test a smaller sample at three).
 */
import { describe, expect, it } from 'vitest';
import { mulberry32 } from '../core/prng.js';
import { tailDetectionBound } from './bound.js';
import { DEFAULT_CALIBRATION, DETECTION_BOUND_OUTCOMES, resolveCalibration } from './config.js';
import { detectDrift, PH_INITIAL, pageHinkleyScan, pageHinkleyStep, pageHinkleyVerdict, tailTest, tailTestPrefix } from './detectors.js';

const cfg = DEFAULT_CALIBRATION;

/**
 * Feeds a class outcome by outcome as the estimator does (a window list capped at windowCap; an
 * alarm empties it, as a kill and re-entry do). `onStep` returns true to stop.
 */
function simulate(seed: number, rate: (t: number) => number, steps: number, onStep: (t: number, alarm: boolean) => boolean): void {
  const rnd = mulberry32(seed);
  const cum = new Int32Array(steps + 1);
  let base = 0;
  for (let t = 0; t < steps; t++) {
    cum[t + 1] = cum[t]! + (rnd() < rate(t) ? 1 : 0);
    const start = Math.max(base, t + 1 - cfg.windowCap);
    const alarm = tailTestPrefix(cum, start, t + 1, cfg.tail).alarm;
    if (onStep(t, alarm)) return;
    if (alarm) base = t + 1;
  }
}

const seqAt = (seed: number, p: number, n: number) => {
  const rnd = mulberry32(seed);
  let s = '';
  for (let i = 0; i < n; i++) s += rnd() < p ? '1' : '0';
  return s;
};

describe('M9.5 multi-window tail test', () => {
  it('is deterministic, and tests no window before it has minReference outcomes before it', () => {
    const s = seqAt(1, 0.9, 300) + '0'.repeat(20);
    expect(tailTest(s, cfg.tail)).toEqual(tailTest(s, cfg.tail));
    // 30 misses with no history: nothing to compare against, no alarm.
    expect(tailTest('0'.repeat(30), cfg.tail)).toEqual({ alarm: false, perWindowLevel: cfg.tail.level / cfg.tail.windows.length });
    // The string form and the prefix form agree.
    const cum = new Int32Array(s.length + 1);
    for (let i = 0; i < s.length; i++) cum[i + 1] = cum[i]! + (s[i] === '1' ? 1 : 0);
    expect(tailTestPrefix(cum, 0, s.length, cfg.tail)).toEqual(tailTest(s, cfg.tail));
  });

  it('alarms on recent outcomes far below the class history, naming the window, and not on typical ones', () => {
    const history = seqAt(2, 0.9, 200);
    expect(tailTest(history, cfg.tail).alarm).toBe(false);
    const v = detectDrift(`${history}${'0'.repeat(12)}`, PH_INITIAL, cfg);
    expect(v.alarm).toBe(true);
    expect(v.reason).toMatch(/^drift: tail test P\(H<=0 of (8|12) \| \d+\/\d+ before\)=/);
    expect(v.tail.worst?.pValue).toBeLessThan(v.tail.perWindowLevel);
  });

  it('compares with the class history, not the prior: a Beta(9, 1) class that hits half the time is not drifting', () => {
    // The old test used the posterior (prior included) as the reference; here the prior plays no part.
    for (let seed = 1; seed <= 20; seed++) expect(tailTest(seqAt(seed, 0.5, 600), cfg.tail).alarm).toBe(false);
  });

  it('keeps the Page-Hinkley statistic as a report, never as an alarm', () => {
    const drop = '1111111110'.repeat(10) + '0000100000'.repeat(4);
    const ph = pageHinkleyScan(drop, cfg.pageHinkley);
    expect(pageHinkleyVerdict(ph, cfg.pageHinkley).exceeded).toBe(true);
    // Incremental and whole-sequence Page-Hinkley agree (the estimator's Lua mirrors the step).
    const half = pageHinkleyScan(drop.slice(0, 10), cfg.pageHinkley);
    expect(pageHinkleyScan(drop.slice(10), cfg.pageHinkley, half)).toEqual(ph);
    expect(pageHinkleyStep(PH_INITIAL, 1, cfg.pageHinkley).state.n).toBe(1);
    // The verdict follows the tail test alone.
    const stationary = seqAt(4, 0.5, 400);
    expect(detectDrift(stationary, { n: 400, mean: 0.5, cum: -100, max: 0 }, cfg).alarm).toBe(false);
  });

  it(`derived bound: a 0.9 → 0.2 drop alarms within ${DETECTION_BOUND_OUTCOMES} outcomes (99%) after ≥ 100 outcomes of history`, () => {
    for (const n of [100, 200, 500, 2000]) {
      const b = tailDetectionBound({ historyN: n, pre: 0.9, post: 0.2, tail: cfg.tail, windowCap: cfg.windowCap, quantile: 0.99 });
      expect(b.bound).toBeLessThanOrEqual(DETECTION_BOUND_OUTCOMES);
    }
  });

  it('simulation over 1000 seeds: 99% of 0.9 → 0.2 alarms within the bound, none before the change', () => {
    const HISTORY = 100;
    const delays: number[] = [];
    let early = 0;
    for (let seed = 1; seed <= 1000; seed++) {
      simulate(seed, (t) => (t < HISTORY ? 0.9 : 0.2), HISTORY + 200, (t, alarm) => {
        if (!alarm) return false;
        if (t < HISTORY) early++;
        else delays.push(t - HISTORY + 1);
        return true;
      });
    }
    expect(early).toBe(0);
    expect(delays).toHaveLength(1000);
    delays.sort((x, y) => x - y);
    expect(delays[Math.ceil(0.99 * delays.length) - 1]).toBeLessThanOrEqual(DETECTION_BOUND_OUTCOMES);
  });

  it('catches a moderate drop (0.9 → 0.6) that a single 30-outcome window mostly misses', () => {
    let missed = 0;
    for (let seed = 1; seed <= 200; seed++) {
      let fired = false;
      simulate(seed, (t) => (t < 300 ? 0.9 : 0.6), 700, (t, alarm) => {
        if (alarm) {
          expect(t).toBeGreaterThanOrEqual(300);
          fired = true;
        }
        return alarm;
      });
      if (!fired) missed++;
    }
    expect(missed).toBe(0);
  });

  it('false alarms stay ≤ 1e-5 per stationary outcome at p = 0.1, 0.5 and 0.9 (300 000 outcomes each)', () => {
    for (const p of [0.1, 0.5, 0.9]) {
      let alarms = 0;
      for (let seed = 1; seed <= 60; seed++) {
        simulate(seed * 7919 + Math.round(p * 100), () => p, 5000, (_t, alarm) => {
          if (alarm) alarms++;
          return false;
        });
      }
      expect(alarms, `p = ${p}`).toBeLessThanOrEqual(3);
    }
  });

  it('per-tenant overrides keep the window list long enough for the largest window and its reference', () => {
    const c = resolveCalibration({ tail: { windows: [400, 10] }, windowCap: 50 });
    expect(c.tail.windows).toEqual([10, 400]);
    expect(c.windowCap).toBe(400 + c.tail.minReference);
    expect(() => resolveCalibration({ tail: { level: 0.01 } })).toThrow();
  });
});

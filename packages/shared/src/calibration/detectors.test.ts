/**
 * M9.5 drift detectors: the tail test and Page-Hinkley are deterministic; with the default
 * parameters a drop of the hit rate from 0.9 to 0.2 is detected within the stated bound
 * (DETECTION_BOUND_OUTCOMES, derived in bound.ts) for 99% of seeds, and a long stationary run
 * at p = 0.9 raises no false alarm.
 */
import { describe, expect, it } from 'vitest';
import { mulberry32 } from '../core/prng.js';
import { tailDetectionBound } from './bound.js';
import { DEFAULT_CALIBRATION, DETECTION_BOUND_OUTCOMES } from './config.js';
import { detectDrift, PH_INITIAL, type PageHinkleyState, pageHinkleyScan, pageHinkleyStep, pageHinkleyVerdict, tailTest } from './detectors.js';

const cfg = DEFAULT_CALIBRATION;
const PRIOR = { a: 9, b: 1 }; // passthrough (M5)

/** Feeds a class outcome by outcome, exactly as the estimator does (posterior + capped window). */
function simulate(seed: number, rate: (t: number) => number, steps: number, onStep: (t: number, alarm: boolean) => boolean): void {
  const rnd = mulberry32(seed);
  let a = PRIOR.a;
  let b = PRIOR.b;
  let win = '';
  let ph: PageHinkleyState = PH_INITIAL;
  for (let t = 0; t < steps; t++) {
    const x = rnd() < rate(t) ? 1 : 0;
    if (x === 1) a++;
    else b++;
    win += x === 1 ? '1' : '0';
    if (win.length > cfg.windowCap) win = win.slice(win.length - cfg.windowCap);
    ph = pageHinkleyStep(ph, x, cfg.pageHinkley).state;
    if (onStep(t, detectDrift({ a, b }, win, ph, cfg).alarm)) return;
  }
}

describe('M9.5 tail test and Page-Hinkley', () => {
  it('are deterministic and only judge full windows', () => {
    const win = '1111111111111111111110000000000';
    expect(tailTest({ a: 200, b: 20 }, win, cfg.tail)).toEqual(tailTest({ a: 200, b: 20 }, win, cfg.tail));
    expect(tailTest({ a: 200, b: 20 }, '000', cfg.tail).alarm).toBe(false);
    expect(pageHinkleyScan(win, cfg.pageHinkley)).toEqual(pageHinkleyScan(win, cfg.pageHinkley));
    // Incremental and whole-sequence Page-Hinkley agree.
    const half = pageHinkleyScan(win.slice(0, 10), cfg.pageHinkley);
    expect(pageHinkleyScan(win.slice(10), cfg.pageHinkley, half)).toEqual(pageHinkleyScan(win, cfg.pageHinkley));
  });

  it('the tail test alarms on a window far below the posterior and not on a typical one', () => {
    const before = { a: 180, b: 20 };
    const typical = '111111111011111111101111111110'; // 27/30
    const bad = '110100100010010001000100100010'; // 11/30
    const post = (w: string) => {
      const h = [...w].filter((c) => c === '1').length;
      return { a: before.a + h, b: before.b + w.length - h };
    };
    expect(tailTest(post(typical), typical, cfg.tail).alarm).toBe(false);
    const r = tailTest(post(bad), bad, cfg.tail);
    expect(r.alarm).toBe(true);
    expect(r.before).toEqual(before);
    expect(r.pValue).toBeLessThan(cfg.tail.threshold);
  });

  it('Page-Hinkley detects a sustained drop of the mean and ignores a stationary sequence', () => {
    const stationary = '1111111110'.repeat(20);
    expect(pageHinkleyVerdict(pageHinkleyScan(stationary, cfg.pageHinkley), cfg.pageHinkley).alarm).toBe(false);
    const drop = '1111111110'.repeat(10) + '0000100000'.repeat(4);
    const r = pageHinkleyVerdict(pageHinkleyScan(drop, cfg.pageHinkley), cfg.pageHinkley);
    expect(r.alarm).toBe(true);
    expect(r.stat).toBeGreaterThan(cfg.pageHinkley.lambda);
  });

  it(`derived bound: a 0.9 → 0.2 drop alarms within ${DETECTION_BOUND_OUTCOMES} outcomes (99%) after ≥ 100 outcomes of history`, () => {
    const b100 = tailDetectionBound({ prior: PRIOR, historyN: 100, pre: 0.9, post: 0.2, tail: cfg.tail, quantile: 0.99 });
    expect(b100.bound).toBe(DETECTION_BOUND_OUTCOMES);
    // More history concentrates the posterior and can only make detection faster.
    for (const n of [200, 500, 2000]) {
      expect(tailDetectionBound({ prior: PRIOR, historyN: n, pre: 0.9, post: 0.2, tail: cfg.tail, quantile: 0.99 }).bound).toBeLessThanOrEqual(DETECTION_BOUND_OUTCOMES);
    }
  });

  it('simulation over 1000 seeds: 99% of alarms within the bound, none before the change', () => {
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
    const p99 = delays[Math.ceil(0.99 * delays.length) - 1] as number;
    expect(p99).toBeLessThanOrEqual(DETECTION_BOUND_OUTCOMES);
  });

  it('Page-Hinkley catches a moderate drop (0.9 → 0.7) the 30-outcome tail test mostly misses', () => {
    let byPh = 0;
    let missed = 0;
    for (let seed = 1; seed <= 100; seed++) {
      let fired = false;
      const rnd = mulberry32(seed);
      let a = PRIOR.a;
      let b = PRIOR.b;
      let win = '';
      let ph: PageHinkleyState = PH_INITIAL;
      for (let t = 0; t < 800 && !fired; t++) {
        const x = rnd() < (t < 200 ? 0.9 : 0.7) ? 1 : 0;
        if (x === 1) a++;
        else b++;
        win = (win + x).slice(-cfg.windowCap);
        ph = pageHinkleyStep(ph, x, cfg.pageHinkley).state;
        const v = detectDrift({ a, b }, win, ph, cfg);
        if (v.alarm) {
          fired = true;
          expect(t).toBeGreaterThanOrEqual(200);
          if (!v.tail.alarm) byPh++;
        }
      }
      if (!fired) missed++;
    }
    expect(missed).toBeLessThanOrEqual(5);
    expect(byPh).toBeGreaterThan(50);
  });

  it('false alarm rate at p = 0.9 stays below the stated 1 per 10^5 outcomes (400 000 simulated)', () => {
    let alarms = 0;
    let outcomes = 0;
    for (let seed = 10_001; seed <= 10_080; seed++) {
      // Each alarm restarts the class from its prior, as a kill and cooldown would.
      let left = 5000;
      while (left > 0) {
        let used = 0;
        simulate(seed * 7919 + left, () => 0.9, left, (t, alarm) => {
          used = t + 1;
          if (alarm) alarms++;
          return alarm;
        });
        left -= used;
        outcomes += used;
      }
    }
    expect(outcomes).toBe(400_000);
    expect(alarms).toBeLessThanOrEqual(4);
  });
});

/** M9 stage machine: promotion gates, drift kill, cooldown, with reasons. Pure. */
import { describe, expect, it } from 'vitest';
import { DEFAULT_CALIBRATION, resolveCalibration } from './config.js';
import { pageHinkleyScan } from './detectors.js';
import { type ClassSnapshot, calibrationGate, cooldownTransition, nextTransition, realizedNetUsd } from './stages.js';

const cfg = resolveCalibration({ nMin: 20 });
const hits = (w: string) => [...w].filter((c) => c === '1').length;
function snap(over: Partial<ClassSnapshot> & { window: string }): ClassSnapshot {
  const h = hits(over.window);
  return {
    stage: 'shadow',
    posterior: { a: 9 + h, b: 1 + over.window.length - h },
    stageN: over.window.length,
    stageRealN: 0,
    stageSavedMs: 0,
    stageWasteNanoUsd: 0,
    stageFencing: 0,
    ph: pageHinkleyScan(over.window, DEFAULT_CALIBRATION.pageHinkley),
    ...over,
  };
}

describe('M9 stage machine', () => {
  it('shadow → canary only after nMin outcomes, and only when calibrated', () => {
    const good = '11111111101111111110';
    expect(nextTransition(snap({ window: good.slice(0, 19) }), cfg, 0.01)).toBeNull();
    const t = nextTransition(snap({ window: good }), cfg, 0.01);
    expect(t).toMatchObject({ from: 'shadow', to: 'canary', alarm: false });
    expect(t?.reason).toMatch(/^calibrated: 18\/20 hits inside the 0.95 predictive interval \[\d+, 20\]$/);
    // A Beta(9,1) prior and a 20% hit rate: outside the predictive interval, stays in shadow.
    const bad = '10000100001000010000';
    expect(calibrationGate(snap({ window: bad }), cfg).pass).toBe(false);
    expect(nextTransition(snap({ window: bad }), cfg, 0.01)).toBeNull();
  });

  it('canary → online when net value ≥ 0 over nMin real outcomes; negative value stays; fencing → shadow', () => {
    const w = '11111111101111111110';
    const base = { stage: 'canary' as const, window: w, stageRealN: 20 };
    const pos = snap({ ...base, stageSavedMs: 18_000, stageWasteNanoUsd: 4_000_000 });
    expect(realizedNetUsd(pos, 0.01)).toBeCloseTo(0.176, 9);
    expect(nextTransition(pos, cfg, 0.01)?.to).toBe('online');
    const neg = snap({ ...base, stageSavedMs: 1000, stageWasteNanoUsd: 50_000_000 });
    expect(nextTransition(neg, cfg, 0.01)).toBeNull();
    expect(nextTransition(snap({ ...base, stageRealN: 19, stageSavedMs: 18_000 }), cfg, 0.01)).toBeNull();
    const fenced = nextTransition(snap({ ...base, stageSavedMs: 18_000, stageFencing: 1 }), cfg, 0.01);
    expect(fenced).toEqual({ from: 'canary', to: 'shadow', reason: 'fencing violation in canary (1)', alarm: false });
  });

  it('online/canary → killed on drift with the detector in the reason; shadow is never killed by drift', () => {
    const w = `${'1111111110'.repeat(17)}${'0'.repeat(12)}`;
    const s = { window: w, posterior: { a: 9 + hits(w), b: 1 + w.length - hits(w) } };
    const t = nextTransition(snap({ ...s, stage: 'online' }), DEFAULT_CALIBRATION, 0.01);
    expect(t).toMatchObject({ from: 'online', to: 'killed', alarm: true });
    expect(t?.reason).toMatch(/^drift: tail test P\(H<=0 of (8|12) \| /);
    expect(nextTransition(snap({ ...s, stage: 'canary', stageRealN: 0 }), DEFAULT_CALIBRATION, 0.01)?.to).toBe('killed');
    expect(nextTransition(snap({ ...s, stage: 'shadow', stageN: 0 }), DEFAULT_CALIBRATION, 0.01)).toBeNull();
  });

  it('killed → shadow once the cooldown has elapsed', () => {
    expect(cooldownTransition('killed', 5000, 4999)).toBeNull();
    expect(cooldownTransition('killed', 5000, 5000)).toEqual({ from: 'killed', to: 'shadow', reason: 'cooldown elapsed: re-entering shadow', alarm: false });
    expect(cooldownTransition('online', 0, 9999)).toBeNull();
  });

  it('per-tenant overrides merge over the defaults and keep the window long enough', () => {
    const c = resolveCalibration({ nMin: 700, tail: { level: 1e-4 } });
    expect(c.tail).toEqual({ ...DEFAULT_CALIBRATION.tail, level: 1e-4 });
    expect(c.windowCap).toBe(700);
    expect(() => resolveCalibration({ canaryFraction: 2 })).toThrow();
  });
});

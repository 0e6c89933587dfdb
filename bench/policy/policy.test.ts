/** Policy benchmark helpers: the paired bootstrap is seeded and brackets its estimate; the SVG plot is well formed. */
import { describe, expect, it } from 'vitest';
import { bootstrapAll } from './stats.mjs';
import { latencyDollarSvg } from './svg.mjs';

function column(values: number[]) {
  const f = Float64Array.from(values);
  return { lat: f, usd: f.map((x) => x / 1e4), waste: f.map(() => 0), brierSum: f.map(() => 0.1), brierN: f.map(() => 1) };
}

describe('policy benchmark helpers', () => {
  const never = Array.from({ length: 200 }, (_, i) => 1000 + ((i * 37) % 500));
  const faster = never.map((x, i) => x * (i % 3 === 0 ? 0.7 : 1));
  const oracle = never.map((x) => x * 0.6);

  it('bootstrap: deterministic for a seed, intervals bracket the point estimate, ratios paired', () => {
    const configs = [column(never), column(faster)];
    const a = bootstrapAll(configs, Float64Array.from(never), Float64Array.from(oracle), { seed: 5, resamples: 300 });
    const b = bootstrapAll(configs, Float64Array.from(never), Float64Array.from(oracle), { seed: 5, resamples: 300 });
    expect(a).toEqual(b);
    expect(a[0].meanRel).toEqual({ value: 1, lo: 1, hi: 1 });
    const m = a[1].meanRel;
    expect(m.value).toBeLessThan(1);
    expect(m.lo).toBeLessThanOrEqual(m.value);
    expect(m.hi).toBeGreaterThanOrEqual(m.value);
    expect(a[1].oracleShare.value).toBeGreaterThan(0);
    expect(a[1].oracleShare.value).toBeLessThan(1);
    expect(a[1].brier.value).toBeCloseTo(0.1, 12);
  });

  it('SVG: one marker per fixed policy and one polyline per α', () => {
    const svg: string = latencyDollarSvg({
      title: 'demo <test>',
      fixed: [
        { policy: 'never', usd: 0.01, rel: 1 },
        { policy: 'oracle', usd: 0.01, rel: 0.8 },
      ],
      ev: [0, 0.5, 1].map((alpha) => ({ alpha, points: [1e-4, 1e-2].map((lambda, i) => ({ lambda, usd: 0.01 + i * 0.002, rel: 1 - i * 0.1 })) })),
    });
    expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true);
    expect(svg.trimEnd().endsWith('</svg>')).toBe(true);
    expect(svg.match(/<polyline /g)).toHaveLength(3);
    expect(svg).toContain('demo &lt;test&gt;');
    expect(svg).not.toMatch(/NaN|Infinity/);
  });
});

import { describe, expect, it } from 'vitest';
import { ValidationError } from '../errors.js';
import { DecisionRecordSchema } from '../schemas/records.js';
import { mulberry32 } from './prng.js';
import { priorFor } from './posterior.js';
import { type DecideInput, type DecisionFlags, decide, expectedValueUsd, impliedLambda, kCrit, pStar, thresholdUsd } from './rule.js';
import type { BetaParams, Stage } from './types.js';

const OK: DecisionFlags = { admissible: true, killed: false, hasPrediction: true, budgetOk: true, speculationEnabled: true };

/** A Beta whose mean is exactly p (p = a / (a + b) with a + b = 1). */
function betaWithMean(p: number): BetaParams {
  return { a: p, b: 1 - p };
}

function input(over: Partial<DecideInput> = {}): DecideInput {
  return {
    edges: [{ posterior: { a: 8, b: 2 } }],
    cSpecUsd: 0.01,
    deltaTSec: 2,
    dial: { alpha: 0.5, lambdaUsdPerSec: 0.01 },
    stage: 'online',
    flags: OK,
    ...over,
  };
}

describe('M4 the rule: EV = P·L − (1−P)·C_fail ≥ (1−α)·C_spec', () => {
  it('computes every field by hand on one example', () => {
    // P = 0.8, L = 0.01 × 2 = 0.02, EV = 0.8 × 0.02 − 0.2 × 0.004 = 0.0152, threshold = 0.5 × 0.01.
    const d = decide(input({ cFailUsd: 0.004, predictorUsd: 0.001 }));
    expect(d.p).toBeCloseTo(0.8, 15);
    expect(d.lUsd).toBeCloseTo(0.02, 15);
    expect(d.evUsd).toBeCloseTo(0.0152, 15);
    expect(d.thresholdUsd).toBeCloseTo(0.005, 15);
    expect(d).toMatchObject({ action: 'SPECULATE', reason: 'ev', cSpecUsd: 0.01, cFailUsd: 0.004, alpha: 0.5, lambdaUsdPerSec: 0.01, predictorUsd: 0.001 });
    expect(d.posteriors).toEqual([{ a: 8, b: 2, mode: 'mean' }]);
    expect(expectedValueUsd(0.8, 0.02, 0.004)).toBeCloseTo(0.0152, 15);
    expect(thresholdUsd(0.5, 0.01)).toBeCloseTo(0.005, 15);
  });

  it('C_fail defaults to C_spec', () => {
    // EV = 0.8 × 0.02 − 0.2 × 0.01 = 0.014.
    expect(decide(input()).evUsd).toBeCloseTo(0.014, 15);
  });

  it('its output is a valid DecisionRecord once ids and time are added', () => {
    const d = decide(input({ edges: [{ posterior: { a: 3, b: 4 }, mode: { kind: 'lower_bound', quantile: 0.1 } }] }));
    const rec = DecisionRecordSchema.parse({ ...d, decisionId: 'd1', phase: 'runtime', tenant: 't', workflow: 'w', runId: 'r', node: 'n', edgeClasses: ['t/w/a->n'], atMs: 1 });
    expect(rec.posteriors[0]).toEqual({ a: 3, b: 4, mode: 'lcb', quantile: 0.1 });
  });

  it('decision boundary: with C_fail = C_spec it speculates exactly where P·(1+ρ) ≥ 2−α', () => {
    let checked = 0;
    let speculated = 0;
    for (let i = 0; i < 97; i++) {
      const p = (i + 0.5) / 97;
      for (const rho of [0, 0.13, 0.5, 1, 1.7, 3.3, 4.7, 9.1, 25]) {
        for (const alpha of [0, 0.1, 0.25, 0.5, 0.77, 0.9, 1]) {
          const margin = p * (1 + rho) - (2 - alpha);
          if (Math.abs(margin) < 1e-9) continue; // exact ties depend on float rounding
          const cSpec = 0.02;
          const d = decide(input({ edges: [{ posterior: betaWithMean(p) }], cSpecUsd: cSpec, deltaTSec: 1, dial: { alpha, lambdaUsdPerSec: rho * cSpec } }));
          expect(d.action, `p=${p} rho=${rho} alpha=${alpha}`).toBe(margin > 0 ? 'SPECULATE' : 'WAIT');
          expect(d.reason).toBe(margin > 0 ? 'ev' : rho === 0 ? 'zero_value' : 'below_threshold');
          // Same boundary via P*.
          expect(p >= pStar(alpha, rho * cSpec, cSpec)).toBe(margin > 0);
          checked++;
          if (margin > 0) speculated++;
        }
      }
    }
    expect(checked).toBeGreaterThan(6000);
    // The grid covers both sides of the boundary.
    expect(speculated).toBeGreaterThan(1000);
    expect(checked - speculated).toBeGreaterThan(1000);
  });

  it('P* = (2 − α)·C_spec / (L + C_spec)', () => {
    expect(pStar(1, 4, 1)).toBeCloseTo(0.2, 15);
    expect(pStar(0, 4, 1)).toBeCloseTo(0.4, 15);
    expect(pStar(0.5, 0.5, 1)).toBeCloseTo(1, 15);
  });

  it('M1: P is the product of the pending edges’ probabilities', () => {
    const d = decide(input({ edges: [{ posterior: { a: 8, b: 2 } }, { posterior: { a: 1, b: 1 } }, { posterior: { a: 9, b: 1 } }] }));
    expect(d.p).toBeCloseTo(0.8 * 0.5 * 0.9, 15);
    expect(d.posteriors).toHaveLength(3);
  });

  it('M5: a lower credible bound makes P smaller than the mean', () => {
    const mean = decide(input()).p;
    const lcb = decide(input({ edges: [{ posterior: { a: 8, b: 2 }, mode: { kind: 'lower_bound', quantile: 0.1 } }] })).p;
    expect(lcb).toBeLessThan(mean);
    expect(lcb).toBeGreaterThan(0.5);
  });

  it('rejects negative or non-finite amounts, naming the field', () => {
    try {
      decide(input({ cSpecUsd: -1, deltaTSec: Number.NaN }));
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(ValidationError);
      expect((err as ValidationError).issues.map((i) => i.path)).toEqual(['cSpecUsd', 'deltaTSec']);
    }
  });

  it('validates the dial, naming the field', () => {
    try {
      decide(input({ dial: { alpha: 1.5, lambdaUsdPerSec: 0.01 } }));
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(ValidationError);
      expect((err as ValidationError).issues.map((i) => i.path)).toEqual(['dial.alpha']);
    }
  });
});

describe('M4 gates: disabled → inadmissible → killed → no_prediction → unpriced → zero_value → rule → stage → budget', () => {
  const passing = input();
  const failing = input({ dial: { alpha: 0, lambdaUsdPerSec: 1e-6 } });

  it('orders the gates and records every number even when waiting', () => {
    const cases: Array<[Partial<DecisionFlags>, Stage, string]> = [
      [{ speculationEnabled: false, admissible: false, killed: true }, 'online', 'disabled'],
      [{ admissible: false, killed: true, hasPrediction: false }, 'online', 'inadmissible'],
      [{ killed: true, hasPrediction: false, budgetOk: false }, 'online', 'killed'],
      [{}, 'killed', 'killed'],
      [{ killed: true, estimatorUnavailable: true }, 'online', 'killed'],
      [{ estimatorUnavailable: true, hasPrediction: false }, 'online', 'estimator_unavailable'],
      [{ hasPrediction: false, budgetOk: false }, 'shadow', 'no_prediction'],
      [{ unpriced: true, budgetOk: false }, 'shadow', 'unpriced'],
      [{ budgetOk: false }, 'shadow', 'stage'],
      [{ budgetOk: false }, 'canary', 'stage'],
      [{ budgetOk: false, canarySampled: true }, 'canary', 'budget'],
      [{ budgetOk: false }, 'online', 'budget'],
      [{ canarySampled: true }, 'canary', 'ev'],
      [{}, 'replay', 'ev'],
    ];
    for (const [flags, stage, reason] of cases) {
      const d = decide({ ...passing, stage, flags: { ...OK, ...flags } });
      expect(d.reason, `${JSON.stringify(flags)} ${stage}`).toBe(reason);
      expect(d.action).toBe(reason === 'ev' ? 'SPECULATE' : 'WAIT');
      expect(d.evUsd).toBeCloseTo(0.014, 15);
      expect(d.stage).toBe(stage);
    }
  });

  it('never launches with ΔT = 0 or L = 0 (zero_value), even at α = 1 where the threshold is 0 (issue 9 item 1)', () => {
    for (const over of [{ deltaTSec: 0 }, { dial: { alpha: 1, lambdaUsdPerSec: 0 } }]) {
      const d = decide({ ...input(over), dial: over.dial ?? { alpha: 1, lambdaUsdPerSec: 0.01 }, cFailUsd: 0 });
      expect(d.action).toBe('WAIT');
      expect(d.reason).toBe('zero_value');
      expect(d.lUsd).toBe(0);
    }
    // A zero-value WAIT is not evidence about λ.
    const d = decide({ ...input({ deltaTSec: 0 }), dial: { alpha: 1, lambdaUsdPerSec: 0.01 } });
    expect(impliedLambda([d]).lambdaUsdPerSec).toBeUndefined();
  });

  it('a node with no price waits with reason unpriced, never as if free (issue 9 item 9)', () => {
    const d = decide({ ...passing, cSpecUsd: 0, cFailUsd: 0, flags: { ...OK, unpriced: true } });
    expect(d).toMatchObject({ action: 'WAIT', reason: 'unpriced' });
  });

  it('the rule comes before stage and budget: a below-threshold decision is below_threshold in shadow', () => {
    expect(decide({ ...failing, stage: 'shadow', flags: { ...OK, budgetOk: false } }).reason).toBe('below_threshold');
  });
});

describe('M5 self-limit: k equally likely outcomes', () => {
  it('k_crit(α) = (1+ρ)/(2−α): 5.7, 3.8 and 2.9 at ρ = 4.7 for α = 1, 0.5, 0', () => {
    expect(kCrit(1, 4.7)).toBeCloseTo(5.7, 12);
    expect(kCrit(0.5, 4.7)).toBeCloseTo(3.8, 12);
    expect(kCrit(0, 4.7)).toBeCloseTo(2.85, 12);
    expect(Math.round(kCrit(0, 4.7) * 10) / 10).toBe(2.9);
  });

  it('with the router prior Beta(1, k−1) the rule waits exactly when k > k_crit, with no cap on branching', () => {
    const cSpec = 0.01;
    const rho = 4.7;
    const speculatesUpTo: Record<string, number> = {};
    for (const alpha of [1, 0.5, 0]) {
      let last = 0;
      for (let k = 2; k <= 12; k++) {
        const d = decide(input({ edges: [{ posterior: priorFor('router_k_way', k) }], cSpecUsd: cSpec, deltaTSec: 1, dial: { alpha, lambdaUsdPerSec: rho * cSpec } }));
        expect(d.p).toBeCloseTo(1 / k, 15);
        expect(d.action, `alpha=${alpha} k=${k}`).toBe(k > kCrit(alpha, rho) ? 'WAIT' : 'SPECULATE');
        if (d.action === 'SPECULATE') last = k;
      }
      speculatesUpTo[String(alpha)] = last;
    }
    expect(speculatesUpTo).toEqual({ '1': 5, '0.5': 3, '0': 2 });
  });
});

describe('M4 implied λ: recover the value of time from decisions', () => {
  it('recovers λ within 5% from decisions made at a known λ over varied inputs', () => {
    const rnd = mulberry32(20261129);
    for (const lambda of [0.002, 0.05, 1.3]) {
      const records = [];
      for (let i = 0; i < 1000; i++) {
        // Costs from 1% to 10× a second's value, so break-even points fall on both sides of λ.
        const cSpec = lambda * 10 ** (-2 + 3 * rnd());
        records.push(
          decide(
            input({
              edges: [{ posterior: betaWithMean(0.05 + 0.9 * rnd()) }],
              cSpecUsd: cSpec,
              cFailUsd: cSpec * (0.2 + 0.8 * rnd()),
              deltaTSec: 0.2 + rnd() * 20,
              dial: { alpha: rnd(), lambdaUsdPerSec: lambda },
            }),
          ),
        );
      }
      const est = impliedLambda(records);
      expect(est.consistent).toBe(true);
      expect(est.lowerUsdPerSec).toBeLessThanOrEqual(lambda);
      expect(est.upperUsdPerSec).toBeGreaterThan(lambda);
      expect(Math.abs((est.lambdaUsdPerSec ?? 0) - lambda) / lambda).toBeLessThan(0.05);
    }
  });

  it('ignores gate-decided records and reports one-sided and inconsistent evidence', () => {
    const base = { p: 0.5, cSpecUsd: 1, cFailUsd: 1, deltaTSec: 1, alpha: 1 } as const;
    // Break-even λ_i = (0 + 0.5 × 1) / 0.5 = 1.
    expect(impliedLambda([{ ...base, action: 'WAIT', reason: 'killed' }]).lambdaUsdPerSec).toBeUndefined();
    expect(impliedLambda([{ ...base, action: 'SPECULATE', reason: 'ev' }])).toMatchObject({ lambdaUsdPerSec: 1, lowerUsdPerSec: 1 });
    expect(impliedLambda([{ ...base, action: 'WAIT', reason: 'stage' }]).lowerUsdPerSec).toBe(1);
    const bad = impliedLambda([
      { ...base, action: 'SPECULATE', reason: 'ev' },
      { ...base, p: 1, cFailUsd: 0, action: 'WAIT', reason: 'below_threshold' },
    ]);
    // Second record: λ_i = 0 / 1 = 0 → upper bound 0 < lower bound 1.
    expect(bad.consistent).toBe(false);
  });
});

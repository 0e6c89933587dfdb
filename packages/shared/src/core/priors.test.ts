import { describe, expect, it } from 'vitest';
import { posteriorUnder, resolvePrior } from './priors.js';

describe('M5 priors per tenant and class (issue 9 item 7)', () => {
  it('a class setting wins over its type, a type setting over the default', () => {
    const priors = { types: { lookup: { a: 3, b: 1 } }, classes: { 't/w/a->b': { a: 5, b: 5, posteriorMode: { kind: 'lower_bound' as const, quantile: 0.1 } } } };
    expect(resolvePrior(priors, 't/w/a->b', 'lookup')).toEqual({ prior: { a: 5, b: 5 }, mode: { kind: 'lower_bound', quantile: 0.1 } });
    expect(resolvePrior(priors, 't/w/x->b', 'lookup')).toEqual({ prior: { a: 3, b: 1 } });
    expect(resolvePrior(priors, 't/w/x->b', 'free_text')).toEqual({ prior: { a: 1, b: 19 } });
    expect(resolvePrior(undefined, 'c', 'router_k_way', 4)).toEqual({ prior: { a: 1, b: 3 } });
  });

  it('a prior changed at run time keeps the evidence the class gathered', () => {
    // Started at Beta(1, 19), saw 6 hits and 2 misses: Beta(7, 21). Under Beta(19, 1): Beta(25, 3).
    expect(posteriorUnder({ a: 19, b: 1 }, { a: 7, b: 21, a0: 1, b0: 19 })).toEqual({ a: 25, b: 3 });
    expect(posteriorUnder({ a: 2, b: 2 }, undefined)).toEqual({ a: 2, b: 2 });
  });
});

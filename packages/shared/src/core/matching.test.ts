import { describe, expect, it } from 'vitest';
import { ValidationError } from '../errors.js';
import { HashingEmbedder, canonicalize, cosine, matchOutput, prefixVerdict, settledBy, tier1Match } from './matching.js';

describe('M7 tier 1: equality after canonicalisation', () => {
  it('JSON: key order and whitespace do not matter; values do', () => {
    expect(canonicalize('{ "b": 1, "a": {"y": [1, 2], "x": null} }')).toBe('{"a":{"x":null,"y":[1,2]},"b":1}');
    expect(canonicalize({ b: 1, a: 2 })).toBe('{"a":2,"b":1}');
    expect(tier1Match('{"name":"search","args":{"q":"x","n":3}}', '{"args":{"n":3,"q":"x"},"name":"search"}')).toBe(true);
    expect(tier1Match('{"a":[1,2]}', '{"a":[2,1]}')).toBe(false);
    expect(tier1Match('{"a":1}', '{"a":"1"}')).toBe(false);
  });

  it('text: trimmed, whitespace collapsed, case only where the edge says so', () => {
    expect(canonicalize('  billing \n\t question ')).toBe('billing question');
    expect(tier1Match('Billing', 'billing')).toBe(false);
    expect(tier1Match('Billing', ' billing ', { caseInsensitive: true })).toBe(true);
    expect(tier1Match('refund', 'refunds')).toBe(false);
    expect(canonicalize('{not json')).toBe('{not json');
  });
});

describe('M7 tier 2: cosine of normalised embeddings', () => {
  const e = new HashingEmbedder();

  it('the hashing embedder is deterministic and unit-length; similar texts are close, unrelated ones far', () => {
    const a = e.embedSync('The order ships on Monday from the Berlin warehouse.');
    expect(e.embedSync('The order ships on Monday from the Berlin warehouse.')).toEqual(a);
    expect(Math.sqrt(a.reduce((s, x) => s + x * x, 0))).toBeCloseTo(1, 12);
    expect(cosine(a, e.embedSync('the order ships on monday from the berlin warehouse'))).toBeGreaterThan(0.95);
    expect(cosine(a, e.embedSync('Your order ships Tuesday from the Munich warehouse.'))).toBeLessThan(0.95);
    expect(cosine(a, e.embedSync('Photosynthesis converts light into chemical energy.'))).toBeLessThan(0.3);
    expect(cosine([0, 0], [1, 0])).toBe(0);
    expect(() => cosine([1], [1, 2])).toThrow(ValidationError);
  });

  it('matchOutput applies the threshold and reports the score', async () => {
    const near = await matchOutput({ tier: 2 }, 'The order ships on Monday.', 'the order ships on monday');
    expect(near.matched).toBe(true);
    const far = await matchOutput({ tier: 2, threshold: 0.95 }, 'The order ships on Monday.', 'We cancelled your order.');
    expect(far.matched).toBe(false);
    expect(far.score).toBeLessThan(0.95);
    const lax = await matchOutput({ tier: 2, threshold: 0 }, 'The order ships on Monday.', 'We cancelled your order.');
    expect(lax.matched).toBe(true);
    // A custom embedder is used when given.
    const constant = { embed: async () => [1, 0] };
    expect((await matchOutput({ tier: 2 }, 'a', 'b', { embedder: constant })).score).toBe(1);
  });
});

describe('M7 tier 3: registered predicates', () => {
  it('calls the named predicate, and rejects an unknown one', async () => {
    const predicates = new Map([['same-number', (p: string, a: string) => Number.parseFloat(p) === Number.parseFloat(a)]]);
    expect((await matchOutput({ tier: 3, predicate: 'same-number' }, '42.0', '42', { predicates })).matched).toBe(true);
    expect((await matchOutput({ tier: 3, predicate: 'same-number' }, '41', '42', { predicates })).matched).toBe(false);
    await expect(matchOutput({ tier: 3, predicate: 'nope' }, 'a', 'a', { predicates })).rejects.toBeInstanceOf(ValidationError);
  });

  it('tier 1 through matchOutput', async () => {
    expect(await matchOutput({ tier: 1, caseInsensitive: true }, 'Refund', 'refund')).toEqual({ matched: true, tier: 1 });
  });
});

describe('M8 streaming re-estimation', () => {
  it('a prefix rules î out when it cannot end as î', () => {
    const spec = { tier: 1 } as const;
    expect(prefixVerdict('billing', '', spec)).toBe('consistent');
    expect(prefixVerdict('billing', 'bil', spec)).toBe('consistent');
    expect(prefixVerdict('billing', '  bil', spec)).toBe('consistent');
    expect(prefixVerdict('billing', 'billing', spec)).toBe('consistent');
    // Trailing whitespace in a prefix is not evidence: "billing " may still end as "billing".
    expect(prefixVerdict('billing', 'billing ', spec)).toBe('consistent');
    expect(prefixVerdict('billing', 'ref', spec)).toBe('ruled_out');
    expect(prefixVerdict('billing', 'billings', spec)).toBe('ruled_out');
    expect(prefixVerdict('Billing', 'bil', spec)).toBe('ruled_out');
    expect(prefixVerdict('Billing', 'bil', { tier: 1, caseInsensitive: true })).toBe('consistent');
    expect(prefixVerdict('two words', 'two   wo', spec)).toBe('consistent');
    // Fuzzy tiers never rule out on a prefix.
    expect(prefixVerdict('billing', 'ref', { tier: 2 })).toBe('consistent');
    // JSON: only the opening bracket is checked.
    expect(prefixVerdict('{"a":1}', '{"b"', spec)).toBe('consistent');
    expect(prefixVerdict('{"a":1}', '[1', spec)).toBe('ruled_out');
  });

  it('settledBy names the one label still consistent with the prefix', () => {
    const labels = ['billing', 'bug_report', 'refund', 'other'];
    expect(settledBy('', labels)).toBeUndefined();
    expect(settledBy('b', labels)).toBeUndefined();
    expect(settledBy('bi', labels)).toBe('billing');
    expect(settledBy('r', labels)).toBe('refund');
    expect(settledBy('x', labels)).toBeUndefined();
    expect(settledBy('R', labels)).toBeUndefined();
    expect(settledBy('R', labels, { caseInsensitive: true })).toBe('refund');
  });
});

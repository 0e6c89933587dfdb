import { describe, expect, it } from 'vitest';
import { NANO_PER_USD, nanoToUsd, usdToNano } from './money.js';
import { countTokens } from './tokens.js';

describe('M2 money units: integer nano-dollars', () => {
  it('converts dollars to rounded integer nano-dollars and back', () => {
    expect(NANO_PER_USD).toBe(1e9);
    expect(usdToNano(1)).toBe(1_000_000_000);
    expect(usdToNano(0.005625)).toBe(5_625_000);
    // 0.1 + 0.2 is 0.30000000000000004 in floats: rounding keeps ledgers integral.
    expect(usdToNano(0.1 + 0.2)).toBe(300_000_000);
    expect(usdToNano(1.4e-9)).toBe(1);
    expect(usdToNano(1.6e-9)).toBe(2);
    expect(Number.isInteger(usdToNano(0.123456789123))).toBe(true);
    expect(nanoToUsd(5_625_000)).toBeCloseTo(0.005625, 15);
    expect(() => usdToNano(Number.NaN)).toThrow(RangeError);
  });
});

describe('M2 N_in: real tokenizer (o200k_base)', () => {
  it('counts tokens of known strings', () => {
    expect(countTokens('')).toBe(0);
    expect(countTokens('hello world')).toBe(2);
    expect(countTokens('hello world, how are you?')).toBe(7);
    // Longer text has more tokens, roughly 4 characters per token for English.
    const text = 'The quick brown fox jumps over the lazy dog. '.repeat(20);
    const n = countTokens(text);
    expect(n).toBeGreaterThan(text.length / 6);
    expect(n).toBeLessThan(text.length / 3);
  });

  it('counts special-token text as ordinary text instead of throwing', () => {
    expect(countTokens('a <|endoftext|> b')).toBeGreaterThan(3);
  });
});

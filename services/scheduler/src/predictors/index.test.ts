import type { Edge } from '@gambit/shared';
import { describe, expect, it } from 'vitest';
import { type ClassHistory, type PredictContext, PredictorSet, requestHash } from './index.js';

const op = { kind: 'llm' as const, provider: 'simulated', model: 'm', prompt: 'classify this', maxTokens: 4, seed: 's' };
const hist = (counts: Record<string, number> = {}, memo: Record<string, string> = {}): ClassHistory => ({
  counts: new Map(Object.entries(counts)),
  memo: new Map(Object.entries(memo)),
  meanDownstreamOutputTokens: undefined,
});
const edge = (e: Partial<Edge>): Edge =>
  ({ from: 'u', to: 'd', type: 'router_k_way', k: 3, speculate: true, match: { tier: 1, caseInsensitive: false, threshold: 0.95, allowFuzzyForLlm: false }, ...e }) as Edge;
const ctx = (e: Partial<Edge>, h: ClassHistory): PredictContext => ({ edge: edge(e), classId: 'c', requestHash: requestHash(op), history: h, inputs: {}, upstreamOp: op });

describe('predictors (issue 3 item 3)', () => {
  const set = new PredictorSet();
  it('most_frequent: the most frequent past output, ties broken by value; fallback without history', () => {
    expect(set.predict(ctx({ predictor: { kind: 'most_frequent' } }, hist({ a: 2, b: 5, c: 1 })))?.value).toBe('b');
    expect(set.predict(ctx({ predictor: { kind: 'most_frequent' } }, hist({ z: 3, y: 3 })))?.value).toBe('y');
    expect(set.predict(ctx({ predictor: { kind: 'most_frequent', fallback: 'f' } }, hist()))?.value).toBe('f');
    expect(set.predict(ctx({ predictor: { kind: 'most_frequent' } }, hist()))).toBeUndefined();
  });
  it('memo: the output of an identical past request', () => {
    const h = hist({ other: 9 }, { [requestHash(op)]: 'cached' });
    expect(set.predict(ctx({ predictor: { kind: 'memo' } }, h))?.value).toBe('cached');
    expect(set.predict(ctx({ predictor: { kind: 'memo' } }, hist({}, { nope: 'x' })))).toBeUndefined();
    // lookup edges default to memo, then the most frequent output.
    expect(set.predict(ctx({ type: 'lookup' }, h))?.value).toBe('cached');
    expect(set.predict(ctx({ type: 'lookup' }, hist({ other: 9 })))?.value).toBe('other');
  });
  it('fixed, validation-gate default "pass", functions, and no llm guess', () => {
    expect(set.predict(ctx({ predictor: { kind: 'fixed', value: 'pass' } }, hist({ fail: 10 })))?.value).toBe('pass');
    expect(set.predict(ctx({ type: 'validation_gate' }, hist()))?.value).toBe('pass');
    expect(set.predict(ctx({ predictor: { kind: 'function', name: 'identity' } }, hist()))?.value).toBe('classify this');
    set.register('upper', (c) => (c.upstreamOp.kind === 'llm' ? c.upstreamOp.prompt.toUpperCase() : undefined));
    expect(set.predict(ctx({ predictor: { kind: 'function', name: 'upper' } }, hist()))).toEqual({ value: 'CLASSIFY THIS', costUsd: 0, predictor: 'function:upper' });
    expect(set.predict(ctx({ predictor: { kind: 'function', name: 'missing', fallback: 'fb' } }, hist()))?.value).toBe('fb');
    expect(set.predict(ctx({ predictor: { kind: 'llm', model: 'x' } }, hist({ a: 1 })))).toBeUndefined();
  });
  it('request hashes are stable and distinguish requests', () => {
    expect(requestHash(op)).toBe(requestHash({ ...op }));
    expect(requestHash(op)).not.toBe(requestHash({ ...op, prompt: 'other' }));
  });
});

import { describe, expect, it } from 'vitest';
import type { DecisionRecord } from '../schemas/records.js';
import { decodeDecision, encodeDecision } from './decision-codec.js';

const ctx = { tenant: 'acme', workflow: 'triage', runId: 'rmx13kiym97e434ea5e' };

const speculate: DecisionRecord = {
  decisionId: `${ctx.runId}:answer:runtime`,
  phase: 'runtime',
  ...ctx,
  node: 'answer',
  edgeClasses: ['acme/triage/route->answer', 'other/flow/x->answer'],
  action: 'SPECULATE',
  reason: 'ev',
  p: 0.12345678901234568,
  cSpecUsd: 0.000006449999999999999,
  cFailUsd: 2.85e-12,
  deltaTSec: 0.3106297912349906,
  lUsd: 3.1062979123499064,
  evUsd: -1.5531457311749532,
  thresholdUsd: 0,
  alpha: 1,
  lambdaUsdPerSec: 10,
  stage: 'online',
  posteriors: [{ a: 1, b: 1, mode: 'mean' }, { a: 3.5, b: 2, mode: 'lcb', quantile: 0.1 }],
  predictorUsd: 1e-9,
  atMs: 1796627028801,
};

describe('decision codec (issue 13 item 3)', () => {
  it('decodes what it encodes, every field exactly, and is far smaller than the object', () => {
    const text = encodeDecision(speculate);
    expect(decodeDecision(text, ctx)).toEqual(speculate);
    expect(text.length).toBeLessThan(JSON.stringify(speculate).length * 0.6);
    const wait: DecisionRecord = { ...speculate, decisionId: `${ctx.runId}:b:plan`, phase: 'plan', node: 'b', edgeClasses: ['acme/triage/a->b'], action: 'WAIT', reason: 'disabled', p: 0, cSpecUsd: 0, cFailUsd: 0, deltaTSec: 0, lUsd: 0, evUsd: 0, alpha: 0.5, lambdaUsdPerSec: 0.01, posteriors: [], predictorUsd: 0 };
    expect(decodeDecision(encodeDecision(wait), ctx)).toEqual(wait);
    expect(encodeDecision(wait).length).toBeLessThan(130);
  });

  it('a decision id or class not under the run keeps its full text; a stored object is read as it is', () => {
    const foreign = { ...speculate, decisionId: 'elsewhere:answer:runtime' };
    expect(decodeDecision(encodeDecision(foreign), ctx)).toEqual(foreign);
    expect(decodeDecision(JSON.stringify(speculate), ctx)).toEqual(speculate);
  });

  it('an entry of an unknown encoding or with an invalid field is an error', () => {
    expect(() => decodeDecision('[9,"x"]', ctx)).toThrow(/unknown encoding/);
    const bad = JSON.parse(encodeDecision(speculate)) as unknown[];
    bad[7] = 2; // p > 1
    expect(() => decodeDecision(JSON.stringify(bad), ctx)).toThrow();
  });
});

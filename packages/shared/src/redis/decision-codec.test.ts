import { describe, expect, it } from 'vitest';
import type { DecisionRecord } from '../schemas/records.js';
import { decodeDecision, encodeDecision } from './decision-codec.js';

const run = { createdAtMs: 1796627028000 };
const ctx = { tenant: 'acme', workflow: 'triage', runId: 'rmx13kiym97e434ea5e', ...run };

const speculate: DecisionRecord = {
  decisionId: `${ctx.runId}:answer:runtime`,
  phase: 'runtime',
  tenant: ctx.tenant,
  workflow: ctx.workflow,
  runId: ctx.runId,
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
    const text = encodeDecision(speculate, run);
    expect(decodeDecision(text, ctx)).toEqual(speculate);
    expect(text.length).toBeLessThan(JSON.stringify(speculate).length * 0.6);
    // atMs after the run's creation, the default decision id left out.
    expect(JSON.parse(text)).toEqual([3, 'answer', 'runtime', ['~route->answer', 'other/flow/x->answer'], 'SPECULATE', 'ev', 801, 1, 10, 'online', speculate.p, speculate.cSpecUsd, speculate.cFailUsd, speculate.deltaTSec, speculate.lUsd, speculate.evUsd, 0, speculate.posteriors, 1e-9]);
  });

  it('version 3: a plan-phase WAIT leaves out its zeros, its empty posteriors and its derived id', () => {
    const wait: DecisionRecord = { ...speculate, decisionId: `${ctx.runId}:b:plan`, phase: 'plan', node: 'b', edgeClasses: ['acme/triage/a->b'], action: 'WAIT', reason: 'disabled', p: 0, cSpecUsd: 0, cFailUsd: 0, deltaTSec: 0, lUsd: 0, evUsd: 0, alpha: 0.5, lambdaUsdPerSec: 0.01, posteriors: [], predictorUsd: 0, atMs: run.createdAtMs };
    const text = encodeDecision(wait, run);
    expect(text).toBe('[3,"b","plan",["~a->b"],"WAIT","disabled",0,0.5,0.01,"online"]');
    expect(decodeDecision(text, ctx)).toEqual(wait);
    // Zeros before a value that is not are kept (positions are fixed).
    const late = { ...wait, thresholdUsd: 0.5 };
    expect(JSON.parse(encodeDecision(late, run))).toEqual([3, 'b', 'plan', ['~a->b'], 'WAIT', 'disabled', 0, 0.5, 0.01, 'online', 0, 0, 0, 0, 0, 0, 0.5]);
    expect(decodeDecision(encodeDecision(late, run), ctx)).toEqual(late);
    // A decision id of its own (a claim that is not the phase) is kept, and with it every value before it.
    const claimed = { ...wait, decisionId: `${ctx.runId}:b:g-a` };
    expect(JSON.parse(encodeDecision(claimed, run)).at(-1)).toBe('~b:g-a');
    expect(decodeDecision(encodeDecision(claimed, run), ctx)).toEqual(claimed);
    // A decision made before the run's recorded creation (another scheduler's clock) round-trips too.
    const early = { ...wait, atMs: run.createdAtMs - 3 };
    expect(decodeDecision(encodeDecision(early, run), ctx)).toEqual(early);
  });

  it('a decision id or class not under the run keeps its full text; version 2 and a stored object are read as they are', () => {
    const foreign = { ...speculate, decisionId: 'elsewhere:answer:runtime' };
    expect(decodeDecision(encodeDecision(foreign, run), ctx)).toEqual(foreign);
    expect(decodeDecision(JSON.stringify(speculate), ctx)).toEqual(speculate);
    // Version 2 (written before): absolute atMs, the id first.
    const v2 = JSON.stringify([2, '~answer:runtime', 'runtime', 'answer', ['~route->answer', 'other/flow/x->answer'], 'SPECULATE', 'ev', speculate.p, speculate.cSpecUsd, speculate.cFailUsd, speculate.deltaTSec, speculate.lUsd, speculate.evUsd, 0, 1, 10, 'online', speculate.posteriors, 1e-9, speculate.atMs]);
    expect(decodeDecision(v2, ctx)).toEqual(speculate);
    expect(decodeDecision('[2,"~b:plan","plan","b",["~a->b"],"WAIT","disabled",0,0,0,0,0,0,0,0.5,0.01,"online",[],0,1796687428630]', ctx)).toMatchObject({ decisionId: `${ctx.runId}:b:plan`, atMs: 1796687428630, edgeClasses: ['acme/triage/a->b'] });
  });

  it('an entry of an unknown encoding or with an invalid field is an error', () => {
    expect(() => decodeDecision('[9,"x"]', ctx)).toThrow(/unknown encoding/);
    expect(() => decodeDecision('[3,"b","plan"]', ctx)).toThrow(/unknown encoding/);
    const bad = JSON.parse(encodeDecision(speculate, run)) as unknown[];
    bad[10] = 2; // p > 1
    expect(() => decodeDecision(JSON.stringify(bad), ctx)).toThrow();
  });
});

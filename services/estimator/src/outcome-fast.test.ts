/**
 * outcomeFast against OutcomeSchema: it accepts nothing the schema rejects and returns what the
 * schema returns; on valid outcomes of every shape it accepts (so the fast path is taken).
 */
import { DECISION_REASONS, mulberry32, OUTCOME_KINDS, OutcomeSchema } from '@gambit/shared';
import { describe, expect, it } from 'vitest';
import { outcomeFast } from './outcome-fast.js';

const rnd = mulberry32(13);
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)] as T;

function valid(i: number): Record<string, unknown> {
  const o: Record<string, unknown> = {
    outcomeId: `o${i}`, decisionId: `d${i}`, tenant: pick(['t1', '', 'acme']), workflow: 'w', runId: `r${i}`, edgeClass: `t1/w/a->b${i % 7}`,
    kind: pick(OUTCOME_KINDS), wasteUsd: pick([0, 0.0015, 3]), secondsSaved: pick([0, 1.25]), atMs: 1_700_000_000_000 + i,
  };
  if (rnd() < 0.5) o.fencingViolation = rnd() < 0.5;
  if (rnd() < 0.3) o.waitReason = pick(DECISION_REASONS);
  if (rnd() < 0.3) o.guessUsd = pick([0, 0.002]);
  // M5: a launched speculation's outcome may carry no evidence (a stream-settled upstream).
  if (rnd() < 0.3) o.evidence = o.kind === 'hit' || o.kind === 'miss' || o.kind === 'cancelled' ? rnd() >= 0.7 : true;
  if (rnd() < 0.2) o.extra = 'ignored';
  return o;
}

const BAD_VALUES: unknown[] = [undefined, null, '', 'x', -1, -0.5, 0, 1.5, 2 ** 60, Number.NaN, true, false, [], {}, 'hit', 'no_such'];
const FIELDS = ['outcomeId', 'decisionId', 'tenant', 'workflow', 'runId', 'edgeClass', 'kind', 'waitReason', 'wasteUsd', 'guessUsd', 'secondsSaved', 'fencingViolation', 'evidence', 'atMs'];

describe('outcomeFast (issue 13 item 2: the estimator validates outcomes without zod on the hot path)', () => {
  it('accepts every valid outcome and returns exactly what OutcomeSchema returns', () => {
    for (let i = 0; i < 2000; i++) {
      const o = valid(i);
      const z = OutcomeSchema.safeParse(o);
      expect(z.success).toBe(true);
      expect(outcomeFast(o)).toEqual(z.data);
    }
  });

  it('never accepts what OutcomeSchema rejects (every field replaced by wrong values, whole values of the wrong type)', () => {
    let rejected = 0;
    for (let i = 0; i < 400; i++) {
      for (const f of FIELDS) {
        for (const v of BAD_VALUES) {
          const o = { ...valid(i) };
          if (v === undefined) delete o[f];
          else o[f] = v;
          const z = OutcomeSchema.safeParse(o);
          const fast = outcomeFast(o);
          if (!z.success) {
            rejected++;
            expect(fast, `${f} = ${String(v)}`).toBeUndefined();
          } else if (fast !== undefined) {
            expect(fast).toEqual(z.data);
          }
        }
      }
    }
    expect(rejected).toBeGreaterThan(10_000);
    for (const v of [null, [], 'str', 5, true]) expect(outcomeFast(v)).toBeUndefined();
  });

  it('M5: a shadow outcome that says it is no evidence is refused by both, naming the field', () => {
    for (const kind of ['shadow_hit', 'shadow_miss']) {
      const o = { ...valid(0), kind, evidence: false };
      expect(outcomeFast(o)).toBeUndefined();
      const z = OutcomeSchema.safeParse(o);
      expect(z.success).toBe(false);
      expect(z.error?.issues.map((i) => i.path.join('.'))).toEqual(['evidence']);
    }
    for (const kind of ['hit', 'miss', 'cancelled']) expect(outcomeFast({ ...valid(0), kind, evidence: false })).toMatchObject({ kind, evidence: false });
  });
});

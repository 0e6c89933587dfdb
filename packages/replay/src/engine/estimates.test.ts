/**
 * M4 estimates by operation class: a tool position that runs several kinds of tool gets each
 * tool's own duration, not the position's mix; what is learned is shared across workflows of a
 * tenant and only from earlier runs; trace v2 names the class, v1 lines get a derived one.
 */
import { createPriceTable, Distribution } from '@gambit/shared';
import { describe, expect, it } from 'vitest';
import { opClass, type Run, RunSchema } from '../trace.js';
import { learnEstimates } from './estimates.js';
import { compileRun } from './model.js';

const prices = createPriceTable();

/** An agent step (llm) then one tool, at the same position `tool`, whose kind varies by run. */
function run(i: number, tool: string, toolMs: number, workflow = 'agent'): Run {
  return RunSchema.parse({
    v: 2,
    runId: `r${i}`,
    tenant: 't',
    workflow,
    startUnixMs: 1_000 * i,
    operations: [
      { id: 'think', kind: 'llm', 'gen_ai.provider.name': 'openai', 'gen_ai.request.model': 'gpt-4o', startMs: 0, durationMs: 800, 'gen_ai.usage.output_tokens': 40 },
      { id: 'tool', kind: 'tool', 'gen_ai.tool.name': tool, dependencies: ['think'], startMs: 800, durationMs: toolMs, effects: 'none' },
    ],
  });
}

describe('M4 replay estimates by operation class', () => {
  it('keeps two tools that alternate at one position apart (node-id estimates would mix them)', () => {
    const runs = Array.from({ length: 40 }, (_, i) => (i % 2 === 0 ? run(i, 'grep', 50) : run(i, 'run_tests', 30_000)));
    const est = learnEstimates(runs.map((r) => compileRun(r, { prices })), 'history');
    const last = est.get('r39')!.get('tool')!;
    expect(last.operationClass).toBe('tool:run_tests#-');
    expect(last.durationMs).toBe(30_000);
    expect(est.get('r38')!.get('tool')!.durationMs).toBe(50);
    // A distribution, not only a mean: 19 earlier run_tests calls.
    expect(last.durationDist.n).toBe(19);
    expect(Distribution.quantile(last.durationDist, 0.5)).toBeGreaterThan(25_000);
  });

  it('learns only from earlier runs, shared across the workflows of a tenant', () => {
    const runs = [run(0, 'grep', 100, 'a'), run(1, 'grep', 300, 'b'), run(2, 'grep', 999, 'a')];
    const est = learnEstimates(runs.map((r) => compileRun(r, { prices })), 'history');
    expect(est.get('r0')!.get('tool')!).toMatchObject({ durationMs: 100, durationDist: { n: 0 } }); // first sight: its own value
    expect(est.get('r1')!.get('tool')!.durationMs).toBe(100); // workflow b learns from workflow a
    expect(est.get('r2')!.get('tool')!.durationMs).toBe(200);
    const rec = learnEstimates(runs.map((r) => compileRun(r, { prices })), 'recorded');
    expect(rec.get('r2')!.get('tool')!.durationMs).toBe(999);
    // `population`: every decision sees the class's whole distribution (the calibrated yardstick).
    const pop = learnEstimates(runs.map((r) => compileRun(r, { prices })), 'population');
    for (const id of ['r0', 'r1', 'r2']) expect(pop.get(id)!.get('tool')!).toMatchObject({ durationMs: (100 + 300 + 999) / 3, durationDist: { n: 3 } });
  });

  it('trace v2 names the class; v1 lines get one from the model (with the op id) or the tool', () => {
    const r = run(0, 'grep', 10);
    expect(opClass(r.operations[0]!)).toBe('llm:openai/gpt-4o#think');
    expect(opClass(r.operations[1]!)).toBe('tool:grep#-');
    const named = RunSchema.parse({ ...r, operations: [{ ...r.operations[0]!, operationClass: 'llm:openai/gpt-4o#planner' }, r.operations[1]!] });
    expect(opClass(named.operations[0]!)).toBe('llm:openai/gpt-4o#planner');
    const bad = RunSchema.safeParse({ ...r, operations: [{ ...r.operations[0]!, operationClass: 'think node' }, r.operations[1]!] });
    expect(bad.success).toBe(false);
    expect(JSON.stringify(bad.error?.issues)).toContain('operationClass');
    expect(RunSchema.safeParse({ ...r, v: 1 }).success).toBe(true);
    expect(RunSchema.safeParse({ ...r, v: 4 }).success).toBe(false);
  });
});

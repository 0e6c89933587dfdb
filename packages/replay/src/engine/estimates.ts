/**
 * M2/M4 estimates a decision may use: what the scheduler would know when deciding, not what the
 * run later turned out to be. Per operation class (tenant, workflow, operation id) the running
 * means of duration and output tokens over the earlier runs (time order); an operation seen for
 * the first time falls back to its recorded values (as the live system falls back to the
 * node's declared estimate). `recorded` mode uses each run's own values (perfect estimates).
 * Also the slack of every node from the critical path over these estimates (M4).
 */
import { criticalPath } from '@gambit/shared';
import type { RunModel } from './model.js';

export type EstimateMode = 'history' | 'recorded';

export interface OpEstimate {
  readonly durationMs: number;
  readonly outputTokens: number;
  /** Static slack from the critical path over estimated durations (gaps included), ms. */
  readonly slackMs: number;
}

/** Estimates per run and operation: `estimates.get(runId).get(opId)`. */
export type Estimates = Map<string, Map<string, OpEstimate>>;

export function learnEstimates(models: readonly RunModel[], mode: EstimateMode): Estimates {
  const sums = new Map<string, { n: number; durationMs: number; outputTokens: number }>();
  const out: Estimates = new Map();
  for (const m of models) {
    const prefix = `${m.run.tenant}/${m.run.workflow}/`;
    const raw = m.ops.map((node) => {
      const s = mode === 'history' ? sums.get(prefix + node.op.id) : undefined;
      return s === undefined || s.n === 0
        ? { durationMs: node.durationMs, outputTokens: node.op['gen_ai.usage.output_tokens'] }
        : { durationMs: s.durationMs / s.n, outputTokens: s.outputTokens / s.n };
    });
    const cp = criticalPath({
      nodes: m.ops.map((node, i) => ({ id: node.op.id, durationMs: node.gapMs + raw[i]!.durationMs })),
      edges: m.ops.flatMap((node) => node.op.dependencies.map((d) => ({ from: d, to: node.op.id }))),
    });
    out.set(m.run.runId, new Map(m.ops.map((node, i) => [node.op.id, { ...raw[i]!, slackMs: cp.byNode.get(node.op.id)?.slackMs ?? 0 }])));
    // The run's own values count only for later runs: they are known once it has finished.
    for (const node of m.ops) {
      const key = prefix + node.op.id;
      const s = sums.get(key) ?? { n: 0, durationMs: 0, outputTokens: 0 };
      s.n++;
      s.durationMs += node.durationMs;
      s.outputTokens += node.op['gen_ai.usage.output_tokens'];
      sums.set(key, s);
    }
  }
  return out;
}

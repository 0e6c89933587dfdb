/**
 * M2/M4 estimates a decision may use: what the scheduler would know when deciding, not what the
 * run later turned out to be. Estimates belong to an operation class (M4: the kind of work, e.g.
 * provider and model plus prompt template, or the tool name; `opClass` in trace.ts), learned
 * across the earlier runs of the tenant in time order, as log-histogram distributions of the
 * duration and the output tokens (core/distribution.ts). Never by operation id alone: a position
 * that runs different kinds of work (an agent's tool step) must not mix them. A class seen for
 * the first time falls back to the operation's recorded values (as the live system falls back to
 * the node's declared estimate). `recorded` mode uses each run's own values (perfect estimates).
 * Also the slack of every node from the critical path over these estimates (M4).
 */
import { criticalPath, Distribution, EMPTY_HISTOGRAM, type LogHistogram } from '@gambit/shared';
import { opClass } from '../trace.js';
import type { RunModel } from './model.js';

export type EstimateMode = 'history' | 'population' | 'recorded';

export interface OpEstimate {
  /** The operation class the estimate was learned under. */
  readonly operationClass: string;
  /** Expected duration (the class's mean; the recorded value on first sight or in `recorded` mode). */
  readonly durationMs: number;
  readonly outputTokens: number;
  /**
   * The class's duration distribution over earlier runs (empty on first sight and in `recorded`
   * mode): for quantiles and the conditional remaining time E[T − t | T > t] (M4).
   */
  readonly durationDist: LogHistogram;
  /** Static slack from the critical path over estimated durations (gaps included), ms. */
  readonly slackMs: number;
}

/** Estimates per run and operation: `estimates.get(runId).get(opId)`. */
export type Estimates = Map<string, Map<string, OpEstimate>>;

/** Mutable per-class accumulators (snapshotted, at most once per run and class, for decisions). */
interface ClassStats {
  duration: { n: number; sum: number; bins: Record<number, number> };
  outputTokens: { n: number; sum: number };
}

function add(stats: Map<string, ClassStats>, key: string, durationMs: number, outputTokens: number): void {
  let s = stats.get(key);
  if (s === undefined) {
    s = { duration: { n: 0, sum: 0, bins: {} }, outputTokens: { n: 0, sum: 0 } };
    stats.set(key, s);
  }
  const i = Distribution.binOf(durationMs);
  s.duration.bins[i] = (s.duration.bins[i] ?? 0) + 1;
  s.duration.n++;
  s.duration.sum += durationMs;
  s.outputTokens.n++;
  s.outputTokens.sum += outputTokens;
}

export function learnEstimates(models: readonly RunModel[], mode: EstimateMode): Estimates {
  const byClass = new Map<string, ClassStats>();
  if (mode === 'population') {
    // Every run's values first: each decision then sees its class's whole distribution.
    for (const m of models) for (const node of m.ops) add(byClass, `${m.run.tenant}|${opClass(node.op)}`, node.durationMs, node.op['gen_ai.usage.output_tokens']);
  }
  const out: Estimates = new Map();
  const frozen = new Map<string, { durationMs: number; outputTokens: number; durationDist: LogHistogram }>();
  for (const m of models) {
    const key = (cls: string) => `${m.run.tenant}|${cls}`;
    // Within a run every decision sees the same earlier runs: one snapshot per class.
    if (mode === 'history') frozen.clear();
    const raw = m.ops.map((node) => {
      const cls = opClass(node.op);
      const s = mode === 'recorded' ? undefined : byClass.get(key(cls));
      if (s === undefined || s.duration.n === 0)
        return { operationClass: cls, durationMs: node.durationMs, outputTokens: node.op['gen_ai.usage.output_tokens'], durationDist: EMPTY_HISTOGRAM };
      let f = frozen.get(key(cls));
      if (f === undefined) {
        f = {
          durationMs: s.duration.sum / s.duration.n,
          outputTokens: s.outputTokens.sum / s.outputTokens.n,
          durationDist: { n: s.duration.n, sum: s.duration.sum, bins: { ...s.duration.bins } },
        };
        frozen.set(key(cls), f);
      }
      return { operationClass: cls, ...f };
    });
    const cp = criticalPath({
      nodes: m.ops.map((node, i) => ({ id: node.op.id, durationMs: node.gapMs + raw[i]!.durationMs })),
      edges: m.ops.flatMap((node) => node.op.dependencies.map((d) => ({ from: d, to: node.op.id }))),
    });
    out.set(m.run.runId, new Map(m.ops.map((node, i) => [node.op.id, { ...raw[i]!, slackMs: cp.byNode.get(node.op.id)?.slackMs ?? 0 }])));
    // The run's own values count only for later runs: they are known once it has finished.
    if (mode !== 'history') continue;
    for (const [i, node] of m.ops.entries()) add(byClass, key(raw[i]!.operationClass), node.durationMs, node.op['gen_ai.usage.output_tokens']);
  }
  return out;
}

/**
 * Archetype `planner-join` (the LLMCompiler shape): a planner (gpt-4o) writes a plan of n
 * parallel lookups, n web searches run in parallel, and a join (gpt-4o) answers from them.
 * n is drawn per run from the ParallelQA branch counts (SqueezeAILab/LLMCompiler @ a00c9d35,
 * MIT (c) 2023 Sehoon Kim; copied to data/llmcompiler): 2, 3, 4 or 5. Edges: plan → search_i
 * `tool_args` (the plan's search arguments: P = 0.5), search_i → join `lookup` (the result was
 * seen before: P = 0.7 each), so the join's joint P is 0.7^n (M1) and its miss is caught at the
 * first search that misses (M8 progressive validation). The live workflow has n = 4.
 */
import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import type { Rng } from '../stats.js';
import { type Archetype, type ArchetypeSpec, designedHitRates, generateRuns, liveWorkflow, type NodeSpec, type OpportunitySpec } from './spec.js';

let branches: number[] | undefined;

/** The `branch` of every ParallelQA question (113 values in 2..5). */
export function parallelQaBranches(): number[] {
  branches ??= (
    JSON.parse(gunzipSync(readFileSync(new URL('../../data/llmcompiler/parallelqa_dataset.json.gz', import.meta.url))).toString('utf8')) as Array<{
      branch: number;
    }>
  ).map((q) => q.branch);
  return branches;
}

export function plannerSpec(n: number): ArchetypeSpec {
  const searches: NodeSpec[] = Array.from({ length: n }, (_, i) => ({
    id: `search_${i + 1}`,
    kind: 'tool' as const,
    tool: 'web_search',
    deps: ['plan'],
    purpose: `Search step ${i + 1} of the plan.`,
    durationMedianMs: 700,
    effects: 'none' as const,
    outcomes: [
      { value: 'results:seen-before', weight: 0.7 },
      { value: 'results:new', weight: 0.3 },
    ],
  }));
  const opportunities: OpportunitySpec[] = searches.flatMap((s) => [
    { from: 'plan', to: s.id, type: 'tool_args' as const, predictor: 'most_frequent' as const },
    { from: s.id, to: 'join', type: 'lookup' as const, predictor: 'most_frequent' as const },
  ]);
  return {
    name: 'planner-join',
    nodes: [
      {
        id: 'plan',
        kind: 'llm',
        provider: 'openai',
        model: 'gpt-4o',
        deps: [],
        purpose: 'Plan the parallel searches needed to answer the question.',
        input: { from: 'azure_conv', side: 'input', max: 6000 },
        output: { uniform: [60, 220] },
        outcomes: [
          { value: 'plan:usual-searches', weight: 0.5 },
          { value: 'plan:other-searches', weight: 0.5 },
        ],
      },
      ...searches,
      {
        id: 'join',
        kind: 'llm',
        provider: 'openai',
        model: 'gpt-4o',
        deps: searches.map((s) => s.id),
        purpose: 'Answer the question from the search results.',
        input: { from: 'azure_conv', side: 'input', scale: 1 + n / 2, max: 20000 },
        output: { from: 'azure_conv', side: 'output', min: 20, max: 600 },
      },
    ],
    opportunities,
  };
}

const specs = new Map<number, ArchetypeSpec>();
function specOf(n: number): ArchetypeSpec {
  const cached = specs.get(n);
  if (cached !== undefined) return cached;
  const s = plannerSpec(n);
  specs.set(n, s);
  return s;
}

export const plannerJoin: Archetype = {
  name: 'planner-join',
  description: 'planner (gpt-4o), 2-5 parallel searches (ParallelQA branch counts), join (gpt-4o); M1 joint P and M8 progressive validation',
  designedHitRates: designedHitRates(plannerSpec(5)),
  generate: (opts) =>
    generateRuns(specOf(5), opts, (rng: Rng) => {
      const b = parallelQaBranches();
      return specOf(b[Math.floor(rng() * b.length)]!);
    }),
  workflow: (prices) => liveWorkflow(specOf(4), prices),
};

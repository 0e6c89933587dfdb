/** The eight workload archetypes (M11), by name. */
import { agentLoop } from './agent-loop.js';
import { autoReply } from './auto-reply.js';
import { codeAgent } from './code-agent.js';
import { extractionPipeline } from './extraction-pipeline.js';
import { plannerJoin } from './planner-join.js';
import { retrievalAnswer } from './retrieval-answer.js';
import { routerSpecialists } from './router-specialists.js';
import type { Archetype } from './spec.js';
import { validationGated } from './validation-gated.js';

export const ARCHETYPES: readonly Archetype[] = [
  autoReply,
  retrievalAnswer,
  agentLoop,
  plannerJoin,
  codeAgent,
  extractionPipeline,
  routerSpecialists,
  validationGated,
];

export function archetypeByName(name: string): Archetype | undefined {
  return ARCHETYPES.find((a) => a.name === name);
}

export type { Archetype, ArchetypeSpec, GenerateOptions, NodeSpec, Outcome, OpportunitySpec } from './spec.js';
export { generateRun, generateRuns, hitProbability, liveWorkflow, specArchetype, topOutcome } from './spec.js';
export { parallelQaBranches, plannerSpec } from './planner-join.js';
export { TAU_MAJORITY_HIT_RATE } from './agent-loop.js';
export { sampleTokens, medianTokens, tokenQuantiles, TOKEN_SOURCES, type TokenDist, type TokenSource } from './token-sizes.js';

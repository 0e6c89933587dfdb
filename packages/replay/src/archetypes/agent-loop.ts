/**
 * Archetype `agent-loop`: the tool-calling agent of the real tau-bench airline trajectories
 * (sierra-research/tau-bench @ 59a200c6, MIT (c) 2024 Sierra; see import/tau-bench.ts). Runs are
 * drawn with replacement (seeded) from the imported trajectories, so their shapes, tokens and
 * majority-vote hit rate (~40%) are the real ones. The live workflow is one unrolled step of
 * the loop: an agent turn (gpt-4o) whose tool call is guessed with the measured hit rate, a
 * read-only tool, and the next agent turn.
 */
import { mulberry32, seedFrom } from '../stats.js';
import { importTauBench, loadTauBenchData } from '../import/tau-bench.js';
import { RunSchema, type Run } from '../trace.js';
import { type Archetype, liveWorkflow } from './spec.js';

let imported: Run[] | undefined;
function tauRuns(): Run[] {
  imported ??= importTauBench(loadTauBenchData());
  return imported;
}

/** Measured on the data: the share of tool calls the majority vote guesses exactly (0.403). */
export const TAU_MAJORITY_HIT_RATE = 0.4;

export const agentLoop: Archetype = {
  name: 'agent-loop',
  description: 'tau-bench airline agent (gpt-4o) with real trajectories: tool_args edges guessed by majority vote (~40%)',
  designedHitRates: { 'agent->tool': TAU_MAJORITY_HIT_RATE },
  generate(opts) {
    const pool = tauRuns();
    const rng = mulberry32(seedFrom(`agent-loop:${opts.seed}`));
    const start = opts.startUnixMs ?? Date.UTC(2026, 10, 1);
    const spacing = opts.spacingMs ?? 120_000;
    return Array.from({ length: opts.runs }, (_, i) => {
      const src = pool[Math.floor(rng() * pool.length)]!;
      return RunSchema.parse({
        ...src,
        runId: `agent-loop-${opts.seed}-${i}-${src.runId}`,
        tenant: opts.tenant ?? 'bench',
        workflow: 'agent-loop',
        startUnixMs: start + i * spacing,
      });
    });
  },
  workflow: (prices) =>
    liveWorkflow(
      {
        name: 'agent-loop',
        nodes: [
          {
            id: 'agent',
            kind: 'llm',
            provider: 'openai',
            model: 'gpt-4o',
            deps: [],
            purpose: 'Airline agent turn: decide the next tool call.',
            input: { fixed: 3000 },
            output: { fixed: 40 },
            // The majority call with the measured rate; the rest spread over six other calls, so the
            // majority call stays the heaviest outcome (the one the predictor guesses).
            outcomes: [
              { value: '{"name":"get_reservation_details","arguments":{"reservation_id":"usual"}}', weight: TAU_MAJORITY_HIT_RATE },
              ...Array.from({ length: 6 }, (_, i) => ({ value: `{"name":"other_call_${i}"}`, weight: (1 - TAU_MAJORITY_HIT_RATE) / 6 })),
            ],
          },
          { id: 'tool', kind: 'tool', tool: 'get_reservation_details', deps: ['agent'], purpose: 'Read-only airline tool.', durationMedianMs: 200, effects: 'none' },
          {
            id: 'respond',
            kind: 'llm',
            provider: 'openai',
            model: 'gpt-4o',
            deps: ['tool', 'agent'],
            purpose: 'Next agent turn, with the tool result.',
            input: { fixed: 3300 },
            output: { fixed: 60 },
          },
        ],
        opportunities: [{ from: 'agent', to: 'tool', type: 'tool_args', predictor: 'most_frequent' }],
      },
      prices,
    ),
};


/** Workflow definitions of the end-to-end suite (simulated provider, fixed latencies). */

export const MODEL = 'gpt-4o-mini';

export function llm(id: string, prompt: string, sim: { output?: string; outcomes?: Array<{ value: string; weight: number }>; ttftMs: number; tokensPerSec?: number }, extra: Record<string, unknown> = {}) {
  return {
    id,
    kind: 'llm',
    provider: 'simulated',
    model: MODEL,
    prompt,
    expectedOutputTokens: 20,
    maxTokens: 64,
    simulate: { tokensPerSec: 100, ...sim },
    ...extra,
  };
}

/**
 * M1/M4: a router (A) in front of an expensive LLM (B). The router really answers `actual`; the
 * edge's fixed predictor guesses `guess`. B's prompt embeds A's output, so a wrong guess renders
 * a different prompt.
 */
export function routerChain(name: string, actual: string, guess: string, opts: { routerTtftMs?: number; downTtftMs?: number } = {}) {
  return {
    name,
    nodes: [
      llm('route', 'Classify: {{inputs.q}}', { output: actual, ttftMs: opts.routerTtftMs ?? 700 }, { expectedOutputTokens: 2, maxTokens: 8 }),
      llm('answer', 'Answer the {{nodes.route.output}} question: {{inputs.q}}', { output: `answer for ${actual}`, ttftMs: opts.downTtftMs ?? 700 }, { expectedOutputTokens: 8, maxTokens: 32 }),
    ],
    edges: [{ from: 'route', to: 'answer', type: 'router_k_way', k: 2, predictor: { kind: 'fixed', value: guess } }],
  };
}

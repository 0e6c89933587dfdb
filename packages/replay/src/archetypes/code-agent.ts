/**
 * Archetype `code-agent`: edit (a code model writes a patch), test (the test suite runs, ~2.5 s),
 * fix (the model reacts to the test result: a fix on failure, a summary on success). The fix step
 * is speculated on "tests pass" (validation_gate, P(hit) = 0.6). Prompt and patch sizes from the
 * Azure code trace (its outputs are completions, scaled ×10 for whole patches).
 */
import { type Archetype, specArchetype } from './spec.js';

export const codeAgent: Archetype = specArchetype(
  {
    name: 'code-agent',
    nodes: [
      {
        id: 'edit',
        kind: 'llm',
        provider: 'anthropic',
        model: 'claude-sonnet-4-5',
        deps: [],
        purpose: 'Write a patch for the issue.',
        input: { from: 'azure_code', side: 'input', max: 30000 },
        output: { from: 'azure_code', side: 'output', scale: 10, min: 40, max: 2000 },
        cachedShare: 0.5,
      },
      {
        id: 'test',
        kind: 'tool',
        tool: 'run_tests',
        deps: ['edit'],
        purpose: 'Run the test suite on the patched tree; output pass or fail.',
        durationMedianMs: 2500,
        effects: 'idempotent',
        outcomes: [
          { value: 'pass', weight: 0.6 },
          { value: 'fail', weight: 0.4 },
        ],
      },
      {
        id: 'fix',
        kind: 'llm',
        provider: 'anthropic',
        model: 'claude-sonnet-4-5',
        deps: ['test', 'edit'],
        purpose: 'If the tests failed, fix the patch; if they passed, write the change summary.',
        input: { from: 'azure_code', side: 'input', max: 30000 },
        output: { from: 'azure_code', side: 'output', scale: 10, min: 40, max: 2000 },
        cachedShare: 0.5,
      },
    ],
    opportunities: [{ from: 'test', to: 'fix', type: 'validation_gate', predictor: 'fixed' }],
  },
  'edit (claude-sonnet-4-5), run tests (2.5 s), fix or summarise; fix speculated on "tests pass"',
);

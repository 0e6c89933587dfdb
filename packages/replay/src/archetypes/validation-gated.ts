/**
 * Archetype `validation-gated`: generate a long answer (gpt-4o), check it with a judge model
 * ("pass" with P = 0.85), then format and publish it (staged). Edges: generate → check is
 * `free_text` (guessing the generated text: P = 0.02, where the rule should refuse), check →
 * publish is a `validation_gate` predicted "pass". Sizes from the Azure conversation trace.
 */
import { type Archetype, type Outcome, specArchetype } from './spec.js';

const FREE_TEXT_OUTCOMES: Outcome[] = Array.from({ length: 50 }, (_, i) => ({ value: `text:answer-${i}`, weight: 0.02 }));

export const validationGated: Archetype = specArchetype(
  {
    name: 'validation-gated',
    nodes: [
      {
        id: 'generate',
        kind: 'llm',
        provider: 'openai',
        model: 'gpt-4o',
        deps: [],
        purpose: 'Write the answer.',
        input: { from: 'azure_conv', side: 'input', max: 8000 },
        output: { from: 'azure_conv', side: 'output', scale: 2, min: 50, max: 1500 },
        // Open-ended text: 50 equally likely answers, so any guess matches with P = 0.02.
        outcomes: FREE_TEXT_OUTCOMES,
      },
      {
        id: 'check',
        kind: 'llm',
        provider: 'openai',
        model: 'gpt-4o-mini',
        deps: ['generate'],
        purpose: 'Does the answer follow the policy? Answer pass or fail.',
        input: { from: 'azure_conv', side: 'input', max: 8000 },
        output: { uniform: [1, 3] },
        outcomes: [
          { value: 'pass', weight: 0.85 },
          { value: 'fail', weight: 0.15 },
        ],
      },
      {
        id: 'publish',
        kind: 'llm',
        provider: 'openai',
        model: 'gpt-4o-mini',
        deps: ['check', 'generate'],
        purpose: 'Format the checked answer for publication.',
        input: { uniform: [300, 1800] },
        output: { from: 'azure_conv', side: 'output', min: 30, max: 800 },
        effects: 'staged',
      },
    ],
    opportunities: [
      { from: 'generate', to: 'check', type: 'free_text', predictor: 'most_frequent' },
      { from: 'check', to: 'publish', type: 'validation_gate', predictor: 'fixed' },
    ],
  },
  'generate (gpt-4o), judge (gpt-4o-mini), staged publish; a free_text edge the rule should refuse and a gate it should take',
);

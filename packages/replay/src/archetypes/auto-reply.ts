/**
 * Archetype `auto-reply` (the paper's AutoReply): a cheap classifier labels an incoming message
 * with one of four intents, then a larger model drafts the reply for that intent. The draft is
 * speculated on the most frequent label (router_k_way, k = 4; P(hit) = 0.75). Token sizes from
 * the Azure conversation trace.
 */
import { type Archetype, specArchetype } from './spec.js';

export const autoReply: Archetype = specArchetype(
  {
    name: 'auto-reply',
    nodes: [
      {
        id: 'classify',
        kind: 'llm',
        provider: 'openai',
        model: 'gpt-4o-mini',
        deps: [],
        purpose: 'Classify the customer message as billing, shipping, returns or other. Answer with the label only.',
        input: { from: 'azure_conv', side: 'input', max: 8000 },
        output: { uniform: [1, 3] },
        outcomes: [
          { value: 'billing', weight: 0.75 },
          { value: 'shipping', weight: 0.15 },
          { value: 'returns', weight: 0.07 },
          { value: 'other', weight: 0.03 },
        ],
      },
      {
        id: 'draft',
        kind: 'llm',
        provider: 'openai',
        model: 'gpt-4o',
        deps: ['classify'],
        purpose: 'Draft a reply to the customer for this intent.',
        input: { from: 'azure_conv', side: 'input', max: 8000 },
        output: { from: 'azure_conv', side: 'output', min: 20, max: 800 },
      },
    ],
    opportunities: [{ from: 'classify', to: 'draft', type: 'router_k_way', k: 4, predictor: 'most_frequent' }],
  },
  'classify (gpt-4o-mini, 4 labels) then draft (gpt-4o); draft speculated on the most frequent label',
);

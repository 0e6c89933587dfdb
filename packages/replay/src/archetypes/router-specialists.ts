/**
 * Archetype `router-specialists`: a cheap router sends the request to one of five specialist
 * prompts; the specialist (claude-sonnet-4-5) answers. The specialist is speculated on the most
 * frequent route (router_k_way, k = 5; P(hit) = 0.5). Sizes from the Azure conversation trace.
 */
import { type Archetype, specArchetype } from './spec.js';

export const routerSpecialists: Archetype = specArchetype(
  {
    name: 'router-specialists',
    nodes: [
      {
        id: 'route',
        kind: 'llm',
        provider: 'openai',
        model: 'gpt-4o-mini',
        deps: [],
        purpose: 'Route the request to one of: account, technical, sales, legal, other. Answer with the route only.',
        input: { from: 'azure_conv', side: 'input', max: 8000 },
        output: { uniform: [1, 3] },
        outcomes: [
          { value: 'technical', weight: 0.5 },
          { value: 'account', weight: 0.2 },
          { value: 'sales', weight: 0.15 },
          { value: 'legal', weight: 0.1 },
          { value: 'other', weight: 0.05 },
        ],
      },
      {
        id: 'specialist',
        kind: 'llm',
        provider: 'anthropic',
        model: 'claude-sonnet-4-5',
        deps: ['route'],
        purpose: 'Answer the request with the specialist prompt for this route.',
        input: { from: 'azure_conv', side: 'input', max: 8000 },
        output: { from: 'azure_conv', side: 'output', scale: 2, min: 30, max: 1500 },
      },
    ],
    opportunities: [{ from: 'route', to: 'specialist', type: 'router_k_way', k: 5, predictor: 'most_frequent' }],
  },
  'router (gpt-4o-mini, 5 routes) then a specialist (claude-sonnet-4-5) speculated on the top route',
);

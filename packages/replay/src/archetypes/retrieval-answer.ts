/**
 * Archetype `retrieval-answer`: a vector search, an LLM rerank of the hits, then a long-context
 * answer. Edges: search → rerank is a `lookup` (the same query was seen before: P(hit) = 0.6);
 * rerank → answer is a `structured_extract` (the ranked id list: P(hit) = 0.55). Prompt sizes
 * of the answer from the Mooncake conversation trace, with its 37% repeated-prefix share as the
 * prompt-cache share; the answer's output from the Azure conversation trace.
 */
import { type Archetype, specArchetype } from './spec.js';

export const retrievalAnswer: Archetype = specArchetype(
  {
    name: 'retrieval-answer',
    nodes: [
      {
        id: 'retrieve',
        kind: 'tool',
        tool: 'vector_search',
        deps: [],
        purpose: 'Top-20 passages for the question.',
        durationMedianMs: 250,
        effects: 'none',
        outcomes: [
          { value: 'hits:cached-set', weight: 0.6 },
          { value: 'hits:new-set', weight: 0.4 },
        ],
      },
      {
        id: 'rerank',
        kind: 'llm',
        provider: 'openai',
        model: 'gpt-4o-mini',
        deps: ['retrieve'],
        purpose: 'Rank the passages by relevance; answer with the ids of the best five.',
        input: { from: 'mooncake_conv', side: 'input', scale: 0.5, max: 30000 },
        output: { uniform: [15, 40] },
        outcomes: [
          { value: 'ids:[3,1,7,2,9]', weight: 0.55 },
          { value: 'ids:other-order', weight: 0.45 },
        ],
      },
      {
        id: 'answer',
        kind: 'llm',
        provider: 'openai',
        model: 'gpt-4o',
        deps: ['rerank'],
        purpose: 'Answer the question from the selected passages, citing them.',
        input: { from: 'mooncake_conv', side: 'input', max: 60000 },
        cachedShare: 0.37,
        output: { from: 'azure_conv', side: 'output', min: 30, max: 1000 },
      },
    ],
    opportunities: [
      { from: 'retrieve', to: 'rerank', type: 'lookup', predictor: 'most_frequent' },
      { from: 'rerank', to: 'answer', type: 'structured_extract', predictor: 'most_frequent' },
    ],
  },
  'vector search, rerank (gpt-4o-mini), long-context answer (gpt-4o); lookup and structured_extract edges',
);

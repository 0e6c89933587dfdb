/**
 * Archetype `extraction-pipeline`: parse a document (tool), extract fields into a schema
 * (gpt-4o-mini), then in parallel validate the record (a judge model, "valid" with P = 0.85) and
 * summarise it (gpt-4o); a staged store writes the record after validation. Edges: parse →
 * extract `passthrough` (P = 0.95), extract → validate and extract → summarize
 * `structured_extract` (P = 0.55), validate → store `validation_gate` (P = 0.85). Document sizes
 * from the Mooncake conversation trace.
 */
import { type Archetype, specArchetype } from './spec.js';

const extracted = [
  { value: '{"vendor":"known","total":"matches-po"}', weight: 0.55 },
  { value: '{"vendor":"other"}', weight: 0.45 },
];

export const extractionPipeline: Archetype = specArchetype(
  {
    name: 'extraction-pipeline',
    nodes: [
      {
        id: 'parse',
        kind: 'tool',
        tool: 'parse_document',
        deps: [],
        purpose: 'Extract the text of the uploaded document.',
        durationMedianMs: 400,
        effects: 'none',
        outcomes: [
          { value: 'text:template-invoice', weight: 0.95 },
          { value: 'text:unusual-layout', weight: 0.05 },
        ],
      },
      {
        id: 'extract',
        kind: 'llm',
        provider: 'openai',
        model: 'gpt-4o-mini',
        deps: ['parse'],
        purpose: 'Extract vendor, date, total and line items as JSON.',
        input: { from: 'mooncake_conv', side: 'input', scale: 0.5, max: 30000 },
        output: { uniform: [80, 300] },
        outcomes: extracted,
      },
      {
        id: 'validate',
        kind: 'llm',
        provider: 'openai',
        model: 'gpt-4o-mini',
        deps: ['extract'],
        purpose: 'Check the record against the purchase order. Answer valid or invalid.',
        input: { uniform: [600, 1500] },
        output: { uniform: [1, 3] },
        outcomes: [
          { value: 'valid', weight: 0.85 },
          { value: 'invalid', weight: 0.15 },
        ],
      },
      {
        id: 'summarize',
        kind: 'llm',
        provider: 'openai',
        model: 'gpt-4o',
        deps: ['extract'],
        purpose: 'Summarise the record for the approver.',
        input: { uniform: [600, 1500] },
        output: { from: 'azure_conv', side: 'output', min: 30, max: 500 },
      },
      {
        id: 'store',
        kind: 'tool',
        tool: 'store_record',
        deps: ['validate', 'summarize'],
        purpose: 'Write the validated record and its summary.',
        durationMedianMs: 150,
        effects: 'staged',
      },
    ],
    opportunities: [
      { from: 'parse', to: 'extract', type: 'passthrough', predictor: 'most_frequent' },
      { from: 'extract', to: 'validate', type: 'structured_extract', predictor: 'most_frequent' },
      { from: 'extract', to: 'summarize', type: 'structured_extract', predictor: 'most_frequent' },
      { from: 'validate', to: 'store', type: 'validation_gate', predictor: 'fixed' },
    ],
  },
  'parse, extract (gpt-4o-mini), validate ∥ summarize, staged store; passthrough, structured_extract and gate edges',
);

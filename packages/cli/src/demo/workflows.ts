/**
 * The demo's workflows: one per kind of predictable edge (METHOD.md M5, M11), each valid under
 * `parseWorkflow`. With the simulated provider, `simulate` draws each upstream's output from a
 * weighted distribution seeded per run, so hit rates are known; with a real provider the same
 * prompts are sent as they are.
 */
import type { Workflow } from '@gambit/shared';

export interface DemoWorkflow {
  readonly workflow: Workflow;
  readonly description: string;
  /** Inputs for run i. */
  inputs(i: number): Record<string, string>;
}

const MESSAGES = [
  'I was charged twice for my subscription this month.',
  'My invoice shows the wrong VAT number.',
  'The app crashes when I upload a photo.',
  'Can you refund the duplicate payment from Tuesday?',
  'How do I change the card on file?',
  'I cannot log in after resetting my password.',
];

export function demoWorkflows(provider: string): DemoWorkflow[] {
  const llm = (id: string, model: string, prompt: string, expectedOutputTokens: number, simulate?: Record<string, unknown>) => ({
    id,
    kind: 'llm' as const,
    provider,
    model,
    prompt,
    expectedOutputTokens,
    maxTokens: expectedOutputTokens * 4,
    effects: 'none' as const,
    discloses: false,
    ...(simulate !== undefined ? { simulate } : {}),
  });
  return [
    {
      description: 'router_k_way: classify a support message (4 routes), then draft the reply',
      inputs: (i) => ({ message: MESSAGES[i % MESSAGES.length] as string }),
      workflow: {
        name: 'auto-reply',
        version: 1,
        nodes: [
          llm(
            'classify',
            'gpt-5-mini',
            'Classify this customer message into exactly one of: billing, technical, account, other. Answer with the label only.\n\nMessage: {{inputs.message}}',
            4,
            {
              outcomes: [
                { value: 'billing', weight: 0.85 },
                { value: 'technical', weight: 0.07 },
                { value: 'account', weight: 0.05 },
                { value: 'other', weight: 0.03 },
              ],
              ttftMs: 1800,
              tokensPerSec: 8,
            },
          ),
          llm(
            'draft',
            'gpt-5-mini',
            'You are a support agent for the {{nodes.classify.output}} team. Draft a short, friendly reply to: {{inputs.message}}',
            160,
          ),
        ],
        edges: [
          {
            from: 'classify',
            to: 'draft',
            type: 'router_k_way',
            k: 4,
            predictor: { kind: 'most_frequent', fallback: 'billing' },
            match: { tier: 1, caseInsensitive: true, threshold: 0.95, allowFuzzyForLlm: false },
            speculate: true,
          },
        ],
      },
    },
    {
      description: 'validation_gate: write, check (predicted "pass"), polish the approved text, stage the send',
      inputs: (i) => ({ topic: `order #${1000 + i} shipping update` }),
      workflow: {
        name: 'gated-send',
        version: 1,
        nodes: [
          llm('write', 'gpt-5-mini', 'Write a two-sentence customer notification about: {{inputs.topic}}', 60),
          llm(
            'check',
            'gpt-5',
            'Does this notification follow the style policy (polite, no promises of dates)? Answer pass or fail.\n\n{{nodes.write.output}}',
            2,
            {
              outcomes: [
                { value: 'pass', weight: 0.9 },
                { value: 'fail', weight: 0.1 },
              ],
              ttftMs: 2500,
              tokensPerSec: 10,
            },
          ),
          llm(
            'polish',
            'gpt-5-mini',
            'The policy check said "{{nodes.check.output}}". Rewrite the notification accordingly, in the brand voice:\n\n{{nodes.write.output}}',
            120,
          ),
          {
            id: 'send',
            kind: 'tool' as const,
            tool: 'send_message',
            args: { to: 'customer@example.com', body: '{{nodes.polish.output}}' },
            effects: 'staged' as const,
            discloses: false,
            priceUsd: 0.0001,
            expectedDurationMs: 300,
          },
        ],
        edges: [
          { from: 'write', to: 'check', type: 'free_text', speculate: false, match: { tier: 1, caseInsensitive: false, threshold: 0.95, allowFuzzyForLlm: false } },
          { from: 'write', to: 'polish', type: 'passthrough', speculate: false, match: { tier: 1, caseInsensitive: false, threshold: 0.95, allowFuzzyForLlm: false } },
          {
            from: 'check',
            to: 'polish',
            type: 'validation_gate',
            predictor: { kind: 'fixed', value: 'pass' },
            match: { tier: 1, caseInsensitive: true, threshold: 0.95, allowFuzzyForLlm: false },
            speculate: true,
          },
          { from: 'polish', to: 'send', type: 'free_text', speculate: false, match: { tier: 1, caseInsensitive: false, threshold: 0.95, allowFuzzyForLlm: false } },
        ],
      },
    },
    {
      description: 'structured_extract: extract fields, then an irreversible charge (never speculated)',
      inputs: (i) => ({ text: `Customer 42 asks for a refund of ${10 + i} EUR on order ${900 + i}.` }),
      workflow: {
        name: 'extract-charge',
        version: 1,
        nodes: [
          llm('extract', 'gpt-5-nano', 'Extract {"action": ..., "currency": ...} as JSON from: {{inputs.text}}', 20, {
            outcomes: [
              { value: '{"action":"refund","currency":"EUR"}', weight: 0.7 },
              { value: '{"action":"refund","currency":"USD"}', weight: 0.3 },
            ],
            ttftMs: 800,
            tokensPerSec: 20,
          }),
          {
            id: 'charge',
            kind: 'tool' as const,
            tool: 'charge_card',
            args: { customer: '42', amountCents: 1500, request: '{{nodes.extract.output}}' },
            effects: 'irreversible' as const,
            discloses: false,
            priceUsd: 0.0002,
            expectedDurationMs: 200,
          },
        ],
        edges: [
          {
            from: 'extract',
            to: 'charge',
            type: 'structured_extract',
            predictor: { kind: 'most_frequent', fallback: '{"action":"refund","currency":"EUR"}' },
            match: { tier: 1, caseInsensitive: false, threshold: 0.95, allowFuzzyForLlm: false },
            speculate: true,
          },
        ],
      },
    },
    {
      description: 'free_text: summarise, then translate the summary (hard to guess: the rule waits)',
      inputs: (i) => ({ doc: `Quarterly report ${i}: revenue grew, churn fell, two new regions launched.` }),
      workflow: {
        name: 'summarise-translate',
        version: 1,
        nodes: [
          llm('summarise', 'gpt-5-mini', 'Summarise in one sentence: {{inputs.doc}}', 40),
          llm('translate', 'gpt-5', 'Translate into French, keeping the register of a financial report: {{nodes.summarise.output}}', 200),
        ],
        edges: [
          {
            from: 'summarise',
            to: 'translate',
            type: 'free_text',
            predictor: { kind: 'most_frequent', fallback: 'Revenue grew, churn fell and two regions launched.' },
            match: { tier: 1, caseInsensitive: false, threshold: 0.95, allowFuzzyForLlm: false },
            speculate: true,
          },
        ],
      },
    },
  ];
}

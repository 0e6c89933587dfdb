import { describe, expect, it } from 'vitest';
import { createPriceTable } from '../core/pricing.js';
import { ValidationError } from '../errors.js';
import { edgeClassId, findCycle, parseWorkflow, templateRefs, topoOrder } from './workflow.js';

function wf(over: Record<string, unknown> = {}) {
  return {
    name: 'support',
    nodes: [
      { id: 'classify', kind: 'llm', provider: 'openai', model: 'gpt-5-nano', prompt: 'Classify: {{inputs.message}}', expectedOutputTokens: 5, maxTokens: 10 },
      {
        id: 'reply',
        kind: 'llm',
        provider: 'anthropic',
        model: 'claude-sonnet-4-5',
        prompt: 'Reply to a {{nodes.classify.output}} question: {{inputs.message}}',
        expectedOutputTokens: 300,
        maxTokens: 600,
      },
      { id: 'lookup', kind: 'tool', tool: 'crm.lookup', args: { id: '{{inputs.customer}}' }, effects: 'none' },
    ],
    edges: [{ from: 'classify', to: 'reply', type: 'router_k_way', k: 4 }],
    ...over,
  };
}

function issues(input: unknown, opts = {}): Array<{ path: string; message: string }> {
  try {
    parseWorkflow(input, opts);
  } catch (err) {
    expect(err).toBeInstanceOf(ValidationError);
    return [...(err as ValidationError).issues];
  }
  throw new Error('expected a ValidationError');
}

function paths(input: unknown, opts = {}): string[] {
  return issues(input, opts).map((i) => i.path);
}

describe('M0/M1 workflow definition: shape and semantics', () => {
  it('parses a valid workflow and fills the defaults (effects, match tier 1, speculate)', () => {
    const w = parseWorkflow(wf(), { priceTable: createPriceTable() });
    expect(w.version).toBe(1);
    expect(w.nodes[0]).toMatchObject({ effects: 'none', discloses: false });
    expect(w.nodes[2]).toMatchObject({ effects: 'none', priceUsd: 0, expectedDurationMs: 100 });
    expect(w.edges[0]).toMatchObject({ speculate: true, match: { tier: 1, caseInsensitive: false, threshold: 0.95 } });
    // Tools default to irreversible (M6).
    const t = parseWorkflow(wf({ nodes: [{ id: 't', kind: 'tool', tool: 'send_email' }], edges: [] }));
    expect(t.nodes[0]).toMatchObject({ effects: 'irreversible' });
  });

  it('rejects a cycle', () => {
    const bad = wf({
      edges: [
        { from: 'classify', to: 'reply', type: 'router_k_way', k: 4 },
        { from: 'reply', to: 'lookup', type: 'free_text' },
        { from: 'lookup', to: 'classify', type: 'lookup' },
      ],
    });
    const is = issues(bad);
    expect(is.map((i) => i.path)).toEqual(['workflow.edges']);
    expect(is[0]?.message).toMatch(/cycle: classify -> reply -> lookup -> classify/);
    expect(findCycle(['a', 'b'], [{ from: 'a', to: 'b' }])).toBeUndefined();
  });

  it('rejects references to missing nodes in edges and outputs', () => {
    // The reply prompt's reference to classify then also lacks its edge.
    expect(paths(wf({ edges: [{ from: 'classify', to: 'ghost', type: 'passthrough' }] }))).toEqual(['workflow.edges[0].to', 'workflow.nodes[1].prompt']);
    expect(paths(wf({ edges: [{ from: 'ghost', to: 'reply', type: 'passthrough' }] }))).toContain('workflow.edges[0].from');
    expect(paths(wf({ outputs: ['reply', 'ghost'] }))).toEqual(['workflow.outputs[1]']);
  });

  it('rejects self-loops and duplicate edges naming the edge index', () => {
    expect(paths(wf({ edges: [{ from: 'reply', to: 'reply', type: 'free_text' }] }))).toContain('workflow.edges[0]');
    const dup = { from: 'classify', to: 'reply', type: 'router_k_way', k: 4 };
    expect(paths(wf({ edges: [dup, dup] }))).toEqual(['workflow.edges[1]']);
  });

  it('rejects unknown dependency types naming the field', () => {
    expect(paths(wf({ edges: [{ from: 'classify', to: 'reply', type: 'telepathy' }] }))).toEqual(['workflow.edges[0].type']);
  });

  it('requires k for router_k_way edges', () => {
    expect(paths(wf({ edges: [{ from: 'classify', to: 'reply', type: 'router_k_way' }] }))).toEqual(['workflow.edges[0].k']);
  });

  it('rejects models without rates when a price table is given, and accepts configured ones', () => {
    const nodes = wf().nodes.map((n) => (n.id === 'reply' ? { ...n, provider: 'local', model: 'my-llama' } : n));
    const is = issues(wf({ nodes }), { priceTable: createPriceTable() });
    expect(is.map((i) => i.path)).toEqual(['workflow.nodes[1].model']);
    expect(is[0]?.message).toMatch(/my-llama/);
    const priced = createPriceTable({ models: { 'local/my-llama': { inputPerMTokUsd: 0.1, outputPerMTokUsd: 0.1 } } });
    expect(parseWorkflow(wf({ nodes }), { priceTable: priced }).nodes[1]).toMatchObject({ model: 'my-llama' });
  });

  it('rejects wrong types naming the node index and field', () => {
    const nodes = wf().nodes.map((n, i) => (i === 1 ? { ...n, expectedOutputTokens: '300' } : n));
    expect(paths(wf({ nodes }))).toEqual(['workflow.nodes[1].expectedOutputTokens']);
    expect(paths(wf({ nodes: [{ id: 'x', kind: 'robot' }], edges: [] }))).toEqual(['workflow.nodes[0].kind']);
    expect(paths(wf({ nodes: [{ ...wf().nodes[0], extra: 1 }], edges: [] }))).toEqual(['workflow.nodes[0]']);
    expect(paths(wf({ name: '9lives' }))).toEqual(['workflow.name']);
    const maxBelow = wf().nodes.map((n, i) => (i === 1 ? { ...n, maxTokens: 100 } : n));
    expect(paths(wf({ nodes: maxBelow }))).toEqual(['workflow.nodes[1].maxTokens']);
  });

  it('rejects duplicate node ids naming the second', () => {
    const nodes = [...wf().nodes, { ...wf().nodes[0] }];
    expect(paths(wf({ nodes }))).toEqual(['workflow.nodes[3].id']);
  });

  it('rejects bad template references: unknown node, node that is not an upstream, bad syntax', () => {
    const withPrompt = (prompt: string) => wf().nodes.map((n) => (n.id === 'reply' ? { ...n, prompt } : n));
    expect(paths(wf({ nodes: withPrompt('{{nodes.ghost.output}}') }))).toEqual(['workflow.nodes[1].prompt']);
    const notUp = issues(wf({ nodes: withPrompt('{{nodes.lookup.output}}') }));
    expect(notUp.map((i) => i.path)).toEqual(['workflow.nodes[1].prompt']);
    expect(notUp[0]?.message).toMatch(/no edge lookup->reply/);
    expect(paths(wf({ nodes: withPrompt('{{env.HOME}}') }))).toEqual(['workflow.nodes[1].prompt']);
    // JSON paths into an upstream output are fine.
    expect(parseWorkflow(wf({ nodes: withPrompt('{{nodes.classify.output.label}}') })).nodes).toHaveLength(3);
    // Tool argument templates are checked too.
    const toolBad = wf().nodes.map((n) => (n.id === 'lookup' ? { ...n, args: { id: '{{nodes.reply.output}}' } } : n));
    expect(paths(wf({ nodes: toolBad }))).toEqual(['workflow.nodes[2].args.id']);
    expect(templateRefs('a {{ inputs.x }} b {{nodes.y.output}}')).toEqual(['inputs.x', 'nodes.y.output']);
  });

  it('M7: an LLM downstream must use tier-1 matching unless the author opts out; tier 3 needs a predicate', () => {
    const e = { from: 'classify', to: 'reply', type: 'router_k_way', k: 4 };
    expect(paths(wf({ edges: [{ ...e, match: { tier: 2 } }] }))).toEqual(['workflow.edges[0].match.tier']);
    expect(parseWorkflow(wf({ edges: [{ ...e, match: { tier: 2, allowFuzzyForLlm: true } }] })).edges[0]?.match.tier).toBe(2);
    expect(paths(wf({ edges: [{ ...e, match: { tier: 3, allowFuzzyForLlm: true } }] }))).toEqual(['workflow.edges[0].match.predicate']);
  });

  it('checks predictors and known tools', () => {
    const e = { from: 'classify', to: 'reply', type: 'router_k_way', k: 4 };
    expect(paths(wf({ edges: [{ ...e, predictor: { kind: 'fixed' } }] }))).toEqual(['workflow.edges[0].predictor.value']);
    expect(paths(wf({ edges: [{ ...e, predictor: { kind: 'function' } }] }))).toEqual(['workflow.edges[0].predictor.name']);
    expect(paths(wf(), { knownTools: new Set(['other']) })).toEqual(['workflow.nodes[2].tool']);
  });

  it('reports several problems at once', () => {
    const nodes = [...wf().nodes, { ...wf().nodes[0] }];
    const p = paths(wf({ nodes, edges: [{ from: 'classify', to: 'ghost', type: 'passthrough' }] }));
    expect(p).toEqual(expect.arrayContaining(['workflow.nodes[3].id', 'workflow.edges[0].to']));
  });

  it('topoOrder and edgeClassId', () => {
    const w = parseWorkflow(wf({ edges: [{ from: 'classify', to: 'reply', type: 'router_k_way', k: 4 }, { from: 'lookup', to: 'reply', type: 'lookup' }] }));
    const order = topoOrder(w);
    expect(order.indexOf('reply')).toBeGreaterThan(order.indexOf('classify'));
    expect(order.indexOf('reply')).toBeGreaterThan(order.indexOf('lookup'));
    expect(edgeClassId('t1', 'support', 'classify', 'reply')).toBe('t1/support/classify->reply');
  });
});

/**
 * Workload archetypes (METHOD.md M11): a parameterised DAG with per-node models, token-size
 * distributions, latencies and per-edge hit probabilities, which (1) emits seeded traces in the
 * replay format and (2) exports the same workflow in the live schema (`parseWorkflow`) with
 * `simulate` settings that reproduce the same hit probabilities on the simulated provider.
 *
 * Hit model, shared by both sides: every node whose output is guessed declares `outcomes`
 * (value, weight). Each run draws the node's output from them; the predictor on its out-edges
 * guesses the heaviest value (`fixed` predictor, or `most_frequent` with that value as fallback,
 * which converges to it), so P(hit) = the heaviest weight. In the live workflow the same
 * outcomes become `simulate.outcomes`, which the simulated provider draws from, seeded per run.
 *
 * Live mapping of tools: a tool whose output is guessed becomes a stand-in LLM node on the
 * simulated provider (model gpt-4o-mini, `simulate.ttftMs` = the tool's median latency, a few
 * output tokens), because only LLM nodes carry `simulate`; other tools become the built-in
 * `sleep` tool with `args.ms` = their median latency and their declared effects.
 */
import { type DependencyType, type Effects, latencyProfile, operationClassOf, parseWorkflow, type PriceTable, type Workflow } from '@gambit/shared';
import { logNormal, mulberry32, type Rng, seedFrom } from '../stats.js';
import { type Operation, type Opportunity, type Run, RunSchema, TRACE_FORMAT_VERSION } from '../trace.js';
import { medianTokens, sampleTokens, type TokenDist } from './token-sizes.js';

export interface Outcome {
  readonly value: string;
  readonly weight: number;
}

interface NodeBase {
  readonly id: string;
  readonly deps: readonly string[];
  /** What the node does (becomes the live prompt's first line). */
  readonly purpose: string;
  readonly effects?: Effects;
  /** Output distribution of a node whose output is guessed (see header). */
  readonly outcomes?: readonly Outcome[];
}

export interface LlmNodeSpec extends NodeBase {
  readonly kind: 'llm';
  readonly provider: string;
  readonly model: string;
  readonly input: TokenDist;
  readonly output: TokenDist;
  /** Share of the prompt served from the provider's prompt cache. */
  readonly cachedShare?: number;
}

export interface ToolNodeSpec extends NodeBase {
  readonly kind: 'tool';
  readonly tool: string;
  readonly durationMedianMs: number;
  readonly durationSigma?: number;
  readonly priceUsd?: number;
}

export type NodeSpec = LlmNodeSpec | ToolNodeSpec;

export interface OpportunitySpec {
  readonly from: string;
  readonly to: string;
  readonly type: DependencyType;
  readonly k?: number;
  readonly predictor: 'fixed' | 'most_frequent';
}

export interface ArchetypeSpec {
  readonly name: string;
  /** Nodes in topological order. */
  readonly nodes: readonly NodeSpec[];
  readonly opportunities: readonly OpportunitySpec[];
  /** σ of the log-normal jitter on LLM latencies (default 0.2). */
  readonly latencySigma?: number;
}

export interface GenerateOptions {
  readonly seed: number;
  readonly runs: number;
  readonly tenant?: string;
  readonly startUnixMs?: number;
  /** Time between run starts (default 60 s). */
  readonly spacingMs?: number;
}

export interface Archetype {
  readonly name: string;
  readonly description: string;
  /** Designed P(hit) per opportunity edge `from->to` (the heaviest outcome weight). */
  readonly designedHitRates: Readonly<Record<string, number>>;
  generate(opts: GenerateOptions): Run[];
  /** The live workflow definition (validated with parseWorkflow against `prices` when given). */
  workflow(prices?: PriceTable): Workflow;
}

/** The guessed value of a node: its heaviest outcome. */
export function topOutcome(outcomes: readonly Outcome[]): Outcome {
  return outcomes.reduce((best, o) => (o.weight > best.weight ? o : best));
}

export function hitProbability(outcomes: readonly Outcome[]): number {
  return topOutcome(outcomes).weight / outcomes.reduce((s, o) => s + o.weight, 0);
}

function drawOutcome(rng: Rng, outcomes: readonly Outcome[]): string {
  const total = outcomes.reduce((s, o) => s + o.weight, 0);
  let r = rng() * total;
  for (const o of outcomes) {
    r -= o.weight;
    if (r < 0) return o.value;
  }
  return outcomes[outcomes.length - 1]!.value;
}

export function designedHitRates(spec: ArchetypeSpec): Record<string, number> {
  const byId = new Map(spec.nodes.map((n) => [n.id, n]));
  return Object.fromEntries(spec.opportunities.map((o) => [`${o.from}->${o.to}`, hitProbability(byId.get(o.from)!.outcomes!)]));
}

/** One run of a spec, drawn from `rng`. */
export function generateRun(spec: ArchetypeSpec, rng: Rng, meta: { runId: string; tenant: string; startUnixMs: number }): Run {
  const ends = new Map<string, number>();
  const outputs = new Map<string, string>();
  const operations: Operation[] = [];
  for (const n of spec.nodes) {
    const startMs = n.deps.reduce((m, d) => Math.max(m, ends.get(d) ?? 0), 0);
    if (n.outcomes !== undefined) outputs.set(n.id, drawOutcome(rng, n.outcomes));
    let op: Operation;
    if (n.kind === 'llm') {
      const input = sampleTokens(rng, n.input);
      const output = sampleTokens(rng, n.output);
      const p = latencyProfile(n.model);
      const jitter = logNormal(rng, 1, spec.latencySigma ?? 0.2);
      op = {
        id: n.id,
        kind: 'llm',
        'gen_ai.provider.name': n.provider,
        'gen_ai.request.model': n.model,
        dependencies: [...n.deps],
        startMs,
        durationMs: Math.round((p.ttftMs + (1000 * output) / p.tokensPerSec) * jitter),
        'gen_ai.usage.input_tokens': input,
        'gen_ai.usage.cache_read.input_tokens': Math.floor(input * (n.cachedShare ?? 0)),
        'gen_ai.usage.output_tokens': output,
        ...(n.effects !== undefined ? { effects: n.effects } : {}),
        // M4: each LLM node of an archetype runs its own prompt template (named by the node).
        operationClass: operationClassOf({ kind: 'llm', provider: n.provider, model: n.model, prompt: '' }, n.id),
      };
    } else {
      op = {
        id: n.id,
        kind: 'tool',
        'gen_ai.tool.name': n.tool,
        dependencies: [...n.deps],
        startMs,
        durationMs: Math.round(logNormal(rng, n.durationMedianMs, n.durationSigma ?? 0.3)),
        'gen_ai.usage.input_tokens': 0,
        'gen_ai.usage.cache_read.input_tokens': 0,
        'gen_ai.usage.output_tokens': 0,
        effects: n.effects ?? 'irreversible',
        operationClass: operationClassOf({ kind: 'tool', tool: n.tool }, '-'),
      };
    }
    operations.push(op);
    ends.set(n.id, op.startMs + op.durationMs);
  }
  const byId = new Map(spec.nodes.map((n) => [n.id, n]));
  const opportunities: Opportunity[] = spec.opportunities.map((o) => {
    const guess = topOutcome(byId.get(o.from)!.outcomes!).value;
    const actual = outputs.get(o.from)!;
    return { from: o.from, to: o.to, type: o.type, ...(o.k !== undefined ? { k: o.k } : {}), guess, actual, matched: guess === actual };
  });
  return RunSchema.parse({ v: TRACE_FORMAT_VERSION, runId: meta.runId, tenant: meta.tenant, workflow: spec.name, startUnixMs: meta.startUnixMs, operations, opportunities });
}

/** Seeded runs of a spec; run i uses its own stream seeded from (name, seed, i). */
export function generateRuns(spec: ArchetypeSpec, opts: GenerateOptions, specFor?: (rng: Rng) => ArchetypeSpec): Run[] {
  const start = opts.startUnixMs ?? Date.UTC(2026, 10, 1);
  const spacing = opts.spacingMs ?? 60_000;
  return Array.from({ length: opts.runs }, (_, i) => {
    const rng = mulberry32(seedFrom(`${spec.name}:${opts.seed}:${i}`));
    return generateRun(specFor?.(rng) ?? spec, rng, {
      runId: `${spec.name}-${opts.seed}-${i}`,
      tenant: opts.tenant ?? 'bench',
      startUnixMs: start + i * spacing,
    });
  });
}

/** The live workflow of a spec (see the header for the mapping). */
export function liveWorkflow(spec: ArchetypeSpec, prices?: PriceTable): Workflow {
  const byId = new Map(spec.nodes.map((n) => [n.id, n]));
  const refs = (n: NodeSpec) =>
    n.deps.length === 0 ? '{{inputs.request}}' : n.deps.map((d) => `${d}: {{nodes.${d}.output}}`).join('\n');
  const nodes = spec.nodes.map((n) => {
    if (n.kind === 'llm') {
      const out = medianTokens(n.output);
      return {
        id: n.id,
        kind: 'llm' as const,
        provider: 'simulated',
        model: n.model,
        prompt: `${n.purpose}\n${refs(n)}`,
        expectedOutputTokens: out,
        maxTokens: Math.max(16, out * 4),
        effects: n.effects ?? 'none',
        ...(n.outcomes !== undefined ? { simulate: { outcomes: n.outcomes.map((o) => ({ ...o })) } } : {}),
      };
    }
    if (n.outcomes !== undefined)
      return {
        id: n.id,
        kind: 'llm' as const,
        provider: 'simulated',
        model: 'gpt-4o-mini',
        prompt: `Stand-in for tool ${n.tool}: ${n.purpose}\n${refs(n)}`,
        expectedOutputTokens: 4,
        maxTokens: 16,
        effects: 'none' as const,
        simulate: { outcomes: n.outcomes.map((o) => ({ ...o })), ttftMs: n.durationMedianMs, tokensPerSec: 1_000_000 },
      };
    return {
      id: n.id,
      kind: 'tool' as const,
      tool: 'sleep',
      args: { ms: n.durationMedianMs, note: `${n.tool}: ${n.purpose}`, input: refs(n) },
      effects: n.effects ?? 'irreversible',
      priceUsd: n.priceUsd ?? 0,
      expectedDurationMs: n.durationMedianMs,
    };
  });
  const opp = new Map(spec.opportunities.map((o) => [`${o.from}->${o.to}`, o]));
  const edges = spec.nodes.flatMap((n) =>
    n.deps.map((d) => {
      const o = opp.get(`${d}->${n.id}`);
      if (o === undefined) return { from: d, to: n.id, type: 'free_text' as const, speculate: false };
      const top = topOutcome(byId.get(d)!.outcomes!).value;
      return {
        from: d,
        to: n.id,
        type: o.type,
        ...(o.k !== undefined ? { k: o.k } : {}),
        predictor: o.predictor === 'fixed' ? { kind: 'fixed' as const, value: top } : { kind: 'most_frequent' as const, fallback: top },
      };
    }),
  );
  return parseWorkflow({ name: spec.name, version: 1, nodes, edges }, prices !== undefined ? { priceTable: prices } : {});
}

/** An Archetype from a fixed-shape spec. */
export function specArchetype(spec: ArchetypeSpec, description: string): Archetype {
  return {
    name: spec.name,
    description,
    designedHitRates: designedHitRates(spec),
    generate: (opts) => generateRuns(spec, opts),
    workflow: (prices) => liveWorkflow(spec, prices),
  };
}

/**
 * The workflow definition: a DAG of `llm` and `tool` nodes joined by typed edges (METHOD.md M0,
 * M1, M5, M6, M7). `parseWorkflow` validates shape with zod and then semantics (unique ids, edges
 * to known nodes, no cycles, template references, known models) and throws a ValidationError that
 * names the node and the field of every problem.
 */
import { z } from 'zod';
import { DEPENDENCY_TYPES, EFFECTS, type PriceTable } from '../core/types.js';
import { ValidationError, type FieldIssue } from '../errors.js';

const Id = z
  .string()
  .min(1)
  .max(64)
  .regex(/^[A-Za-z][A-Za-z0-9_-]*$/, 'must start with a letter and use only letters, digits, _ and -');

/** How the simulated provider produces this node's output (ignored by real providers). */
export const SimulationSchema = z
  .object({
    /** A fixed output (template allowed, e.g. "reply to {{nodes.classify.output}}"). */
    output: z.string().optional(),
    /** Outputs drawn with these weights, seeded by run and node, so hit rates are controllable. */
    outcomes: z
      .array(z.object({ value: z.string(), weight: z.number().positive() }))
      .min(1)
      .optional(),
    /** Override of the model's latency profile for this node. */
    ttftMs: z.number().nonnegative().optional(),
    tokensPerSec: z.number().positive().optional(),
  })
  .strict();
export type Simulation = z.infer<typeof SimulationSchema>;

/** Largest deadline of one operation (a day); the worker caps it further (WORKER_MAX_OP_TIMEOUT_MS). */
export const MAX_OP_TIMEOUT_MS = 86_400_000;
const OpTimeoutMs = z.number().int().positive().max(MAX_OP_TIMEOUT_MS);

export const LlmNodeSchema = z
  .object({
    id: Id,
    kind: z.literal('llm'),
    /** `simulated`, `openai` (or any OpenAI-compatible endpoint), `anthropic`, `local`, or a configured name. */
    provider: z.string().min(1).max(64),
    model: z.string().min(1).max(128),
    system: z.string().max(200_000).optional(),
    /** Template: `{{inputs.x}}` and `{{nodes.y.output}}` are replaced before the call. */
    prompt: z.string().min(1).max(200_000),
    expectedOutputTokens: z.number().int().positive().max(1_000_000),
    maxTokens: z.number().int().positive().max(1_000_000),
    effects: z.enum(EFFECTS).default('none'),
    discloses: z.boolean().default(false),
    simulate: SimulationSchema.optional(),
    /** Issue 10 item 4: the operation's deadline (ms of one try on a worker); the tenant's `opTimeoutMs` when not set. */
    timeoutMs: OpTimeoutMs.optional(),
  })
  .strict();
export type LlmNode = z.infer<typeof LlmNodeSchema>;

export const ToolNodeSchema = z
  .object({
    id: Id,
    kind: z.literal('tool'),
    tool: z.string().min(1).max(128),
    /** Argument templates; string values are rendered like prompts. */
    args: z.record(z.string(), z.unknown()).default({}),
    effects: z.enum(EFFECTS).default('irreversible'),
    discloses: z.boolean().default(false),
    /** Per-call price in dollars (M2), added to C_spec. */
    priceUsd: z.number().nonnegative().default(0),
    /** Static duration estimate for planning (critical path, ΔT). */
    expectedDurationMs: z.number().nonnegative().default(100),
    /** Issue 10 item 4: the operation's deadline (ms of one try on a worker); the tenant's `opTimeoutMs` when not set. */
    timeoutMs: OpTimeoutMs.optional(),
  })
  .strict();
export type ToolNode = z.infer<typeof ToolNodeSchema>;

export const NodeSchema = z.discriminatedUnion('kind', [LlmNodeSchema, ToolNodeSchema]);
export type WorkflowNode = z.infer<typeof NodeSchema>;

export const PredictorSchema = z
  .object({
    /**
     * `most_frequent`: the most frequent past output of the edge class (labels, routes);
     * `memo`: the output of an identical past request (lookup);
     * `fixed`: `value` (e.g. "pass" for a validation gate);
     * `function`: a user function registered under `name`;
     * `llm`: a cheaper model guesses (its cost is added to C_spec).
     */
    kind: z.enum(['most_frequent', 'memo', 'fixed', 'function', 'llm']),
    value: z.string().optional(),
    name: z.string().optional(),
    provider: z.string().optional(),
    model: z.string().optional(),
    prompt: z.string().optional(),
    /** `llm` predictor: expected output tokens of the guess (M10 price; default 16). */
    expectedOutputTokens: z.number().int().positive().max(1_000_000).optional(),
    /** `llm` predictor: largest output of the guess (default 64). */
    maxTokens: z.number().int().positive().max(1_000_000).optional(),
    /** `llm` predictor on the simulated provider: how it produces the guess. */
    simulate: SimulationSchema.optional(),
    /** Used until the edge class has history. */
    fallback: z.string().optional(),
  })
  .strict();
export type PredictorSpec = z.infer<typeof PredictorSchema>;

export const MatchSchema = z
  .object({
    tier: z.union([z.literal(1), z.literal(2), z.literal(3)]).default(1),
    caseInsensitive: z.boolean().default(false),
    /** Tier 2 cosine threshold. */
    threshold: z.number().min(0).max(1).default(0.95),
    /** Tier 3: name of a registered predicate. */
    predicate: z.string().optional(),
    /** A downstream LLM launched on î must use tier 1 unless the author opts out (M7). */
    allowFuzzyForLlm: z.boolean().default(false),
  })
  .strict();
export type MatchSpec = z.infer<typeof MatchSchema>;

export const EdgeSchema = z
  .object({
    from: Id,
    to: Id,
    type: z.enum(DEPENDENCY_TYPES),
    /** Number of routes, for `router_k_way` (prior Beta(1, k-1)). */
    k: z.number().int().min(2).max(10_000).optional(),
    predictor: PredictorSchema.optional(),
    match: MatchSchema.default({ tier: 1, caseInsensitive: false, threshold: 0.95, allowFuzzyForLlm: false }),
    /** Set false to never speculate across this edge. */
    speculate: z.boolean().default(true),
  })
  .strict();
export type Edge = z.infer<typeof EdgeSchema>;

export const WorkflowSchema = z
  .object({
    name: Id,
    version: z.number().int().nonnegative().default(1),
    nodes: z.array(NodeSchema).min(1).max(500),
    edges: z.array(EdgeSchema).max(5_000).default([]),
    /** Node ids whose outputs are the run's result (default: the sinks). */
    outputs: z.array(Id).optional(),
  })
  .strict();
export type Workflow = z.infer<typeof WorkflowSchema>;

/** Converts zod issues into field issues with dotted paths like `nodes[2].model`. */
export function zodIssues(err: z.ZodError, root = ''): FieldIssue[] {
  return err.issues.map((i) => ({ path: formatPath(root, i.path), message: i.message }));
}

export function formatPath(root: string, path: ReadonlyArray<PropertyKey>): string {
  let out = root;
  for (const p of path) {
    if (typeof p === 'number') out += `[${p}]`;
    else out += out === '' ? String(p) : `.${String(p)}`;
  }
  return out === '' ? '(root)' : out;
}

const TEMPLATE_REF = /\{\{\s*([^}]+?)\s*\}\}/g;

/** The `{{...}}` references of a template, e.g. `inputs.question`, `nodes.classify.output`. */
export function templateRefs(template: string): string[] {
  return [...template.matchAll(TEMPLATE_REF)].map((m) => m[1] ?? '');
}

export interface ParseWorkflowOptions {
  /** When given, every llm node's model must have rates (genai-prices or configured). */
  priceTable?: PriceTable;
  /** Providers that need no price (the simulated provider still uses the named model's rates). */
  knownTools?: ReadonlySet<string>;
}

/** Validates a workflow definition, shape and semantics. Throws ValidationError naming each field. */
export function parseWorkflow(input: unknown, opts: ParseWorkflowOptions = {}): Workflow {
  const parsed = WorkflowSchema.safeParse(input);
  if (!parsed.success) throw new ValidationError(zodIssues(parsed.error, 'workflow'));
  const wf = parsed.data;
  const issues: FieldIssue[] = [];
  const index = new Map<string, number>();
  wf.nodes.forEach((n, i) => {
    if (index.has(n.id)) issues.push({ path: `workflow.nodes[${i}].id`, message: `duplicate node id "${n.id}"` });
    else index.set(n.id, i);
  });
  const seenEdges = new Set<string>();
  wf.edges.forEach((e, i) => {
    if (!index.has(e.from)) issues.push({ path: `workflow.edges[${i}].from`, message: `unknown node "${e.from}"` });
    if (!index.has(e.to)) issues.push({ path: `workflow.edges[${i}].to`, message: `unknown node "${e.to}"` });
    if (e.from === e.to) issues.push({ path: `workflow.edges[${i}]`, message: `self-loop on "${e.from}"` });
    const key = `${e.from}->${e.to}`;
    if (seenEdges.has(key)) issues.push({ path: `workflow.edges[${i}]`, message: `duplicate edge ${key}` });
    seenEdges.add(key);
    if (e.type === 'router_k_way' && e.k === undefined)
      issues.push({ path: `workflow.edges[${i}].k`, message: 'router_k_way edges need k (the number of routes)' });
    if (e.match.tier === 3 && e.match.predicate === undefined)
      issues.push({ path: `workflow.edges[${i}].match.predicate`, message: 'tier 3 matching needs a predicate name' });
    if (e.predictor?.kind === 'fixed' && e.predictor.value === undefined)
      issues.push({ path: `workflow.edges[${i}].predictor.value`, message: 'a fixed predictor needs a value' });
    if (e.predictor?.kind === 'function' && e.predictor.name === undefined)
      issues.push({ path: `workflow.edges[${i}].predictor.name`, message: 'a function predictor needs a name' });
    const target = wf.nodes[index.get(e.to) ?? -1];
    if (target?.kind === 'llm' && e.match.tier !== 1 && !e.match.allowFuzzyForLlm)
      issues.push({
        path: `workflow.edges[${i}].match.tier`,
        message: `node "${e.to}" is an LLM launched on the guess: it must use tier 1 matching unless match.allowFuzzyForLlm is true (M7)`,
      });
  });
  // Template references: inputs.* are free; nodes.X.output must name an upstream of this node.
  const upstreams = new Map<string, Set<string>>();
  for (const e of wf.edges) {
    let s = upstreams.get(e.to);
    if (s === undefined) {
      s = new Set();
      upstreams.set(e.to, s);
    }
    s.add(e.from);
  }
  wf.nodes.forEach((n, i) => {
    const templates: Array<[string, string]> =
      n.kind === 'llm'
        ? [
            ['prompt', n.prompt],
            ['system', n.system ?? ''],
          ]
        : Object.entries(n.args).flatMap(([k, v]) => (typeof v === 'string' ? [[`args.${k}`, v] as [string, string]] : []));
    for (const [field, tpl] of templates) {
      for (const ref of templateRefs(tpl)) {
        const m = /^nodes\.([A-Za-z][A-Za-z0-9_-]*)\.output(\..+)?$/.exec(ref);
        if (m !== null) {
          const up = m[1] ?? '';
          if (!index.has(up)) issues.push({ path: `workflow.nodes[${i}].${field}`, message: `references unknown node "${up}"` });
          else if (!(upstreams.get(n.id)?.has(up) ?? false))
            issues.push({ path: `workflow.nodes[${i}].${field}`, message: `references "${up}" but there is no edge ${up}->${n.id}` });
        } else if (!/^inputs\.[A-Za-z0-9_.-]+$/.test(ref)) {
          issues.push({ path: `workflow.nodes[${i}].${field}`, message: `bad template reference "{{${ref}}}" (use inputs.NAME or nodes.ID.output)` });
        }
      }
    }
    if (n.kind === 'llm') {
      if (n.maxTokens < n.expectedOutputTokens)
        issues.push({ path: `workflow.nodes[${i}].maxTokens`, message: 'must be at least expectedOutputTokens' });
      if (opts.priceTable !== undefined && opts.priceTable.rates(n.provider, n.model) === undefined)
        issues.push({
          path: `workflow.nodes[${i}].model`,
          message: `unknown model "${n.model}" for provider "${n.provider}": not in the price table and no rates configured`,
        });
    } else if (opts.knownTools !== undefined && !opts.knownTools.has(n.tool)) {
      issues.push({ path: `workflow.nodes[${i}].tool`, message: `unknown tool "${n.tool}"` });
    }
  });
  if (wf.outputs !== undefined)
    wf.outputs.forEach((o, i) => {
      if (!index.has(o)) issues.push({ path: `workflow.outputs[${i}]`, message: `unknown node "${o}"` });
    });
  if (issues.length === 0) {
    const cycle = findCycle(
      wf.nodes.map((n) => n.id),
      wf.edges,
    );
    if (cycle !== undefined) issues.push({ path: 'workflow.edges', message: `cycle: ${cycle.join(' -> ')}` });
  }
  if (issues.length > 0) throw new ValidationError(issues);
  return wf;
}

/** Returns one cycle as a list of node ids (first repeated at the end), or undefined for a DAG. */
export function findCycle(ids: readonly string[], edges: ReadonlyArray<{ from: string; to: string }>): string[] | undefined {
  const out = new Map<string, string[]>(ids.map((id) => [id, []]));
  for (const e of edges) out.get(e.from)?.push(e.to);
  const color = new Map<string, 0 | 1 | 2>();
  const stack: string[] = [];
  const visit = (u: string): string[] | undefined => {
    color.set(u, 1);
    stack.push(u);
    for (const v of out.get(u) ?? []) {
      const c = color.get(v) ?? 0;
      if (c === 1) return [...stack.slice(stack.indexOf(v)), v];
      if (c === 0) {
        const r = visit(v);
        if (r !== undefined) return r;
      }
    }
    stack.pop();
    color.set(u, 2);
    return undefined;
  };
  for (const id of ids) {
    if ((color.get(id) ?? 0) === 0) {
      const r = visit(id);
      if (r !== undefined) return r;
    }
  }
  return undefined;
}

/** Nodes in a topological order (the workflow must be a DAG). */
export function topoOrder(wf: Pick<Workflow, 'nodes' | 'edges'>): string[] {
  const indeg = new Map<string, number>(wf.nodes.map((n) => [n.id, 0]));
  for (const e of wf.edges) indeg.set(e.to, (indeg.get(e.to) ?? 0) + 1);
  const ready = wf.nodes.filter((n) => indeg.get(n.id) === 0).map((n) => n.id);
  const order: string[] = [];
  while (ready.length > 0) {
    const u = ready.shift() as string;
    order.push(u);
    for (const e of wf.edges) {
      if (e.from !== u) continue;
      const d = (indeg.get(e.to) ?? 0) - 1;
      indeg.set(e.to, d);
      if (d === 0) ready.push(e.to);
    }
  }
  return order;
}

/** Edge class id (tenant, workflow, edge): the unit posteriors and calibration stages are kept for. */
export function edgeClassId(tenant: string, workflow: string, from: string, to: string): string {
  return `${tenant}/${workflow}/${from}->${to}`;
}

/**
 * The replay trace format (docs/trace-format.md; METHOD.md M9 stage 1): JSON lines, one recorded
 * workflow run per line, with its operations (LLM and tool calls, OpenTelemetry GenAI attribute
 * names where they exist) and its speculation opportunities (an edge, the guess a predictor made
 * for it, and whether the guess matched the real output). This module owns the zod schema and
 * the run-level semantic checks; reading files line by line is in reader.ts.
 */
import { assertOperationClass, DEPENDENCY_TYPES, EFFECTS, findCycle, operationClassOf, templateHash, ValidationError } from '@gambit/shared';
import { z } from 'zod';

/**
 * Version written; version 1 (no `operationClass`) and 2 (no `speculative`) lines are still read
 * (docs/trace-format.md).
 */
export const TRACE_FORMAT_VERSION = 3 as const;

const NonNegInt = z.number().int().nonnegative();

/** OpenTelemetry GenAI attribute names used as field names (semantic conventions, gen_ai.*). */
export const ATTR = {
  provider: 'gen_ai.provider.name',
  model: 'gen_ai.request.model',
  tool: 'gen_ai.tool.name',
  inputTokens: 'gen_ai.usage.input_tokens',
  cachedInputTokens: 'gen_ai.usage.cache_read.input_tokens',
  outputTokens: 'gen_ai.usage.output_tokens',
} as const;

/**
 * What a speculative attempt of an operation ran on its guess, when it differs from what finally
 * ran (v3; issue 9 item 8): the router's wrong specialist, the answer behind a failed gate, a
 * guessed final step, a prompt rendered with the guessed upstream output. Replay prices a miss
 * of the operation from this, never from the operation that finally ran.
 */
export const SpeculativeOperationSchema = z
  .object({
    kind: z.enum(['llm', 'tool']),
    'gen_ai.provider.name': z.string().min(1).optional(),
    'gen_ai.request.model': z.string().min(1).optional(),
    'gen_ai.tool.name': z.string().min(1).optional(),
    /** How long the attempt ran: to its end, or to its cancellation when `cancelled`. */
    durationMs: z.number().nonnegative(),
    /** True when the recorded attempt was cancelled: its tokens are what it consumed by `durationMs`. */
    cancelled: z.boolean().default(false),
    /** When its first output token came, ms after its start (LLM calls), when recorded. */
    timeToFirstTokenMs: z.number().nonnegative().optional(),
    'gen_ai.usage.input_tokens': NonNegInt.default(0),
    'gen_ai.usage.cache_read.input_tokens': NonNegInt.default(0),
    'gen_ai.usage.output_tokens': NonNegInt.default(0),
    /** Recorded cost in integer nano-dollars, when known; otherwise priced from the tokens. */
    costNanoUsd: NonNegInt.optional(),
    /** What it produced (canonical text), when recorded. */
    output: z.string().optional(),
  })
  .strict()
  .superRefine((op, ctx) => {
    if (op.kind === 'llm') {
      if (op[ATTR.provider] === undefined)
        ctx.addIssue({ code: 'custom', path: [ATTR.provider], message: 'required for an llm operation' });
      if (op[ATTR.model] === undefined) ctx.addIssue({ code: 'custom', path: [ATTR.model], message: 'required for an llm operation' });
    } else if (op[ATTR.tool] === undefined) {
      ctx.addIssue({ code: 'custom', path: [ATTR.tool], message: 'required for a tool operation' });
    }
    if (op[ATTR.cachedInputTokens] > op[ATTR.inputTokens])
      ctx.addIssue({ code: 'custom', path: [ATTR.cachedInputTokens], message: `cannot exceed ${ATTR.inputTokens} (${op[ATTR.inputTokens]})` });
    if (op.timeToFirstTokenMs !== undefined && op.kind !== 'llm')
      ctx.addIssue({ code: 'custom', path: ['timeToFirstTokenMs'], message: 'only for an llm operation' });
  });
export type SpeculativeOperation = z.infer<typeof SpeculativeOperationSchema>;

export const OperationSchema = z
  .object({
    /** Unique within the run. */
    id: z.string().min(1).max(200),
    kind: z.enum(['llm', 'tool']),
    /** LLM calls: the provider (`openai`, `anthropic`, ...). */
    'gen_ai.provider.name': z.string().min(1).optional(),
    /** LLM calls: the model. */
    'gen_ai.request.model': z.string().min(1).optional(),
    /** Tool calls: the tool's name. */
    'gen_ai.tool.name': z.string().min(1).optional(),
    /** Ids of the operations whose outputs this one consumes (the DAG's edges). */
    dependencies: z.array(z.string().min(1)).default([]),
    /** Start, in ms after the run's start. */
    startMs: z.number().nonnegative(),
    durationMs: z.number().nonnegative(),
    /** All prompt tokens, cached ones included (as OpenTelemetry defines it). */
    'gen_ai.usage.input_tokens': NonNegInt.default(0),
    /** The part of the prompt served from the provider's prompt cache. */
    'gen_ai.usage.cache_read.input_tokens': NonNegInt.default(0),
    'gen_ai.usage.output_tokens': NonNegInt.default(0),
    /** Recorded cost in integer nano-dollars, when known; otherwise priced from the tokens. */
    costNanoUsd: NonNegInt.optional(),
    /** M6 effects; default `none` for llm, `irreversible` for tool. */
    effects: z.enum(EFFECTS).optional(),
    /**
     * M4 operation class (v2): the kind of work, under which duration and output tokens are
     * learned across runs; `llm:<provider>/<model>#<template>` or `tool:<name>#<template>`
     * (core/operation-class.ts). When absent, see `opClass`.
     */
    operationClass: z.string().min(1).max(125).optional(),
    /** v3: what this operation's speculative attempt ran on its guess, when that differs (above). */
    speculative: SpeculativeOperationSchema.optional(),
  })
  .strict()
  .superRefine((op, ctx) => {
    if (op.operationClass !== undefined) {
      try {
        assertOperationClass('operationClass', op.operationClass);
      } catch (e) {
        if (!(e instanceof ValidationError)) throw e;
        ctx.addIssue({ code: 'custom', path: ['operationClass'], message: e.issues[0]?.message ?? 'invalid operation class' });
      }
    }
    if (op.kind === 'llm') {
      if (op[ATTR.provider] === undefined)
        ctx.addIssue({ code: 'custom', path: [ATTR.provider], message: 'required for an llm operation' });
      if (op[ATTR.model] === undefined)
        ctx.addIssue({ code: 'custom', path: [ATTR.model], message: 'required for an llm operation' });
    } else if (op[ATTR.tool] === undefined) {
      ctx.addIssue({ code: 'custom', path: [ATTR.tool], message: 'required for a tool operation' });
    }
    if (op[ATTR.cachedInputTokens] > op[ATTR.inputTokens])
      ctx.addIssue({
        code: 'custom',
        path: [ATTR.cachedInputTokens],
        message: `cannot exceed ${ATTR.inputTokens} (${op[ATTR.inputTokens]})`,
      });
  });
export type Operation = z.infer<typeof OperationSchema>;

/** The model call that produced a guess (M10: its cost and latency count against speculation). */
export const GuesserSchema = z
  .object({
    'gen_ai.provider.name': z.string().min(1),
    'gen_ai.request.model': z.string().min(1),
    /** How long after the upstream's start the guess was available. */
    durationMs: z.number().nonnegative(),
    'gen_ai.usage.input_tokens': NonNegInt,
    'gen_ai.usage.cache_read.input_tokens': NonNegInt.default(0),
    'gen_ai.usage.output_tokens': NonNegInt,
    costNanoUsd: NonNegInt.optional(),
  })
  .strict();
export type Guesser = z.infer<typeof GuesserSchema>;

export const OpportunitySchema = z
  .object({
    /** Upstream operation id. */
    from: z.string().min(1),
    /** Downstream operation id (must list `from` among its dependencies). */
    to: z.string().min(1),
    /** M5 dependency type (selects the prior). */
    type: z.enum(DEPENDENCY_TYPES),
    /** Number of routes for `router_k_way`. */
    k: z.number().int().min(2).optional(),
    /** Edge class key within (tenant, workflow); default `from->to`. Posteriors are kept per class. */
    edgeClass: z.string().min(1).optional(),
    /** The predicted upstream output î (canonical text), or null when no predictor had a guess. */
    guess: z.string().nullable(),
    /** The real upstream output i, when recorded. */
    actual: z.string().optional(),
    /** True when î matched i (M7). */
    matched: z.boolean(),
    guesser: GuesserSchema.optional(),
  })
  .strict()
  .superRefine((o, ctx) => {
    if (o.guess === null && o.matched) ctx.addIssue({ code: 'custom', path: ['matched'], message: 'cannot be true without a guess' });
    if (o.type === 'router_k_way' && o.k === undefined)
      ctx.addIssue({ code: 'custom', path: ['k'], message: 'router_k_way opportunities need k' });
  });
export type Opportunity = z.infer<typeof OpportunitySchema>;

/** Causality slack for rounded timestamps (ms). */
const CAUSALITY_EPS_MS = 1;

export const RunSchema = z
  .object({
    v: z.union([z.literal(1), z.literal(2), z.literal(TRACE_FORMAT_VERSION)]),
    runId: z.string().min(1),
    tenant: z.string().min(1),
    workflow: z.string().min(1),
    /** The run's start, Unix epoch milliseconds. */
    startUnixMs: z.number().int().nonnegative(),
    operations: z.array(OperationSchema).min(1),
    opportunities: z.array(OpportunitySchema).default([]),
  })
  .strict()
  .superRefine((run, ctx) => {
    const byId = new Map<string, Operation>();
    run.operations.forEach((op, i) => {
      if (byId.has(op.id)) ctx.addIssue({ code: 'custom', path: ['operations', i, 'id'], message: `duplicate operation id "${op.id}"` });
      byId.set(op.id, op);
    });
    run.operations.forEach((op, i) => {
      if (op.speculative !== undefined && run.v < 3)
        ctx.addIssue({ code: 'custom', path: ['operations', i, 'speculative'], message: `needs format version 3 (line has v ${run.v})` });
      op.dependencies.forEach((d, j) => {
        const up = byId.get(d);
        if (up === undefined) {
          ctx.addIssue({ code: 'custom', path: ['operations', i, 'dependencies', j], message: `unknown operation "${d}"` });
        } else if (op.startMs + CAUSALITY_EPS_MS < up.startMs + up.durationMs) {
          ctx.addIssue({
            code: 'custom',
            path: ['operations', i, 'startMs'],
            message: `starts at ${op.startMs} ms, before its dependency "${d}" ends at ${up.startMs + up.durationMs} ms`,
          });
        }
      });
    });
    const cycle = findCycle(
      run.operations.map((o) => o.id),
      run.operations.flatMap((o) => o.dependencies.map((d) => ({ from: d, to: o.id }))),
    );
    if (cycle !== undefined) ctx.addIssue({ code: 'custom', path: ['operations'], message: `cycle: ${cycle.join(' -> ')}` });
    const seen = new Set<string>();
    run.opportunities.forEach((o, i) => {
      const to = byId.get(o.to);
      if (!byId.has(o.from)) ctx.addIssue({ code: 'custom', path: ['opportunities', i, 'from'], message: `unknown operation "${o.from}"` });
      if (to === undefined) ctx.addIssue({ code: 'custom', path: ['opportunities', i, 'to'], message: `unknown operation "${o.to}"` });
      else if (!to.dependencies.includes(o.from))
        ctx.addIssue({ code: 'custom', path: ['opportunities', i, 'to'], message: `"${o.to}" does not depend on "${o.from}"` });
      const key = `${o.from}->${o.to}`;
      if (seen.has(key)) ctx.addIssue({ code: 'custom', path: ['opportunities', i], message: `duplicate opportunity ${key}` });
      seen.add(key);
    });
  });
export type Run = z.infer<typeof RunSchema>;
/** What a writer may omit (defaults are filled in on read). */
export type RunInput = z.input<typeof RunSchema>;

/** End of an operation, ms after the run's start. */
export function opEndMs(op: Pick<Operation, 'startMs' | 'durationMs'>): number {
  return op.startMs + op.durationMs;
}

/** The run's recorded duration: from its start to the end of its last operation. */
export function runDurationMs(run: Run): number {
  let end = 0;
  for (const op of run.operations) end = Math.max(end, opEndMs(op));
  return end;
}

/** M6: declared effects, with the defaults of the workflow schema (llm `none`, tool `irreversible`). */
export function opEffects(op: Operation): (typeof EFFECTS)[number] {
  return op.effects ?? (op.kind === 'llm' ? 'none' : 'irreversible');
}

/**
 * The operation class of a trace operation (M4): its `operationClass`, or, when a trace does not
 * name one (version 1 lines), the provider and model with the operation id as the template for
 * an LLM call (different positions usually run different prompts), and the tool name alone for a
 * tool call (template `-`: a tool's duration depends on the tool, not on the position).
 */
export function opClass(op: Operation): string {
  if (op.operationClass !== undefined) return op.operationClass;
  if (op.kind === 'llm') {
    const template = /^[A-Za-z0-9_.-]{1,16}$/.test(op.id) ? op.id : templateHash(op.id);
    return operationClassOf({ kind: 'llm', provider: op[ATTR.provider] ?? '', model: op[ATTR.model] ?? '', prompt: '' }, template);
  }
  return operationClassOf({ kind: 'tool', tool: op[ATTR.tool] ?? '' }, '-');
}

/** Edge class key (within tenant and workflow) of an opportunity. */
export function opportunityClass(o: Opportunity): string {
  return o.edgeClass ?? `${o.from}->${o.to}`;
}

/** Serialises runs as JSON lines (validated first: a writer never emits a line the reader rejects). */
export function toJsonLines(runs: readonly RunInput[]): string {
  return runs.map((r) => JSON.stringify(RunSchema.parse(r))).join('\n') + (runs.length > 0 ? '\n' : '');
}

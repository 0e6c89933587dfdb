/**
 * Importer: a user's own traces exported from OpenTelemetry tracing as OTLP/JSON
 * (`resourceSpans → scopeSpans → spans`, GenAI semantic conventions) → replay runs (trace.ts).
 *
 * - One trace (traceId) is one run. Its start is the earliest span start.
 * - Operations are the spans with `gen_ai.operation.name`: `execute_tool` → tool (name from
 *   `gen_ai.tool.name`), `chat` / `text_completion` / `generate_content` / `embeddings` → llm
 *   (provider from `gen_ai.provider.name`, or the older `gen_ai.system`; model from
 *   `gen_ai.request.model` or `gen_ai.response.model`; usage from `gen_ai.usage.*`). Wrapper
 *   spans (`invoke_agent`, workflow spans) are not operations.
 * - An operation's id is its `gambit.node.id` attribute, else `<span name>#<n>` (the n-th span of
 *   that name in the trace), so the same step of the same workflow gets the same id in every run.
 * - Tenant: `gambit.tenant` (span or resource), else `default`. Workflow: `gambit.workflow`, else
 *   the root span's name, else `service.name`.
 * - Dependencies: `gambit.dependencies` (array of node ids) when present; otherwise inferred from
 *   time: A → B when A ended before B started and no other operation lies wholly between them
 *   (the immediate predecessors). Parent ids only group spans into runs: they say nothing about
 *   data flow.
 * - Opportunities, per dependency edge A → B: `gambit.speculation.guess` and
 *   `gambit.speculation.matched` on B when recorded; otherwise a `most_frequent` predictor over
 *   the earlier runs of the same workflow (time order) guesses the value crossing the edge: the
 *   tool call (name and `gen_ai.tool.call.arguments`) when B is a tool, else A's output
 *   (`gen_ai.output.messages` or `gen_ai.tool.call.result`). Edges whose value was not recorded
 *   get no opportunity. Type: `gambit.dependency.type` on B, else `tool_args` into a tool and
 *   `free_text` into an LLM call.
 */
import { DEPENDENCY_TYPES, type DependencyType, EFFECTS, type Effects, ValidationError, zodIssues } from '@gambit/shared';
import { z } from 'zod';
import { type Operation, type Opportunity, type Run, RunSchema } from '../trace.js';
import { canonicalJson } from './canonical.js';

type AnyValue = {
  stringValue?: string;
  intValue?: string | number;
  doubleValue?: number;
  boolValue?: boolean;
  arrayValue?: { values?: AnyValue[] };
  kvlistValue?: { values?: Array<{ key: string; value: AnyValue }> };
};
const AnyValueSchema: z.ZodType<AnyValue> = z.lazy(() =>
  z.object({
    stringValue: z.string().optional(),
    intValue: z.union([z.string().regex(/^-?\d+$/), z.number().int()]).optional(),
    doubleValue: z.number().optional(),
    boolValue: z.boolean().optional(),
    arrayValue: z.object({ values: z.array(AnyValueSchema).optional() }).optional(),
    kvlistValue: z.object({ values: z.array(z.object({ key: z.string(), value: AnyValueSchema })).optional() }).optional(),
  }),
);
const KeyValueSchema = z.object({ key: z.string(), value: AnyValueSchema });
const NanosSchema = z.union([z.string().regex(/^\d+$/, 'must be an integer count of nanoseconds'), z.number().int().nonnegative()]);
const SpanSchema = z.object({
  traceId: z.string().min(1),
  spanId: z.string().min(1),
  parentSpanId: z.string().optional(),
  name: z.string(),
  startTimeUnixNano: NanosSchema,
  endTimeUnixNano: NanosSchema,
  attributes: z.array(KeyValueSchema).optional(),
});
/** The OTLP/JSON trace export shape this importer reads (other fields are ignored). */
export const OtlpExportSchema = z.object({
  resourceSpans: z
    .array(
      z.object({
        resource: z.object({ attributes: z.array(KeyValueSchema).optional() }).optional(),
        scopeSpans: z.array(z.object({ spans: z.array(SpanSchema).optional() })).optional(),
      }),
    )
    .optional(),
});
export type OtlpExport = z.infer<typeof OtlpExportSchema>;
type KeyValue = z.infer<typeof KeyValueSchema>;
type OtlpSpan = z.infer<typeof SpanSchema>;

function fromAny(v: AnyValue | undefined): unknown {
  if (v === undefined) return undefined;
  if (v.stringValue !== undefined) return v.stringValue;
  if (v.intValue !== undefined) return Number(v.intValue);
  if (v.doubleValue !== undefined) return v.doubleValue;
  if (v.boolValue !== undefined) return v.boolValue;
  if (v.arrayValue !== undefined) return (v.arrayValue.values ?? []).map(fromAny);
  if (v.kvlistValue !== undefined) return Object.fromEntries((v.kvlistValue.values ?? []).map((kv) => [kv.key, fromAny(kv.value)]));
  return undefined;
}

function attrs(list: KeyValue[] | undefined): Map<string, unknown> {
  return new Map((list ?? []).map((kv) => [kv.key, fromAny(kv.value)]));
}

const LLM_OPERATIONS = new Set(['chat', 'text_completion', 'generate_content', 'embeddings']);

interface Span {
  readonly raw: OtlpSpan;
  readonly a: Map<string, unknown>;
  readonly resource: Map<string, unknown>;
  readonly startNs: bigint;
  readonly endNs: bigint;
}

interface Op {
  readonly span: Span;
  readonly op: Operation;
}

const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);
const int = (v: unknown): number => (typeof v === 'number' && Number.isFinite(v) && v >= 0 ? Math.round(v) : 0);
const asText = (v: unknown): string | undefined => (v === undefined ? undefined : typeof v === 'string' ? v : canonicalJson(v));

function toOperation(s: Span, id: string, runStartNs: bigint, where: string): Operation | undefined {
  const kind = str(s.a.get('gen_ai.operation.name'));
  if (kind === undefined) return undefined;
  const startMs = Number(s.startNs - runStartNs) / 1e6;
  const durationMs = Math.max(0, Number(s.endNs - s.startNs) / 1e6);
  const effects = str(s.a.get('gambit.effects'));
  const cost = s.a.get('gambit.cost_nano_usd');
  const common = {
    id,
    dependencies: [] as string[],
    startMs,
    durationMs,
    'gen_ai.usage.input_tokens': int(s.a.get('gen_ai.usage.input_tokens')),
    'gen_ai.usage.cache_read.input_tokens': int(s.a.get('gen_ai.usage.cache_read.input_tokens')),
    'gen_ai.usage.output_tokens': int(s.a.get('gen_ai.usage.output_tokens')),
    ...(typeof cost === 'number' ? { costNanoUsd: int(cost) } : {}),
    ...(effects !== undefined && (EFFECTS as readonly string[]).includes(effects) ? { effects: effects as Effects } : {}),
  };
  if (kind === 'execute_tool') {
    const tool = str(s.a.get('gen_ai.tool.name')) ?? s.raw.name;
    return { ...common, kind: 'tool', 'gen_ai.tool.name': tool };
  }
  if (!LLM_OPERATIONS.has(kind)) return undefined;
  const provider = str(s.a.get('gen_ai.provider.name')) ?? str(s.a.get('gen_ai.system'));
  const model = str(s.a.get('gen_ai.request.model')) ?? str(s.a.get('gen_ai.response.model'));
  if (provider === undefined || model === undefined)
    throw new ValidationError([{ path: `${where}.attributes`, message: 'an LLM span needs gen_ai.provider.name (or gen_ai.system) and gen_ai.request.model' }]);
  return { ...common, kind: 'llm', 'gen_ai.provider.name': provider, 'gen_ai.request.model': model };
}

/** Immediate temporal predecessors: A ended before B started, with no operation wholly between them. */
function inferDependencies(ops: readonly Op[]): void {
  for (const b of ops) {
    const before = ops.filter((a) => a !== b && a.span.endNs <= b.span.startNs);
    const deps = before.filter((a) => !before.some((c) => c !== a && a.span.endNs <= c.span.startNs));
    (b.op.dependencies as string[]).push(...deps.map((d) => d.op.id));
  }
}

/** The value crossing edge a → b (what a guess must match), or undefined when not recorded. */
function edgeValue(a: Op, b: Op): string | undefined {
  if (b.op.kind === 'tool') {
    const args = b.span.a.get('gen_ai.tool.call.arguments');
    if (args === undefined) return undefined;
    let parsed: unknown = args;
    if (typeof args === 'string') {
      try {
        parsed = JSON.parse(args);
      } catch {
        parsed = args;
      }
    }
    return canonicalJson({ name: b.op['gen_ai.tool.name'], arguments: parsed });
  }
  return asText(a.span.a.get('gen_ai.output.messages') ?? a.span.a.get('gen_ai.tool.call.result'));
}

function dependencyType(b: Op): { type: DependencyType; k?: number } {
  const t = str(b.span.a.get('gambit.dependency.type'));
  const k = b.span.a.get('gambit.dependency.k');
  if (t !== undefined && (DEPENDENCY_TYPES as readonly string[]).includes(t))
    return { type: t as DependencyType, ...(typeof k === 'number' ? { k: Math.max(2, Math.round(k)) } : {}) };
  return { type: b.op.kind === 'tool' ? 'tool_args' : 'free_text' };
}

export interface OtlpImportOptions {
  readonly defaultTenant?: string;
}

/** Converts OTLP/JSON exports (one or many documents) to runs, sorted by start time. */
export function importOtlp(docs: readonly unknown[], opts: OtlpImportOptions = {}): Run[] {
  const byTrace = new Map<string, Span[]>();
  const valid = docs.map((doc, i) => {
    const parsed = OtlpExportSchema.safeParse(doc);
    if (!parsed.success) throw new ValidationError(zodIssues(parsed.error, `otlp[${i}]`));
    return parsed.data;
  });
  for (const doc of valid)
    for (const rs of doc.resourceSpans ?? []) {
      const resource = attrs(rs.resource?.attributes);
      for (const ss of rs.scopeSpans ?? [])
        for (const raw of ss.spans ?? []) {
          const span: Span = { raw, a: attrs(raw.attributes), resource, startNs: BigInt(raw.startTimeUnixNano), endNs: BigInt(raw.endTimeUnixNano) };
          const list = byTrace.get(raw.traceId) ?? [];
          list.push(span);
          byTrace.set(raw.traceId, list);
        }
    }
  const runs: Array<{ run: Omit<Run, 'opportunities'>; ops: Op[] }> = [];
  for (const [traceId, spans] of byTrace) {
    spans.sort((x, y) => (x.startNs < y.startNs ? -1 : x.startNs > y.startNs ? 1 : 0));
    const runStartNs = spans[0]!.startNs;
    const ids = new Set(spans.map((s) => s.raw.spanId));
    const root = spans.find((s) => s.raw.parentSpanId === undefined || s.raw.parentSpanId === '' || !ids.has(s.raw.parentSpanId));
    const find = (key: string) => spans.map((s) => str(s.a.get(key)) ?? str(s.resource.get(key))).find((v) => v !== undefined);
    const seenNames = new Map<string, number>();
    const ops: Op[] = [];
    spans.forEach((s, i) => {
      const n = seenNames.get(s.raw.name) ?? 0;
      const id = str(s.a.get('gambit.node.id')) ?? `${s.raw.name}#${n}`;
      const op = toOperation(s, id, runStartNs, `trace ${traceId} span ${s.raw.spanId} (${i})`);
      if (op === undefined) return;
      seenNames.set(s.raw.name, n + 1);
      ops.push({ span: s, op });
    });
    if (ops.length === 0) continue;
    const explicit = ops.some((o) => Array.isArray(o.span.a.get('gambit.dependencies')));
    if (explicit)
      for (const o of ops) (o.op.dependencies as string[]).push(...((o.span.a.get('gambit.dependencies') as unknown[] | undefined) ?? []).map(String));
    else inferDependencies(ops);
    runs.push({
      run: {
        v: 1,
        runId: traceId,
        tenant: find('gambit.tenant') ?? opts.defaultTenant ?? 'default',
        workflow: find('gambit.workflow') ?? root?.raw.name ?? str(spans[0]!.resource.get('service.name')) ?? 'workflow',
        startUnixMs: Number(runStartNs / 1_000_000n),
        operations: ops.map((o) => o.op),
      },
      ops,
    });
  }
  runs.sort((x, y) => x.run.startUnixMs - y.run.startUnixMs);
  // most_frequent predictor per (tenant, workflow, edge), fed in time order.
  const history = new Map<string, Map<string, number>>();
  return runs.map(({ run, ops }) => {
    const byId = new Map(ops.map((o) => [o.op.id, o]));
    const opportunities: Opportunity[] = [];
    const observed: Array<[string, string]> = [];
    for (const b of ops)
      for (const dep of b.op.dependencies) {
        const a = byId.get(dep);
        if (a === undefined) continue;
        const { type, k } = dependencyType(b);
        const recordedGuess = b.span.a.get('gambit.speculation.guess');
        const recordedMatch = b.span.a.get('gambit.speculation.matched');
        const base = { from: a.op.id, to: b.op.id, type, ...(k !== undefined ? { k } : type === 'router_k_way' ? { k: 2 } : {}) };
        if (typeof recordedMatch === 'boolean') {
          const guess = asText(recordedGuess) ?? null;
          opportunities.push({ ...base, guess, matched: guess !== null && recordedMatch });
          continue;
        }
        const value = edgeValue(a, b);
        if (value === undefined) continue;
        const cls = `${run.tenant}/${run.workflow}/${a.op.id}->${b.op.id}`;
        const counts = history.get(cls);
        let guess: string | null = null;
        let best = 0;
        for (const [v, c] of counts ?? []) if (c > best) [guess, best] = [v, c];
        opportunities.push({ ...base, guess, actual: value, matched: guess === value });
        observed.push([cls, value]);
      }
    for (const [cls, value] of observed) {
      const counts = history.get(cls) ?? new Map<string, number>();
      counts.set(value, (counts.get(value) ?? 0) + 1);
      history.set(cls, counts);
    }
    const parsed = RunSchema.safeParse({ ...run, opportunities });
    if (!parsed.success) throw new ValidationError(zodIssues(parsed.error, `trace ${run.runId}`));
    return parsed.data;
  });
}

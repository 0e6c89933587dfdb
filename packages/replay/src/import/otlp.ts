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
import { DEPENDENCY_TYPES, type DependencyType, ValidationError, zodIssues } from '@gambit/shared';
import { type Opportunity, type Run, RunSchema, TRACE_FORMAT_VERSION } from '../trace.js';
import { canonicalJson } from './canonical.js';
import { importGambitTrace, isGambitRunSpan } from './otlp-gambit.js';
import { asText, type Op, type OtlpImportOptions, otlpSpansByTrace, str, toOperation } from './otlp-spans.js';

export { type FlatSpan, flattenOtlp, type OtlpExport, OtlpExportSchema, type OtlpImportOptions, otlpSpansByTrace } from './otlp-spans.js';

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


/** Converts OTLP/JSON exports (one or many documents) to runs, sorted by start time. */
export function importOtlp(docs: readonly unknown[], opts: OtlpImportOptions = {}): Run[] {
  const byTrace = otlpSpansByTrace(docs);
  const runs: Array<{ run: Omit<Run, 'opportunities'>; ops: Op[]; recorded?: Opportunity[] }> = [];
  for (const [traceId, spans] of byTrace) {
    // Gambit's own export: one run span per trace, with the workflow's edges and the outcomes.
    if (spans.some(isGambitRunSpan)) {
      const g = importGambitTrace(traceId, spans, opts);
      if (g !== undefined) runs.push(g);
      continue;
    }
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
        v: TRACE_FORMAT_VERSION,
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
  return runs.map(({ run, ops, recorded }) => {
    if (recorded !== undefined) {
      const parsed = RunSchema.safeParse({ ...run, opportunities: recorded });
      if (!parsed.success) throw new ValidationError(zodIssues(parsed.error, `trace ${run.runId}`));
      return parsed.data;
    }
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

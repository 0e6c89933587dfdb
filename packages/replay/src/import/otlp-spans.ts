/**
 * OTLP/JSON trace documents (`resourceSpans → scopeSpans → spans`) as the importers read them:
 * the validated shape, spans grouped by trace with their attributes decoded, a flat form for
 * tools and tests, and the conversion of one GenAI span (an LLM call or a tool execution) into an
 * operation of the replay trace format.
 */
import { EFFECTS, type Effects, ValidationError, zodIssues } from '@gambit/shared';
import { z } from 'zod';
import type { Operation } from '../trace.js';
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
  kind: z.number().int().optional(),
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

export interface Span {
  readonly raw: OtlpSpan;
  readonly a: Map<string, unknown>;
  readonly resource: Map<string, unknown>;
  readonly startNs: bigint;
  readonly endNs: bigint;
}

export interface Op {
  readonly span: Span;
  readonly op: Operation;
}

export const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);
const int = (v: unknown): number => (typeof v === 'number' && Number.isFinite(v) && v >= 0 ? Math.round(v) : 0);
export const asText = (v: unknown): string | undefined => (v === undefined ? undefined : typeof v === 'string' ? v : canonicalJson(v));

export function toOperation(s: Span, id: string, runStartNs: bigint, where: string): Operation | undefined {
  const kind = str(s.a.get('gen_ai.operation.name'));
  if (kind === undefined) return undefined;
  const startMs = Number(s.startNs - runStartNs) / 1e6;
  const durationMs = Math.max(0, Number(s.endNs - s.startNs) / 1e6);
  const effects = str(s.a.get('gambit.effects'));
  const cost = s.a.get('gambit.cost_nano_usd');
  const opClassAttr = str(s.a.get('gambit.operation.class'));
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
    // M4: the span's operation class when the producer names it (else trace.ts `opClass` derives one).
    ...(opClassAttr !== undefined ? { operationClass: opClassAttr } : {}),
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

export interface OtlpImportOptions {
  readonly defaultTenant?: string;
}

/** Validates OTLP/JSON export documents and groups their spans by trace id (each sorted by start). */
export function otlpSpansByTrace(docs: readonly unknown[]): Map<string, Span[]> {
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
  for (const spans of byTrace.values()) spans.sort((x, y) => (x.startNs < y.startNs ? -1 : x.startNs > y.startNs ? 1 : 0));
  return byTrace;
}

/** A span in plain form (attributes as an object, times in ms): for tools and tests reading traces. */
export interface FlatSpan {
  readonly traceId: string;
  readonly spanId: string;
  readonly parentSpanId?: string;
  readonly name: string;
  readonly kind: number;
  readonly startMs: number;
  readonly endMs: number;
  readonly service: string;
  readonly attributes: Record<string, unknown>;
}

/** Every span of the documents, flattened, in start order within each trace. */
export function flattenOtlp(docs: readonly unknown[]): FlatSpan[] {
  const out: FlatSpan[] = [];
  for (const spans of otlpSpansByTrace(docs).values())
    for (const s of spans)
      out.push({
        traceId: s.raw.traceId,
        spanId: s.raw.spanId,
        ...(s.raw.parentSpanId !== undefined && s.raw.parentSpanId !== '' ? { parentSpanId: s.raw.parentSpanId } : {}),
        name: s.raw.name,
        kind: s.raw.kind ?? 0,
        startMs: Number(s.startNs / 1000n) / 1000,
        endMs: Number(s.endNs / 1000n) / 1000,
        service: str(s.resource.get('service.name')) ?? '',
        attributes: Object.fromEntries(s.a),
      });
  return out;
}

/**
 * Operation classes (METHOD.md M4 "Estimates"): the kind of work a node does, the key under
 * which its duration, time to first token and output tokens are learned across the runs of a
 * tenant. An LLM call's class is its provider and model plus a hash of its prompt template
 * (system + prompt, unrendered); a tool call's class is its tool name plus a hash of its
 * argument templates. The node id is never part of it: two positions that run the same kind of
 * work share what is learned, and a position that runs different kinds of work (an agent's tool
 * step) does not mix them.
 *
 * Also the stored form of a class's estimates: one Redis hash per class
 * (`opClassKeys(ks, tenant, opClass).dist`) with, per metric m ∈ {d, f, o} (duration ms, time to
 * first token ms, output tokens), the fields `m:n`, `m:sum` and `m:<bin>` (weights), so that an
 * observation is a handful of HINCRBYFLOATs and a read is one HGETALL.
 */
import { ValidationError } from '../errors.js';
import { binOf, EMPTY_HISTOGRAM, type LogHistogram } from './distribution.js';

/** What an operation class needs from a node (a WorkflowNode satisfies it). */
export type OperationLike =
  | {
      readonly kind: 'llm';
      readonly provider: string;
      readonly model: string;
      readonly system?: string | undefined;
      readonly prompt: string;
    }
  | { readonly kind: 'tool'; readonly tool: string; readonly args?: Readonly<Record<string, unknown>> };

/** 32-bit FNV-1a as 8 hex digits: a short, stable template fingerprint (not a security hash). */
export function templateHash(text: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h.toString(16).padStart(8, '0');
}

/** Key-safe form of a name: braces and whitespace become `_`, length capped. */
function safe(name: string, max: number): string {
  return name.replace(/[{}\s|]/g, '_').slice(0, max);
}

/** Canonical JSON (sorted object keys) so that argument templates hash the same in any key order. */
function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (v !== null && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    return `{${Object.keys(o)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical(o[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v) ?? 'null';
}

/**
 * The operation class of a node: `llm:<provider>/<model>#<hash>` or `tool:<tool>#<hash>`.
 * `template` overrides the template part (importers use it when a trace names its template).
 */
export function operationClassOf(op: OperationLike, template?: string): string {
  if (op.kind === 'llm') {
    const t = template ?? templateHash(`${op.system ?? ''}\u0000${op.prompt}`);
    return `llm:${safe(op.provider, 32)}/${safe(op.model, 64)}#${safe(t, 16)}`;
  }
  const t = template ?? templateHash(canonical(op.args ?? {}));
  return `tool:${safe(op.tool, 80)}#${safe(t, 16)}`;
}

/** Checks an operation class id read from outside (a trace, an API body). */
export function assertOperationClass(field: string, value: string): void {
  if (!/^(llm|tool):[^{}\s]{1,120}$/.test(value)) {
    throw new ValidationError([
      { path: field, message: 'must be `llm:<provider>/<model>#<template>` or `tool:<name>#<template>`, no braces or spaces, ≤ 125 characters' },
    ]);
  }
}

/** The metrics learned per class. */
export const OPERATION_METRICS = ['durationMs', 'ttftMs', 'outputTokens'] as const;
export type OperationMetric = (typeof OPERATION_METRICS)[number];
const FIELD_PREFIX: Record<OperationMetric, string> = { durationMs: 'd', ttftMs: 'f', outputTokens: 'o' };

export type OperationEstimates = Readonly<Record<OperationMetric, LogHistogram>>;

export const EMPTY_ESTIMATES: OperationEstimates = Object.freeze({
  durationMs: EMPTY_HISTOGRAM,
  ttftMs: EMPTY_HISTOGRAM,
  outputTokens: EMPTY_HISTOGRAM,
});

/** One finished operation, as observed (tools have no ttft or tokens). */
export interface OperationSample {
  readonly durationMs: number;
  readonly ttftMs?: number | undefined;
  readonly outputTokens?: number | undefined;
}

/** The hash increments that record one sample: field → amount (for HINCRBYFLOAT). */
export function sampleIncrements(sample: OperationSample): [string, number][] {
  const out: [string, number][] = [];
  for (const m of OPERATION_METRICS) {
    const v = sample[m];
    if (v === undefined) continue;
    if (!(v >= 0) || !Number.isFinite(v)) {
      throw new ValidationError([{ path: m, message: `must be a finite number ≥ 0, got ${v}` }]);
    }
    const p = FIELD_PREFIX[m];
    out.push([`${p}:n`, 1], [`${p}:sum`, v], [`${p}:${binOf(v)}`, 1]);
  }
  return out;
}

/** Estimates from a class's stored hash (HGETALL). Unknown fields are an error, not skipped. */
export function decodeEstimates(hash: Readonly<Record<string, string>>): OperationEstimates {
  const acc: Record<string, { n: number; sum: number; bins: Record<number, number> }> = {
    d: { n: 0, sum: 0, bins: {} },
    f: { n: 0, sum: 0, bins: {} },
    o: { n: 0, sum: 0, bins: {} },
  };
  for (const [field, raw] of Object.entries(hash)) {
    const m = /^([dfo]):(n|sum|\d+)$/.exec(field);
    const v = Number(raw);
    if (m === null || !Number.isFinite(v)) {
      throw new ValidationError([{ path: `estimates.${field}`, message: `unexpected field or value ${JSON.stringify(raw)}` }]);
    }
    const h = acc[m[1]!]!;
    if (m[2] === 'n') h.n = v;
    else if (m[2] === 'sum') h.sum = v;
    else h.bins[Number(m[2])] = v;
  }
  return { durationMs: acc.d!, ttftMs: acc.f!, outputTokens: acc.o! };
}

/** The stored form of estimates (for tests, fits and replay): field → value. */
export function encodeEstimates(e: OperationEstimates): Record<string, string> {
  const out: Record<string, string> = {};
  for (const m of OPERATION_METRICS) {
    const h = e[m];
    if (!(h.n > 0)) continue;
    const p = FIELD_PREFIX[m];
    out[`${p}:n`] = String(h.n);
    out[`${p}:sum`] = String(h.sum);
    for (const [i, w] of Object.entries(h.bins)) out[`${p}:${i}`] = String(w);
  }
  return out;
}

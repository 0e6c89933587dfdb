/**
 * A span that lasts the run, across processes (issue 12 item 4). A run starts in one scheduler
 * and may end in another, and an SDK span can only be ended by the process that started it. So
 * the run span's ids are chosen at submission (its trace id is the caller's when a `traceparent`
 * came in) and stored with the run as a W3C carrier: every decision, launch and worker span is
 * its child from the start. When the run ends, whichever scheduler ends it emits the span with
 * those ids, the submission time as its start and its parent as recorded (`gambit-parent`).
 * Forcing the ids goes through the tracer provider's id generator (`PresetIdGenerator`), the one
 * place the SDK lets ids be chosen.
 */
import { randomBytes } from 'node:crypto';
import {
  type Context,
  context,
  isSpanContextValid,
  ROOT_CONTEXT,
  type Span,
  type SpanOptions,
  type Tracer,
  TraceFlags,
  trace,
} from '@opentelemetry/api';
import type { IdGenerator } from '@opentelemetry/sdk-trace-base';
import { extractContext } from './propagation.js';

/**
 * Random ids in hex, drawn from a pool of random bytes filled 4 KiB at a time (the same source,
 * `crypto.randomBytes`): a call per id cost a system random read per span (issue 13 item 1).
 */
let pool = Buffer.alloc(0);
let used = 0;
const hex = (bytes: number): string => {
  if (used + bytes > pool.length) {
    pool = randomBytes(4096);
    used = 0;
  }
  const s = pool.toString('hex', used, used + bytes);
  used += bytes;
  return s;
};

/** Random ids, except for the one span started inside `withIds`. */
export class PresetIdGenerator implements IdGenerator {
  private preset: { traceId?: string; spanId?: string } | undefined;

  generateTraceId(): string {
    return this.take('traceId') ?? hex(16);
  }

  generateSpanId(): string {
    return this.take('spanId') ?? hex(8);
  }

  /** The preset id, once. */
  private take(which: 'traceId' | 'spanId'): string | undefined {
    const id = this.preset?.[which];
    if (this.preset !== undefined) this.preset[which] = undefined;
    return id;
  }

  /** Runs `fn` (which must start exactly one span, synchronously) with these ids. */
  withIds<T>(ids: { traceId: string; spanId: string }, fn: () => T): T {
    this.preset = { ...ids };
    try {
      return fn();
    } finally {
      this.preset = undefined;
    }
  }
}

/** The process's tracer, able to start a span with ids chosen earlier (the run span). */
export class GambitTracer implements Tracer {
  constructor(
    private readonly inner: Tracer,
    private readonly ids: PresetIdGenerator,
  ) {}

  startSpan(name: string, options?: SpanOptions, ctx?: Context): Span {
    return this.inner.startSpan(name, options, ctx);
  }

  startActiveSpan<F extends (span: Span) => unknown>(name: string, ...rest: unknown[]): ReturnType<F> {
    return (this.inner.startActiveSpan as (n: string, ...r: unknown[]) => ReturnType<F>)(name, ...rest);
  }

  startSpanWithIds(name: string, ids: { traceId: string; spanId: string }, options: SpanOptions, ctx: Context): Span {
    return this.ids.withIds(ids, () => this.inner.startSpan(name, options, ctx));
  }
}

const PARENT_KEY = 'gambit-parent';

/**
 * Chooses the run span's ids at submission: the active span (the HTTP server span, itself the
 * caller's child) is its parent. Returns the carrier stored with the run.
 */
export function beginRunSpan(ctx: Context = context.active()): Record<string, string> {
  const parent = trace.getSpanContext(ctx);
  const hasParent = parent !== undefined && isSpanContextValid(parent);
  const traceId = hasParent ? parent.traceId : hex(16);
  const flags = hasParent ? parent.traceFlags : TraceFlags.SAMPLED;
  const f = flags.toString(16).padStart(2, '0');
  return {
    traceparent: `00-${traceId}-${hex(8)}-${f}`,
    ...(hasParent ? { [PARENT_KEY]: `00-${parent.traceId}-${parent.spanId}-${f}` } : {}),
  };
}

/**
 * Emits the run span recorded in `carrier`, from `startMs` to `endMs`. Returns false when the
 * carrier holds no valid run span or the tracer cannot preset ids.
 */
export function endRunSpan(
  tracer: Tracer,
  carrier: Record<string, string>,
  name: string,
  span: { startMs: number; endMs: number; attributes: SpanOptions['attributes']; error?: string },
): boolean {
  if (!(tracer instanceof GambitTracer)) return false;
  const self = trace.getSpanContext(extractContext(carrier));
  if (self === undefined || !isSpanContextValid(self)) return false;
  const parentTp = carrier[PARENT_KEY];
  const parentCtx = parentTp === undefined ? ROOT_CONTEXT : extractContext({ traceparent: parentTp });
  const s = tracer.startSpanWithIds(name, { traceId: self.traceId, spanId: self.spanId }, { startTime: span.startMs, attributes: span.attributes ?? {} }, parentCtx);
  if (span.error !== undefined) s.setStatus({ code: 2, message: span.error });
  s.end(span.endMs);
  return true;
}

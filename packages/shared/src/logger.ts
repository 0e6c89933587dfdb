/**
 * The Logger interface components take (STYLE.md 8), object-first like pino. `createLogger`
 * builds the pino JSON logger the services use; every line written inside an active span
 * carries its `trace_id` and `span_id` (and `trace_flags`), the OpenTelemetry log correlation
 * fields. `silentLogger` is for tests and benchmarks.
 */
import { context, trace } from '@opentelemetry/api';
import { pino } from 'pino';

/** The active span's ids, for log correlation (empty outside a span). */
export function traceFields(): Record<string, string> {
  const sc = trace.getSpanContext(context.active());
  if (sc === undefined) return {};
  return { trace_id: sc.traceId, span_id: sc.spanId, trace_flags: `0${sc.traceFlags.toString(16)}` };
}

export interface Logger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
  child(bindings: Record<string, unknown>): Logger;
}

export function createLogger(opts: { name: string; level?: string; destination?: number | string }): Logger {
  const dest = opts.destination === undefined ? undefined : pino.destination({ dest: opts.destination, sync: true });
  return pino({ name: opts.name, level: opts.level ?? 'info', base: { svc: opts.name, pid: process.pid }, mixin: traceFields }, dest) as unknown as Logger;
}

export const silentLogger: Logger = {
  debug() {},
  info() {},
  warn() {},
  error() {},
  child() {
    return silentLogger;
  },
};

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

/**
 * Issue 10 item 9: fields whose values never reach a log line (prompts, model outputs, run inputs,
 * keys, passwords, tokens), at the top level of a logged object and one level down (for example
 * `{ node: { prompt } }`), and the HTTP authorization header. pino replaces each value with
 * `LOG_REDACTED`; the field name stays, so a line still shows that the field was there.
 */
const SECRET_FIELDS = ['prompt', 'output', 'inputs', 'apiKey', 'api_key', 'key', 'adminKey', 'password', 'secret', 'token', 'authorization'] as const;
export const LOG_REDACT_PATHS: readonly string[] = [
  ...SECRET_FIELDS,
  ...SECRET_FIELDS.map((f) => `*.${f}`),
  'req.headers.authorization',
  'req.headers["x-api-key"]',
];
export const LOG_REDACTED = '[redacted]';

export function createLogger(opts: { name: string; level?: string; destination?: number | string }): Logger {
  const dest = opts.destination === undefined ? undefined : pino.destination({ dest: opts.destination, sync: true });
  return pino(
    {
      name: opts.name,
      level: opts.level ?? 'info',
      base: { svc: opts.name, pid: process.pid },
      mixin: traceFields,
      redact: { paths: [...LOG_REDACT_PATHS], censor: LOG_REDACTED },
    },
    dest,
  ) as unknown as Logger;
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

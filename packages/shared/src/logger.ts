/**
 * The Logger interface components take (STYLE.md 8), object-first like pino. `createLogger`
 * builds the pino JSON logger the services use; every line written inside an active span
 * carries its `trace_id` and `span_id` (and `trace_flags`), the OpenTelemetry log correlation
 * fields. `silentLogger` is for tests and benchmarks.
 */
import { writeSync } from 'node:fs';
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

/** The process's stdout destination for its loggers (see batchedStdout). */
let stdout: { write(s: string): void; flush(cb?: (err?: Error) => void): void } | undefined;

/**
 * Issue 13 item 1: stdout log lines leave once per turn of the event loop, all the lines of that
 * turn in one write, through the same asynchronous destination pino uses by default (sonic-boom
 * on fd 1). One write per line (a decision, an outcome, a hit: several per operation) was about
 * a twelfth of the scheduler's CPU in bench/runtime. A line waits at most until the end of the
 * turn that wrote it; lines still waiting when the process exits are written synchronously after
 * the destination's own exit flush (same order), so a crash's last lines are kept as before.
 * One per process, shared by its loggers.
 */
function batchedStdout(): NonNullable<typeof stdout> {
  if (stdout !== undefined) return stdout;
  const dest = pino.destination({ dest: 1, sync: false });
  let pending: string[] = [];
  let scheduled = false;
  const take = (): string => {
    const s = pending.length === 1 ? (pending[0] as string) : pending.join('');
    pending = [];
    return s;
  };
  const flush = (): void => {
    scheduled = false;
    if (pending.length > 0) dest.write(take());
  };
  // Registered after the destination's own exit handler (pino.destination registers it), so
  // this runs after it has written what it held.
  // As the destination does: a full pipe is written again (EAGAIN), a closed one ends logging (EPIPE).
  process.on('exit', () => {
    if (pending.length === 0) return;
    let rest = Buffer.from(take(), 'utf8');
    while (rest.length > 0) {
      try {
        rest = rest.subarray(writeSync(1, rest));
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'EPIPE') return;
        if (code !== 'EAGAIN') throw err;
      }
    }
  });
  stdout = {
    write(s: string): void {
      pending.push(s);
      if (!scheduled) {
        scheduled = true;
        setImmediate(flush);
      }
    },
    flush(cb?: (err?: Error) => void): void {
      flush();
      dest.flush(cb);
    },
  };
  return stdout;
}

export function createLogger(opts: { name: string; level?: string; destination?: number | string }): Logger {
  const dest = opts.destination === undefined ? batchedStdout() : pino.destination({ dest: opts.destination, sync: true });
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

/**
 * The Logger interface components take (STYLE.md 8), object-first like pino. `createLogger`
 * builds the pino JSON logger the services use; `silentLogger` is for tests and benchmarks.
 */
import { pino } from 'pino';

export interface Logger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
  child(bindings: Record<string, unknown>): Logger;
}

export function createLogger(opts: { name: string; level?: string; destination?: number | string }): Logger {
  const dest = opts.destination === undefined ? undefined : pino.destination({ dest: opts.destination, sync: true });
  return pino({ name: opts.name, level: opts.level ?? 'info', base: { svc: opts.name, pid: process.pid } }, dest) as unknown as Logger;
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

/**
 * How the CLI shows errors: a trace with bad lines prints `line N: field: reason` for each; any
 * other typed error prints its code and message. Returns the exit code (always non-zero).
 */
import { isGambitError, ValidationError } from '@gambit/shared';
import { TraceFormatError } from '@gambit/replay';
import { InvalidArgumentError } from 'commander';
import { ApiError } from '../demo/client.js';

export function reportError(err: unknown): number {
  if (err instanceof TraceFormatError) {
    process.stderr.write(`error: invalid trace (${err.lineIssues.length} problem${err.lineIssues.length === 1 ? '' : 's'})\n`);
    for (const i of err.lineIssues) process.stderr.write(`  line ${i.line}: ${i.path}: ${i.message}\n`);
    return 1;
  }
  if (err instanceof ValidationError) {
    process.stderr.write('error: invalid input\n');
    for (const i of err.issues) process.stderr.write(`  ${i.path}: ${i.message}\n`);
    return 1;
  }
  if (err instanceof ApiError) {
    const e = (err.body as { error?: { code?: string; message?: string; field?: string; issues?: Array<{ path: string; message: string }> } } | null)?.error;
    process.stderr.write(`error: the scheduler answered ${err.status}${e?.code === undefined ? '' : ` ${e.code}`}: ${e?.message ?? JSON.stringify(err.body)}\n`);
    for (const i of e?.issues ?? []) process.stderr.write(`  ${i.path}: ${i.message}\n`);
    return 1;
  }
  if (err instanceof TypeError && err.message === 'fetch failed') {
    const cause = (err as { cause?: { message?: string } }).cause;
    process.stderr.write(`error: cannot reach the scheduler API: ${cause?.message ?? err.message}\n`);
    return 1;
  }
  if (err instanceof InvalidArgumentError) {
    process.stderr.write(`error: ${err.message}\n`);
    return 1;
  }
  if (isGambitError(err)) {
    process.stderr.write(`error [${err.code}]: ${err.message}\n`);
    return 1;
  }
  if (err instanceof Error && 'code' in err && (err as NodeJS.ErrnoException).code === 'ENOENT') {
    process.stderr.write(`error: ${err.message}\n`);
    return 1;
  }
  process.stderr.write(`error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  return 2;
}

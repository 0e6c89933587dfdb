/**
 * Reads a trace file (JSON lines, trace.ts) and validates every line on its own, so a bad line is
 * reported as `line N: field: reason` and the other lines are still checked. The file fails as a
 * whole (a ValidationError listing every bad line) unless the caller asks for the good lines only.
 */
import { readFile } from 'node:fs/promises';
import { type FieldIssue, formatPath, ValidationError } from '@gambit/shared';
import { type Run, RunSchema } from './trace.js';

export interface TraceLineIssue extends FieldIssue {
  /** 1-based line number in the file. */
  readonly line: number;
}

export interface ParsedTrace {
  readonly runs: Run[];
  readonly issues: TraceLineIssue[];
}

/** `line N: field: reason`, the form every trace error is shown in. */
export function formatLineIssue(i: TraceLineIssue): string {
  return `line ${i.line}: ${i.path}: ${i.message}`;
}

/** A trace with bad lines. `issues` carries `path` = `line N: field` so ValidationError's message reads the same. */
export class TraceFormatError extends ValidationError {
  constructor(readonly lineIssues: readonly TraceLineIssue[]) {
    super(
      lineIssues.map((i) => ({ path: `line ${i.line}: ${i.path}`, message: i.message })),
      lineIssues.map(formatLineIssue).join('\n'),
    );
  }
}

/** Validates each non-blank line; returns the good runs and the issues of the bad lines. */
export function parseTraceLines(text: string): ParsedTrace {
  const runs: Run[] = [];
  const issues: TraceLineIssue[] = [];
  const lines = text.split('\n');
  lines.forEach((raw, idx) => {
    const line = idx + 1;
    if (raw.trim() === '') return;
    let value: unknown;
    try {
      value = JSON.parse(raw);
    } catch (err) {
      issues.push({ line, path: '(json)', message: `not valid JSON (${(err as Error).message})` });
      return;
    }
    const parsed = RunSchema.safeParse(value);
    if (parsed.success) {
      runs.push(parsed.data);
      return;
    }
    for (const i of parsed.error.issues) issues.push({ line, path: formatPath('', i.path), message: i.message });
  });
  return { runs, issues };
}

/** Parses a whole trace; throws TraceFormatError naming every bad line and field. */
export function parseTrace(text: string): Run[] {
  const { runs, issues } = parseTraceLines(text);
  if (issues.length > 0) throw new TraceFormatError(issues);
  if (runs.length === 0) throw new TraceFormatError([{ line: 1, path: '(file)', message: 'no runs in the trace' }]);
  return runs;
}

export async function readTraceFile(path: string): Promise<Run[]> {
  return parseTrace(await readFile(path, 'utf8'));
}

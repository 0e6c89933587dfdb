/**
 * `gambit import <source>`: converts recorded traces to the replay format (JSON lines):
 * `otlp <file...>` for OTLP/JSON exports of the user's own tracing, `tau-bench` for the bundled
 * tau-bench airline trajectories.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { importOtlp, importTauBench, loadTauBenchData, majorityVoteHitRate, toJsonLines } from '@gambit/replay';
import { ValidationError } from '@gambit/shared';
import type { Command } from 'commander';

/** One OTLP/JSON document, or one per line (what file exporters write); errors name the file and line. */
function parseOtlpFile(file: string, text: string): unknown[] {
  try {
    return [JSON.parse(text)];
  } catch {
    const docs: unknown[] = [];
    text.split('\n').forEach((line, i) => {
      if (line.trim() === '') return;
      try {
        docs.push(JSON.parse(line));
      } catch (err) {
        throw new ValidationError([{ path: `${file} line ${i + 1}`, message: `not valid JSON (${(err as Error).message})` }]);
      }
    });
    return docs;
  }
}

async function emit(text: string, out: string | undefined): Promise<void> {
  if (out === undefined) process.stdout.write(text);
  else await writeFile(out, text);
}

export function register(program: Command): void {
  const cmd = program.command('import').description('Convert recorded traces to the replay trace format (JSON lines)');
  cmd
    .command('otlp')
    .description('OTLP/JSON span exports (resourceSpans → scopeSpans → spans with gen_ai.* attributes)')
    .argument('<files...>', 'OTLP/JSON files (one export document each, or one per line)')
    .option('-o, --out <file>', 'write the trace here instead of stdout')
    .option('--tenant <tenant>', 'tenant for runs without a gambit.tenant attribute')
    .action(async (files: string[], opts: { out?: string; tenant?: string }) => {
      const docs: unknown[] = [];
      for (const f of files) {
        docs.push(...parseOtlpFile(f, await readFile(f, 'utf8')));
      }
      const runs = importOtlp(docs, opts.tenant !== undefined ? { defaultTenant: opts.tenant } : {});
      await emit(toJsonLines(runs), opts.out);
      process.stderr.write(`imported ${runs.length} runs, ${runs.reduce((s, r) => s + r.opportunities.length, 0)} opportunities\n`);
    });
  cmd
    .command('tau-bench')
    .description('the bundled tau-bench airline trajectories (gpt-4o agent, 50 tasks × 4 trials)')
    .option('-o, --out <file>', 'write the trace here instead of stdout')
    .action(async (opts: { out?: string }) => {
      const runs = importTauBench(loadTauBenchData());
      await emit(toJsonLines(runs), opts.out);
      const h = majorityVoteHitRate(runs);
      process.stderr.write(`imported ${runs.length} runs; majority-vote guesses match ${h.hits} of ${h.calls} tool calls (${(100 * h.rate).toFixed(1)}%)\n`);
    });
}
